"""One LISTEN connection per API process, fanned out to the requests waiting on a user's rows.

The projector NOTIFYs, in the transaction of each batch, the ids of the users whose rows
changed ('*' after a rebuild: everyone). A waiting request holds no database connection and
no thread: it awaits an asyncio.Event. Subscribing before reading means no notification
between the read and the wait is missed. Without a connection to listen on, waiters simply
wait out their bound (nothing polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from infra import listen

log = logging.getLogger("carprice.api")


class Notifier:
    """Wakes subscribers of a user id when a NOTIFY on `channel` names it."""

    def __init__(self, conninfo: str, channel: str) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.listening = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start listening in the background (reconnects by itself)."""
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def subscribe(self, user_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever `user_id`'s rows change, for the duration of the block."""
        woken = asyncio.Event()
        self._waiters[user_id].add(woken)
        try:
            yield woken
        finally:
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[user_id]

    def wake(self, payload: str) -> None:
        """Set the events of the users a notification names."""
        if payload == "*":
            users: list[str] = list(self._waiters)
        else:
            users = payload.split(",")
        for user in users:
            for woken in self._waiters.get(user, ()):
                woken.set()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.listening.set()
                    delay = 0.5
                    await self._dispatch(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; waiters wait out their bound
                self.listening.clear()
                self.wake("*")  # whoever waits looks again now rather than at its deadline
                log.warning("notifier: %s: %s; listening again in %.1f s", type(exc).__name__, exc,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _dispatch(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        """Wake waiters as notifications arrive, until the connection breaks. The event loop
        watches the socket (psycopg's notifies() would wake ten times a second, idle or not)."""
        loop = asyncio.get_running_loop()
        broken: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                for payload in listen.drain(conn):
                    self.wake(payload)
            except psycopg.Error as exc:
                if not broken.done():
                    broken.set_exception(exc)

        fd = conn.pgconn.socket
        loop.add_reader(fd, readable)
        try:
            readable()  # what arrived before the reader was in place
            await broken
        finally:
            loop.remove_reader(fd)


async def wait(woken: asyncio.Event, timeout: float) -> bool:
    """True when woken within `timeout` seconds (the event is cleared for the next wait)."""
    try:
        await asyncio.wait_for(woken.wait(), timeout)
    except TimeoutError:
        return False
    woken.clear()
    return True
