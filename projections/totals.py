"""Totals over the jobs read table, for the API's /metrics (read at scrape time)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow


@dataclass(frozen=True)
class JobTotals:
    """Jobs by status, credits charged and refunded, and the latency histogram's counts."""

    by_status: dict[str, int]
    charged: int
    refunded: int
    within: tuple[int, ...]  # jobs that ended within each of the bounds asked for
    ended: int
    seconds: float  # their latencies summed


def job_totals(conn: psycopg.Connection[TupleRow], bounds: tuple[float, ...]) -> JobTotals:
    """The totals of prediction_history; `bounds` are the histogram's buckets in seconds."""
    counts = ", ".join(f"count(*) FILTER (WHERE d <= {float(b)})" for b in bounds)
    by_status = conn.execute("SELECT status, count(*) FROM prediction_history "
                             "GROUP BY status").fetchall()
    charged, refunded = conn.execute(
        "SELECT coalesce(sum(price), 0), coalesce(sum(price) FILTER (WHERE status = 'failed'), 0) "
        "FROM prediction_history").fetchone() or (0, 0)
    row = conn.execute(
        f"SELECT {counts}, count(*), coalesce(sum(d), 0) FROM (SELECT extract(epoch FROM "  # noqa: S608 - numbers only
        "finished_at - created_at)::float8 AS d FROM prediction_history "
        "WHERE finished_at IS NOT NULL) AS t").fetchone()
    within, ended, seconds = ((tuple(row[:-2]), row[-2], row[-1]) if row
                              else ((0,) * len(bounds), 0, 0.0))
    return JobTotals({str(s): int(n) for s, n in by_status}, int(charged), int(refunded),
                     tuple(int(n) for n in within), int(ended), float(seconds))
