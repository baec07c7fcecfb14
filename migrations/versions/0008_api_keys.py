"""API keys: the rows a request's key is checked against (infra/api_keys.py); and the sale
prices reported on jobs, in their history rows (projections/jobs.py).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
compatible = True  # a new table: processes of the revision before never read it

STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        name text NOT NULL,
        prefix text NOT NULL,
        scopes text[] NOT NULL,
        rate_limit_per_minute integer NOT NULL CHECK (rate_limit_per_minute > 0),
        secret_hash bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz,
        window_start timestamptz NOT NULL DEFAULT now(),
        hits integer NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id, created_at)",
    # the latest sale price reported for the job's car (job.sale_reported.v1), and when
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS sold_price double precision",
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS sold_at timestamptz",
    # the live figures read the priced cars that were sold, per model version
    "CREATE INDEX IF NOT EXISTS prediction_history_sold ON prediction_history "
    "(model_name, model_version) WHERE sold_price IS NOT NULL AND status = 'finished'",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
