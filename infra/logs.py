"""Logging for every process: JSON lines in production, readable lines in a terminal.

Each line carries the request id, user id, job id and trace id when known: bound
for a block with `context(...)`, or passed per call as `extra={"job_id": ...}`.
Bearer tokens are scrubbed from every message, whatever logged them; passwords
are never handed to a logger in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from infra.settings import Settings

FIELDS = ("request_id", "user_id", "job_id", "trace_id")
_context: ContextVar[dict[str, str]] = ContextVar("carprice_log_context", default={})  # noqa: B039
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*|cpk_[0-9a-f]{32}_[\w-]+")  # and API keys


def scrub(text: str) -> str:
    """The text with every JWT and API key replaced."""
    return _JWT.sub("[token]", text)


@contextmanager
def context(**fields: object) -> Iterator[None]:
    """Add fields to every log line written inside the block (this thread / task only)."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def fields_of(record: logging.LogRecord) -> dict[str, str]:
    """The context fields of a record: bound ones, overridden by `extra=`."""
    out = dict(_context.get())
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            out[name] = str(value)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "process": self.process, "pid": record.process,
            "logger": record.name, "msg": scrub(record.getMessage()), **fields_of(record)}
        for key in ("route", "method", "status", "duration_ms"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class ConsoleFormatter(logging.Formatter):
    """`time LEVEL process[pid] logger: message key=value ...`."""

    def __init__(self, process: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {process}[%(process)d] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = scrub(super().format(record))
        extra = " ".join(f"{k}={v}" for k, v in fields_of(record).items())
        return f"{text} {extra}" if extra else text


def setup(process: str, settings: Settings) -> None:
    """Configure the root logger once: LOG_FORMAT=json|console (json outside embedded mode)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if settings.logs_as_json else ConsoleFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("kafka").setLevel(settings.kafka_log_level.upper())
    # kafka-python's notice when a consumer without a group (e.g. a readiness probe) starts
    logging.getLogger("kafka.coordinator.consumer").setLevel("ERROR")
