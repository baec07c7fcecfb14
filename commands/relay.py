"""The relay: the event store's notification log, published to Kafka in order.

At-least-once: a batch is sent, the broker acknowledges every message (acks=all,
idempotent producer), and only then is the position saved. A crash between the
two republishes the batch; consumers are idempotent. One relay is active at a
time (a PostgreSQL advisory lock); a second one waits to take over.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from typing import Any

import psycopg

from infra.kafka_client import producer as make_producer
from infra.kafka_client import topic_end_offset
from infra.pg import run_ddl
from infra.published import encode, from_notification

log = logging.getLogger("carprice.relay")
BATCH = 500


def _lock_key(name: str) -> int:
    # one active relay per relay name (= topic); a signed 64-bit advisory lock key
    return (0x63617270 << 32 | zlib.crc32(name.encode())) & 0x7FFFFFFFFFFFFFFF


def create_table(conn: psycopg.Connection[Any]) -> None:
    """The relay's position table (one row per relay name)."""
    run_ddl(conn, "CREATE TABLE IF NOT EXISTS relay_position ("
                  "name text PRIMARY KEY, position bigint NOT NULL, updated_at timestamptz)")


def rewind(conn: psycopg.Connection[Any], name: str, position: int) -> None:
    """Make relay `name` publish again everything after `position` (when it next starts)."""
    conn.execute("INSERT INTO relay_position (name, position, updated_at) VALUES (%s, %s, now()) "
                 "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
                 (name, position))


class Relay:
    """Tails the store (LISTEN/NOTIFY subscription) and publishes batches to one topic."""

    def __init__(self, app: Any, database_url: str, bootstrap: str, topic: str,
                 name: str | None = None, rewind_to: int | None = None) -> None:
        self.app = app
        self.database_url = database_url
        self.bootstrap = bootstrap
        self.topic = topic
        self.name = name or topic
        self.stopping = threading.Event()
        self.published = 0
        self.rewind_to = rewind_to  # a replay asked for on the command line

    # -- position --------------------------------------------------------------

    def position(self, conn: psycopg.Connection[Any]) -> int:
        """The last position the broker acknowledged."""
        row = conn.execute("SELECT position FROM relay_position WHERE name = %s",
                           (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def _save_position(self, conn: psycopg.Connection[Any], position: int) -> None:
        conn.execute(
            "INSERT INTO relay_position (name, position, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now() "
            "WHERE relay_position.position < EXCLUDED.position", (self.name, position))

    # -- running ---------------------------------------------------------------

    def run(self) -> None:
        """Publish until stop() is called; wait for the leader lock first."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            create_table(conn)
            self._acquire_leadership(conn)
            if self.stopping.is_set():
                return
            if self.rewind_to is not None:
                log.warning("relay %s: replay requested: publishing again after position %d",
                            self.name, self.rewind_to)
                rewind(conn, self.name, self.rewind_to)
            producer = make_producer(self.bootstrap)
            try:
                self._publish_loop(conn, producer)
            finally:
                producer.flush(timeout=10)
                producer.close(timeout=10)

    def stop(self) -> None:
        """Ask the loop to stop after the batch in flight."""
        self.stopping.set()

    def _acquire_leadership(self, conn: psycopg.Connection[Any]) -> None:
        waited = False
        while not self.stopping.is_set():
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(self.name),)).fetchone()
            if row and row[0]:
                if waited:
                    log.info("relay %s: took over as the active relay", self.name)
                return
            if not waited:
                log.info("relay %s: another relay is active; standing by", self.name)
                waited = True
            self.stopping.wait(1.0)

    def _publish_loop(self, conn: psycopg.Connection[Any], producer: Any) -> None:
        position = self.position(conn)
        if position > 0 and topic_end_offset(self.bootstrap, self.topic) == 0:
            # Offsets only grow, even past retention: an empty topic behind a saved position
            # means the broker lost its data (e.g. Tansu's memory storage restarted). Publish
            # everything again; consumers are idempotent, and queued jobs still get predicted.
            log.warning("relay %s: the broker has no message although position %d was "
                        "acknowledged: broker data lost; republishing from the start",
                        self.name, position)
            rewind(conn, self.name, 0)
            position = 0
        log.info("relay %s: resuming after position %d", self.name, position)
        inbox: queue.Queue[Any] = queue.Queue(maxsize=10 * BATCH)
        subscription = self.app.recorder.subscribe(gt=position)
        feeder = threading.Thread(target=self._feed, args=(subscription, inbox), daemon=True)
        feeder.start()
        last_log, logged_position = time.monotonic(), -1
        try:
            while not self.stopping.is_set():
                batch = self._take_batch(inbox)
                if batch:
                    position = self._publish(producer, batch)
                    self._save_position(conn, position)
                    self.published += len(batch)
                if time.monotonic() - last_log > 10 and position != logged_position:
                    last_log, logged_position = time.monotonic(), position
                    self._log_lag(conn, position)
        finally:
            subscription.stop()

    def _feed(self, subscription: Any, inbox: queue.Queue[Any]) -> None:
        try:
            for notification in subscription:
                inbox.put(notification)
        except Exception as exc:  # noqa: BLE001 - surfaced through the inbox
            inbox.put(exc)

    def _take_batch(self, inbox: queue.Queue[Any]) -> list[Any]:
        try:
            first = inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < BATCH:
            try:
                batch.append(inbox.get_nowait())
            except queue.Empty:
                break
        errors = [b for b in batch if isinstance(b, Exception)]
        if errors:
            raise errors[0]
        return batch

    def _publish(self, producer: Any, batch: list[Any]) -> int:
        transcoder = self.app.mapper.transcoder
        futures = []
        for notification in batch:
            key, value, headers = encode(from_notification(notification, transcoder))
            futures.append(producer.send(self.topic, key=key, value=value, headers=headers))
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)  # raises if the broker did not acknowledge
        return int(batch[-1].id)

    def _log_lag(self, conn: psycopg.Connection[Any], position: int) -> None:
        head = self.app.recorder.max_notification_id() or 0
        log.info("relay %s: position %d, store head %d, lag %d events, published %d",
                 self.name, position, head, head - position, self.published)
