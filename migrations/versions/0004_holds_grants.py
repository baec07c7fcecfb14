"""Holds and promotional grants on the balances; the grants still to expire.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATEMENTS = [
    # balance stays what can be spent (available); reserved: held for jobs not ended;
    # promotional: the part of balance from grants (it expires)
    "ALTER TABLE balances ADD COLUMN IF NOT EXISTS reserved bigint NOT NULL DEFAULT 0 "
    "CHECK (reserved >= 0)",
    "ALTER TABLE balances ADD COLUMN IF NOT EXISTS promotional bigint NOT NULL DEFAULT 0 "
    "CHECK (promotional >= 0)",
    # a user's grants as the dashboard shows them (remaining: not spent or held)
    """CREATE TABLE IF NOT EXISTS credit_grants (
        grant_id text NOT NULL,
        user_id uuid NOT NULL,
        amount bigint NOT NULL,
        remaining bigint NOT NULL,
        expires_at timestamptz NOT NULL,
        reason text NOT NULL,
        granted_at timestamptz NOT NULL,
        expired_at timestamptz,
        expired_amount bigint,
        PRIMARY KEY (user_id, grant_id))""",
    # the grants the reaper will expire, followed from the store's log (like its open jobs)
    """CREATE TABLE IF NOT EXISTS reaper_open_grants (
        user_id uuid NOT NULL,
        grant_id text NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, grant_id))""",
    "CREATE INDEX IF NOT EXISTS reaper_open_grants_due ON reaper_open_grants (expires_at)",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
