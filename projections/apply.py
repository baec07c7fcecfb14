"""Applying a batch of published events to the projections, in the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import TupleRow

from infra.published import PublishedEvent
from projections.projection import Applied
from projections.registry import NAMES, PROJECTIONS

log = logging.getLogger("carprice.projections")

# aggregate id -> every event of that aggregate in the store (for repairs)
History = Callable[[str], Sequence[PublishedEvent]]


class VersionGap(RuntimeError):
    """An event skipped a version of its aggregate and no store was given to repair from."""


@dataclass
class BatchResult:
    """What a batch did to the read tables."""

    applied: int = 0
    duplicates: int = 0
    repaired: list[tuple[str, str]] = field(default_factory=list)  # (projection, aggregate id)
    users: set[str] = field(default_factory=set)  # whose rows changed
    changed: list[tuple[str, PublishedEvent]] = field(default_factory=list)  # (projection, event)


def apply_events(conn: psycopg.Connection[TupleRow], events: Iterable[PublishedEvent],
                 history: History | None = None, names: Iterable[str] = NAMES,
                 suffix: str = "") -> BatchResult:
    """Apply events to the named projections; a version gap is repaired from `history`."""
    selected = [PROJECTIONS[n] for n in names]
    result = BatchResult()
    for event in events:
        for projection in selected:
            if not projection.handles(event):
                continue
            outcome = projection.apply(conn, event, suffix)
            if outcome is Applied.GAP:
                if history is None:
                    raise VersionGap(f"{projection.name}: {event.type} v{event.aggregate_version} of "
                                     f"{event.aggregate_id} skips a version ({event.source})")
                log.warning("%s: %s v%d of %s skips a version (%s): repairing from the store",
                            projection.name, event.type, event.aggregate_version,
                            event.aggregate_id, event.source)
                projection.repair(conn, history(event.aggregate_id), suffix)
                result.repaired.append((projection.name, event.aggregate_id))
                outcome = Applied.APPLIED
            if outcome is Applied.APPLIED:
                result.applied += 1
                result.users.add(event.user_id)
                result.changed.append((projection.name, event))
            else:
                result.duplicates += 1
    return result
