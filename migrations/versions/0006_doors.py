"""Erasures in commit order; Idempotency-Keys claimed before their request runs.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATEMENTS = [
    # The erased accounts as a feed every API process follows by `seq`. An erasure locks the
    # table before it inserts, so sequence numbers are taken in commit order: a reader that
    # has seen seq n has seen every erasure before it (erased_at, a transaction's start time,
    # is not in commit order, and a feed read by it could skip one).
    """CREATE TABLE IF NOT EXISTS erasures (
        seq bigserial PRIMARY KEY,
        user_id uuid NOT NULL UNIQUE,
        erased_at timestamptz NOT NULL DEFAULT now())""",
    """INSERT INTO erasures (user_id, erased_at)
        SELECT user_id, erased_at FROM user_keys WHERE erased_at IS NOT NULL ORDER BY erased_at
        ON CONFLICT (user_id) DO NOTHING""",
    # An Idempotency-Key is claimed (response NULL) before its request runs: a second request
    # with the key while the first is in flight gets 409, and a failed request gives it back.
    "ALTER TABLE api_idempotency ALTER COLUMN response DROP NOT NULL",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
