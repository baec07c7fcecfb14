"""The pipeline as the API reports it (readiness, metrics), from its sources of truth.

The event store's head, the relay's position, each projection's offsets per partition
against the broker's end offsets, unrepaired projection faults and dead letters: read at
the time of asking (cached a moment), so that any API replica reports the whole system.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from infra import dead_letters, positions
from infra.pg import Pool
from projections import state

if TYPE_CHECKING:
    from commands.application import CarpriceApp
    from infra.kafka_client import EndOffsets
    from infra.settings import Settings


class Sources(Protocol):
    """What the probe reads from (the API's Container)."""

    settings: Settings
    commands: CarpriceApp
    db: Pool | None
    kafka_bootstrap: str | None


@dataclass
class PipelineStatus:
    """One reading of the pipeline."""

    head: int = 0
    relay_position: int = 0
    projection_lag: dict[str, int] | None = None  # None: the broker could not be asked
    # projections with messages waiting on the broker that have not advanced for the stall
    # threshold -> seconds idle (None: never advanced)
    stalled: dict[str, float | None] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    dead_letters: list[tuple[str, str, int]] = field(default_factory=list)
    broker_error: str | None = None

    @property
    def relay_lag(self) -> int:
        """Events recorded but not yet acknowledged by the broker."""
        return max(0, self.head - self.relay_position)


class PipelineProbe:
    """Reads PipelineStatus, at most once per `ttl` seconds (thread-safe)."""

    def __init__(self, container: Sources, ttl: float = 2.0) -> None:
        self.c = container
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, PipelineStatus] | None = None
        self._ends: EndOffsets | None = None

    def read(self) -> PipelineStatus:
        """The latest reading (database errors propagate: the caller reports them)."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            status = self._measure()
            self._cached = (time.monotonic(), status)
            return status

    def _end_offsets(self) -> dict[int, int]:
        from infra.kafka_client import EndOffsets

        if self._ends is None:
            self._ends = EndOffsets(self.c.kafka_bootstrap or "", self.c.settings.events_topic)
        ends: dict[int, int] = self._ends()
        return ends

    def _measure(self) -> PipelineStatus:
        status = PipelineStatus(head=self.c.commands.head_position())
        topic = self.c.settings.events_topic
        ends: dict[int, int] | None = None
        if self.c.kafka_bootstrap:
            try:
                ends = self._end_offsets()
            except Exception as exc:  # noqa: BLE001 - reported as part of the status
                status.broker_error = f"{type(exc).__name__}: {exc}"
        else:
            status.broker_error = "no broker configured"
        db = self.c.db
        if db is None:  # built only with a database (api/main.py)
            raise RuntimeError("the pipeline probe needs the database")
        with db.connection() as conn:
            status.relay_position = positions.position(conn, topic)
            if ends is not None:
                status.projection_lag = state.lag(conn, topic, ends, status.relay_lag)
                status.stalled = state.stalled(state.lag(conn, topic, ends, 0),
                                               state.idle_seconds(conn, topic),
                                               self.c.settings.projection_stall_seconds)
            status.faults = state.fault_counts(conn)
            status.dead_letters = dead_letters.counts(conn)
        return status
