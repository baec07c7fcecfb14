"""How every long-running process stops: one helper, one behaviour."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("carprice")


def stop_on_signals(name: str, stop: Callable[[], None]) -> None:
    """The first SIGTERM or SIGINT logs it and calls `stop`: the process finishes what it holds
    (a batch, a delivery, a publish), leaves its group or lock, and exits. A second SIGINT
    (Ctrl-C again) exits at once. Install it in the main thread."""

    def first(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: signal %d, finishing what it holds and stopping", name, signum)
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))
        stop()

    signal.signal(signal.SIGTERM, first)
    signal.signal(signal.SIGINT, first)
