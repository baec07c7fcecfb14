"""The one place that uses eventsourcing's private API, for the minor version it was written
against (pyproject.toml pins the same; any other is refused at import).

- `Application`: the library's Application, with the two private steps of `save()` that
  carprice changes declared as hooks: `record_events` (insert a save's events: group commit
  shares the insert between concurrent commands) and `snapshot_after_save` (one snapshot per
  aggregate per save, from the aggregate just saved, instead of one per interval crossed,
  each rebuilt from the store).
- `insert_unpipelined`: the recorder's insert sequence (events, then their stored rows, then
  the positions they got) on a cursor of the caller's, outside psycopg's pipeline mode.
- `popo_events`: the in-memory recorder's events of one aggregate, by version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.application import Application as _Application
from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import Recording

from infra.versions import require

if TYPE_CHECKING:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.popo import POPOApplicationRecorder
    from eventsourcing.postgres import PostgresApplicationRecorder
    from psycopg import Cursor
    from psycopg.rows import DictRow

TESTED = ("9.5",)  # eventsourcing minor versions this module was written against
require("eventsourcing", TESTED, "infra/eventsourcing_compat.py")


class Application(_Application[UUID]):
    """eventsourcing's Application with the steps of `save()` carprice overrides declared."""

    def record_events(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Insert the events of one save; the library's insert unless overridden."""
        return super()._record(processing_event)

    def snapshot_after_save(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Take the snapshots a save makes due; the library's rule unless overridden."""
        super()._take_snapshots(processing_event)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        return self.record_events(processing_event)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        self.snapshot_after_save(processing_event)


def insert_unpipelined(recorder: PostgresApplicationRecorder, curs: Cursor[DictRow],
                       stored_events: Sequence[StoredEvent], **kwargs: object) -> Sequence[int] | None:
    """What PostgresApplicationRecorder.insert_events does inside its transaction, on `curs`."""
    recorder._insert_events(curs, stored_events, **kwargs)  # noqa: SLF001 - this seam
    recorder._insert_stored_events(curs, stored_events, **kwargs)  # noqa: SLF001
    return recorder._fetch_ids_after_insert_events(curs, stored_events, **kwargs)  # noqa: SLF001


def popo_events(recorder: POPOApplicationRecorder,
                aggregate_id: UUID) -> tuple[dict[int, int], list[StoredEvent]]:
    """(version -> index into the log, the log) of a POPOApplicationRecorder."""
    index = recorder._stored_events_index.get(str(aggregate_id), {})  # noqa: SLF001 - this seam
    return index, recorder._stored_events  # noqa: SLF001
