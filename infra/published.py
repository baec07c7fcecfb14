"""The published form of an event: what the relay puts on Kafka and consumers read.

Value: JSON {"type", "position", "aggregate_id", "aggregate_version", "timestamp",
"user_id", "data"[, "traceparent"]}; key: the user id (one user's events stay in order);
headers: event type, global position, aggregate id and version, and the W3C
`traceparent` of the request for the job events that carry one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from eventsourcing.persistence import Notification, StoredEvent, Transcoder

import orjson

from domain.events import PRIVATE_FIELDS

_ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic", "traceparent"}


class Undecodable(ValueError):
    """A message that is not a published carprice event."""


@dataclass(frozen=True)
class PublishedEvent:
    """One event as consumers see it."""

    type: str
    position: int
    aggregate_id: str
    aggregate_version: int
    timestamp: datetime
    user_id: str
    data: dict[str, Any]
    traceparent: str | None = None  # W3C trace context of the request the event belongs to
    # where a consumer read it (not part of the message; None for events read from the store)
    topic: str | None = field(default=None, compare=False)
    partition: int | None = field(default=None, compare=False)
    offset: int | None = field(default=None, compare=False)

    @property
    def source(self) -> str:
        """`topic[partition]@offset`, or `store@position` for an event read from the store."""
        if self.topic is None:
            return f"store@{self.position}"
        return f"{self.topic}[{self.partition}]@{self.offset}"


def _jsonable(value: object) -> object:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def from_notification(notification: Notification, transcoder: Transcoder) -> PublishedEvent:
    """The published form of a stored notification (decoded with the store's transcoder)."""
    return from_stored(notification, transcoder, notification.id)


def from_stored(stored: StoredEvent, transcoder: Transcoder, position: int = 0) -> PublishedEvent:
    """The published form of a stored event (position 0 when read by aggregate, not by log)."""
    state: dict[str, Any] = transcoder.decode(stored.state)
    data = {k: _jsonable(v) for k, v in state.items()
            if k not in _ENVELOPE and k not in PRIVATE_FIELDS}
    user_id = state.get("user_id") or stored.originator_id
    return PublishedEvent(
        type=stored.topic, position=position, aggregate_id=str(stored.originator_id),
        aggregate_version=stored.originator_version, timestamp=state["timestamp"],
        user_id=str(user_id), data=data, traceparent=state.get("traceparent"),
    )


def encode(event: PublishedEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the Kafka message."""
    value: dict[str, Any] = {
        "type": event.type, "position": event.position, "aggregate_id": event.aggregate_id,
        "aggregate_version": event.aggregate_version, "timestamp": event.timestamp.isoformat(),
        "user_id": event.user_id, "data": event.data}
    if event.traceparent:
        value["traceparent"] = event.traceparent
    headers = [("event_type", event.type.encode()), ("position", str(event.position).encode()),
               ("aggregate_id", event.aggregate_id.encode()),
               ("aggregate_version", str(event.aggregate_version).encode())]
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    try:
        body = orjson.dumps(value)
    except TypeError:  # what orjson does not take (an integer beyond 64 bits): the standard json
        body = json.dumps(value, separators=(",", ":")).encode()
    return event.user_id.encode(), body, headers


def decode(value: bytes | None, topic: str | None = None, partition: int | None = None,
           offset: int | None = None) -> PublishedEvent:
    """A Kafka message value back into a PublishedEvent; Undecodable if it is not one."""
    try:
        raw = orjson.loads(value or b"")
        traceparent = raw.get("traceparent")
        return PublishedEvent(
            type=str(raw["type"]), position=int(raw["position"]),
            aggregate_id=str(UUID(str(raw["aggregate_id"]))),
            aggregate_version=int(raw["aggregate_version"]),
            timestamp=_aware(datetime.fromisoformat(raw["timestamp"])),
            user_id=str(UUID(str(raw["user_id"]))), data=dict(raw["data"]),
            traceparent=traceparent if isinstance(traceparent, str) else None,
            topic=topic, partition=partition, offset=offset,
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise Undecodable(f"not a carprice event: {type(exc).__name__}: {exc}"[:300]) from exc


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return when
