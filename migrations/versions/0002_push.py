"""Push: job_updates (server-sent events) and webhooks with their delivery log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    # one row per status change of a job, written by the projector in the transaction of its
    # batch with the store position of the event (the SSE event id); kept a day (a client
    # resumes with Last-Event-ID within that)
    """CREATE TABLE IF NOT EXISTS job_updates (
        position bigint PRIMARY KEY,
        user_id uuid NOT NULL,
        job_id uuid NOT NULL,
        status text NOT NULL,
        model_name text NOT NULL,
        price integer NOT NULL,
        result double precision,
        error text,
        created_at timestamptz NOT NULL,
        finished_at timestamptz,
        deadline timestamptz,
        recorded_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS job_updates_user ON job_updates (user_id, position)",
    "CREATE INDEX IF NOT EXISTS job_updates_recorded ON job_updates (recorded_at)",
    # the key each user's webhook deliveries are signed with (HMAC-SHA256)
    """CREATE TABLE IF NOT EXISTS webhook_secrets (
        user_id uuid PRIMARY KEY,
        secret text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())""",
    # after_position: the store head at registration (older events are not news to it);
    # balance_low: the balance is below balance_below and that was sent (reset when it rises)
    """CREATE TABLE IF NOT EXISTS webhooks (
        webhook_id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        url text NOT NULL,
        events text[] NOT NULL,
        balance_below bigint,
        balance_low boolean NOT NULL DEFAULT false,
        after_position bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS webhooks_user ON webhooks (user_id)",
    # the outbox and the delivery log: written by the projector with the rows that caused it,
    # sent by `carprice webhooks`; one row per webhook and event, whatever replays it
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
        delivery_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        webhook_id uuid NOT NULL REFERENCES webhooks ON DELETE CASCADE,
        user_id uuid NOT NULL,
        event text NOT NULL,
        event_key text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_status integer,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz,
        UNIQUE (webhook_id, event_key))""",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) "
    "WHERE status = 'pending'",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_log ON webhook_deliveries "
    "(webhook_id, created_at DESC)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_created ON webhook_deliveries (created_at)",
]


def upgrade(database_url: str = "") -> None:
    for statement in STATEMENTS:
        op.execute(statement)
