"""Personal data kept apart from the events: each user's key, and the email index.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATEMENTS = [
    # the key that seals a user's name, email and password hash in their events; erasing the
    # account deletes the key ("crypto-shredding") and keeps only the time it was erased
    """CREATE TABLE IF NOT EXISTS user_keys (
        user_id uuid PRIMARY KEY,
        key bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        erased_at timestamptz,
        CHECK ((key IS NULL) = (erased_at IS NOT NULL)))""",
    "CREATE INDEX IF NOT EXISTS user_keys_erased ON user_keys (erased_at) WHERE erased_at IS NOT NULL",
    # one email, one account: the sha256 of the email -> its account (deleted on erasure, so
    # the email can register again as a new account)
    """CREATE TABLE IF NOT EXISTS email_index (
        digest bytea PRIMARY KEY,
        user_id uuid NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS email_index_user ON email_index (user_id)",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
