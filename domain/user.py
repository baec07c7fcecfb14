"""A user account."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.events import USER_ERASED, USER_REGISTERED
from domain.ids import normalise_email, user_id_for


class User(Aggregate):
    """Someone who signed up. Holds an argon2 hash, never the password."""

    TOPIC = "carprice.user"

    class Created(Aggregate.Created):
        # The library's generic creation event; ours is named below. Never triggered.
        TOPIC = "user.created.v0"

    @staticmethod
    def create_id(email: str) -> UUID:
        return user_id_for(email)

    @event("Registered", topic=USER_REGISTERED)
    def __init__(self, name: str, email: str, password_hash: str, sealed: str | None = None) -> None:
        # sealed: name, email and password hash encrypted with the user's own key (erasure
        # deletes the key); name, email and password_hash are then empty. Accounts from
        # before erasure existed have them in the clear, and no `sealed`.
        self.name = name
        self.email = normalise_email(email)
        self.password_hash = password_hash
        self.sealed = sealed
        self.erased = False

    @classmethod
    def register_sealed(cls, user_id: UUID, sealed: str) -> User:
        """A new account whose personal data is sealed with its key (its id is random)."""
        return cls._create(cls.Registered, id=user_id, name="", email="",  # type: ignore[attr-defined]
                           password_hash="", sealed=sealed)

    def erase(self) -> bool:
        """Erase the account (its personal data goes with its key); a second time is a no-op."""
        if self.erased:
            return False
        self._erased()
        return True

    @event("Erased", topic=USER_ERASED)
    def _erased(self) -> None:
        self.name = self.email = self.password_hash = ""
        self.sealed = None
        self.erased = True

    @property
    def user_id(self) -> UUID:
        """The user's id (the aggregate id)."""
        return self.id
