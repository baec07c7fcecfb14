"""The read tables. Every row carries the aggregate version it reflects."""

from __future__ import annotations

from typing import Any

import psycopg

from infra.pg import run_ddl


def ddl(suffix: str = "") -> list[str]:
    """CREATE statements for the read tables (a suffix builds a fresh set for a rebuild)."""
    s = suffix
    return [
        f"""CREATE TABLE IF NOT EXISTS balances{s} (
            user_id uuid PRIMARY KEY,
            balance bigint NOT NULL CHECK (balance >= 0),
            reserved bigint NOT NULL DEFAULT 0,
            version integer NOT NULL,
            updated_at timestamptz NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS prediction_history{s} (
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
        f"ALTER TABLE prediction_history{s} ADD COLUMN IF NOT EXISTS deadline timestamptz",
        f"CREATE INDEX IF NOT EXISTS prediction_history{s}_user_created "
        f"ON prediction_history{s} (user_id, created_at DESC, job_id)",
        f"""CREATE TABLE IF NOT EXISTS running_jobs{s} (
            job_id uuid PRIMARY KEY,
            user_id uuid NOT NULL,
            model_name text NOT NULL,
            model_version text NOT NULL,
            price integer NOT NULL,
            status text NOT NULL,
            created_at timestamptz NOT NULL,
            started_at timestamptz,
            deadline timestamptz)""",
        f"ALTER TABLE running_jobs{s} ADD COLUMN IF NOT EXISTS deadline timestamptz",
        f"CREATE INDEX IF NOT EXISTS running_jobs{s}_user ON running_jobs{s} (user_id)",
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
    ]


def create(conn: psycopg.Connection[Any], suffix: str = "") -> None:
    """Create the read tables if missing."""
    run_ddl(conn, *ddl(suffix))
