"""Where each leased consumer (inference) is, partition by partition.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
compatible = True  # a new table: processes of the revision before never read it

STATEMENTS = [
    # Inference reads by partition leases (consumers/leases.py) instead of a consumer group:
    # the last message a consumer handled on each partition (its Kafka offset and the store
    # position of the event there, to tell whether the offset still means that event).
    """CREATE TABLE IF NOT EXISTS consumer_positions (
        consumer text NOT NULL,
        topic text NOT NULL,
        partition integer NOT NULL,
        kafka_offset bigint NOT NULL,
        position bigint,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, topic, partition))""",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
