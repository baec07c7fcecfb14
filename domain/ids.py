"""Identities: one user has one wallet; accounts from before keys had their email's id."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6f1c1bb0-5d7e-4a57-9a0e-8f1f1c0a5a11")


def normalise_email(email: str) -> str:
    """Trimmed and case-insensitive: ' John@Example.COM ' and 'john@example.com' are one."""
    return email.strip().lower()


def user_id_for(email: str) -> UUID:
    """The id an account registered before keys got from its email (new accounts get a random
    id, and the email index makes one email one account: see commands.accounts)."""
    return uuid5(NAMESPACE, f"user:{normalise_email(email)}")


def wallet_id_for(user_id: UUID) -> UUID:
    """The id of a user's one wallet."""
    return uuid5(NAMESPACE, f"wallet:{user_id}")
