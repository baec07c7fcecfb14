"""Price ranges and explanations on finished jobs; fleet batches and their rows.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATEMENTS = [
    # interval: {"low", "high", "level"} (null for versions trained before ranges);
    # explanation: {"base", "contributions"} when bought and made
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS interval jsonb",
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS explanation jsonb",
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS explain boolean NOT NULL DEFAULT false",
    "ALTER TABLE job_updates ADD COLUMN IF NOT EXISTS interval jsonb",
    # a fleet batch's rows are jobs with the batch's id and their row number (0-based)
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS batch_id uuid",
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS batch_row integer",
    "CREATE INDEX IF NOT EXISTS prediction_history_batch ON prediction_history (batch_id, batch_row) "
    "WHERE batch_id IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS batches (
        batch_id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        model_name text NOT NULL,
        model_version text NOT NULL,
        price integer NOT NULL,
        rows integer NOT NULL,
        done integer NOT NULL DEFAULT 0,
        failed integer NOT NULL DEFAULT 0,
        source text NOT NULL,
        created_at timestamptz NOT NULL,
        finished_at timestamptz,
        version integer NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS batches_user ON batches (user_id, created_at DESC)",
    # history lists single jobs (a batch is one entry): their own index, without fleet rows
    "CREATE INDEX IF NOT EXISTS prediction_history_user_single "
    "ON prediction_history (user_id, created_at DESC, job_id) WHERE batch_id IS NULL",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
