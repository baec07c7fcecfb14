"""Shadow prices: what each challenger would have asked for a share of the paid jobs
(consumers/shadow.py), compared with the champion on the Models page. Unbilled and unseen by
users: no user id and no car here, only the job's id, the two versions and their prices.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
compatible = True  # a new table: processes of the revision before never read it

STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS shadow_prices (
        job_id uuid NOT NULL,
        model_name text NOT NULL,
        version text NOT NULL,
        champion_version text NOT NULL,
        champion_price double precision NOT NULL,
        price double precision,
        low double precision,
        high double precision,
        error text,
        priced_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job_id, version))""",
    "CREATE INDEX IF NOT EXISTS shadow_prices_model ON shadow_prices (model_name, version)",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
