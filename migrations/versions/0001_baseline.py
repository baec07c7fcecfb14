"""The baseline: the event store, the read tables and every table of the processes.

Written with IF NOT EXISTS so that it also brings a database created by an older carprice
(whose processes created their own tables) under migrations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from infra.eventstore import create_tables as create_event_store

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATEMENTS = [
    # -- read tables (projections/); every row carries the aggregate version it reflects
    """CREATE TABLE IF NOT EXISTS balances (
        user_id uuid PRIMARY KEY,
        balance bigint NOT NULL CHECK (balance >= 0),
        version integer NOT NULL,
        updated_at timestamptz NOT NULL)""",
    "ALTER TABLE balances DROP COLUMN IF EXISTS reserved",  # never used
    """CREATE TABLE IF NOT EXISTS prediction_history (
        job_id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        model_name text NOT NULL,
        model_version text NOT NULL,
        price integer NOT NULL,
        status text NOT NULL,
        features jsonb NOT NULL,
        result double precision,
        error text,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        deadline timestamptz,
        version integer NOT NULL)""",
    "ALTER TABLE prediction_history ADD COLUMN IF NOT EXISTS deadline timestamptz",
    "CREATE INDEX IF NOT EXISTS prediction_history_user_created "
    "ON prediction_history (user_id, created_at DESC, job_id)",
    """CREATE TABLE IF NOT EXISTS running_jobs (
        job_id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        model_name text NOT NULL,
        model_version text NOT NULL,
        price integer NOT NULL,
        status text NOT NULL,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        deadline timestamptz)""",
    "ALTER TABLE running_jobs ADD COLUMN IF NOT EXISTS deadline timestamptz",
    "CREATE INDEX IF NOT EXISTS running_jobs_user ON running_jobs (user_id)",
    # -- where each projection is, partition by partition; what it could not apply
    """CREATE TABLE IF NOT EXISTS projection_offsets (
        projection text NOT NULL,
        topic text NOT NULL,
        partition integer NOT NULL,
        kafka_offset bigint NOT NULL,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (projection, topic, partition))""",
    """CREATE TABLE IF NOT EXISTS projection_faults (
        id bigserial PRIMARY KEY,
        projection text NOT NULL,
        aggregate_id text NOT NULL,
        event_type text,
        position bigint,
        source text,
        error text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        repaired_at timestamptz)""",
    "CREATE INDEX IF NOT EXISTS projection_faults_open ON projection_faults (projection) "
    "WHERE repaired_at IS NULL",
    "DROP TABLE IF EXISTS projection_state",  # replaced by projection_offsets
    # -- the log followers' positions (relay, reaper) and the reaper's open jobs
    """CREATE TABLE IF NOT EXISTS relay_position (
        name text PRIMARY KEY,
        position bigint NOT NULL,
        updated_at timestamptz)""",
    """CREATE TABLE IF NOT EXISTS reaper_open_jobs (
        job_id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        deadline timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS reaper_open_jobs_deadline ON reaper_open_jobs (deadline)",
    # -- the consumers' dead letters
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id bigserial PRIMARY KEY,
        consumer text NOT NULL,
        reason text NOT NULL,
        exception text NOT NULL,
        error text NOT NULL,
        attempts integer NOT NULL,
        source_topic text NOT NULL,
        source_partition integer NOT NULL,
        source_offset bigint NOT NULL,
        dlq_topic text NOT NULL,
        dlq_partition integer,
        dlq_offset bigint,
        event_type text,
        aggregate_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        replayed_at timestamptz)""",
    # -- the API's Idempotency-Key answers and its sign-in / sign-up throttle
    """CREATE TABLE IF NOT EXISTS api_idempotency (
        user_id uuid NOT NULL,
        route text NOT NULL,
        key text NOT NULL,
        body_sha256 text NOT NULL,
        response jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, route, key))""",
    """CREATE TABLE IF NOT EXISTS api_throttle (
        key text PRIMARY KEY,
        window_start timestamptz NOT NULL,
        hits integer NOT NULL)""",
]


def upgrade(database_url: str = "") -> None:
    create_event_store(database_url)
    for statement in STATEMENTS:
        op.execute(statement)
