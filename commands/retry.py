"""Bounded retries of optimistic-concurrency conflicts."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from eventsourcing.persistence import RecordConflictError

from domain.errors import Busy

P = ParamSpec("P")
T = TypeVar("T")
ATTEMPTS = 30


def retry_on_conflict(func: Callable[P, T]) -> Callable[P, T]:
    """Re-run a command whose save lost a race; after ATTEMPTS, raise Busy (never a 500)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(ATTEMPTS):
            try:
                return func(*args, **kwargs)
            except RecordConflictError:
                # jittered backoff spreads the racers out
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311
        raise Busy()

    return wrapper
