"""A user account."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import normalise_email, user_id_for


class User(Aggregate):
    """Someone who signed up. Holds an argon2 hash, never the password."""

    TOPIC = "carprice.user"

    class Created(Aggregate.Created):
        # The library's generic creation event; ours is named below. Never triggered.
        TOPIC = "user.created.v0"

    @staticmethod
    def create_id(email: str) -> UUID:  # type: ignore[override]
        return user_id_for(email)

    @event("Registered", topic="user.registered.v1")
    def __init__(self, name: str, email: str, password_hash: str) -> None:
        self.name = name
        self.email = normalise_email(email)
        self.password_hash = password_hash

    @property
    def user_id(self) -> UUID:
        """The user's id (the aggregate id)."""
        return self.id
