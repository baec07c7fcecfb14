"""Receipts: what a job cost and what it paid for, tied to the events that prove it.

A receipt names the job, the model version (with the sha256 of its card and of its artifact),
the sha256 of the exact input, the result, the credits held, paid and given back, and every
event that moved them: its aggregate, version, position in the store and the sha256 of its
stored bytes. `verify` rebuilds the receipt from the store and lists what differs, so anyone
holding one can have it checked, and a receipt that was altered is caught.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from commands.audit import key_label
from domain.catalog import ModelFingerprint
from domain.ids import wallet_id_for
from domain.job import PredictionJob
from infra.eventstore import stored_events

RECEIPT_VERSION = 1
Fingerprints = Callable[[str, str], ModelFingerprint | None]
# wallet events that move a job's credits, and what each does to the receipt's sums
_MOVES = {"Reserved": "held", "Captured": "paid", "Released": "released", "Charged": "paid",
          "Refunded": "released"}


def input_sha256(features: Mapping[str, Any]) -> str:
    """The sha256 of the input as canonical JSON (keys sorted, no spaces, UTF-8)."""
    text = json.dumps(features, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _refs(app: Application[UUID], kind: str, aggregate_id: UUID,
          events: list[Any]) -> Iterator[dict[str, Any]]:
    stored = stored_events(app.recorder, aggregate_id, [e.originator_version for e in events])
    for e in events:
        position, topic, state = stored[e.originator_version]
        yield {"id": f"{aggregate_id}@{e.originator_version}", "aggregate": kind,
               "aggregate_id": str(aggregate_id), "version": e.originator_version,
               "position": position, "type": topic, "time": e.timestamp.isoformat(),
               "sha256": hashlib.sha256(state).hexdigest()}


def receipt(app: Application[UUID], job: PredictionJob,
            fingerprint: Fingerprints | None = None) -> dict[str, Any]:
    """The receipt of a job, built from the event store (the wallet is replayed for its
    events that name the job)."""
    job_events: list[Any] = list(app.events.get(job.id))
    mine: list[Any] = [e for e in app.events.get(wallet_id_for(job.user_id))
            if getattr(e, "job_id", None) == job.id and type(e).__name__ in _MOVES]
    credits = {"price": job.price, "surcharge": job.surcharge, "held": 0, "paid": 0,
               "released": 0, "forfeited": 0}
    for e in mine:
        kind = type(e).__name__
        credits[_MOVES[kind]] += int(e.amount)
        credits["forfeited"] += int(getattr(e, "forfeited", 0))
        if kind == "Refunded":  # older wallets: paid at submit, refunded on failure
            credits["paid"] -= int(e.amount)
    credits["on_hold"] = max(0, credits["held"] - credits["paid"] - credits["released"])
    found = fingerprint(job.model_name, job.model_version) if fingerprint else None
    events = sorted([*_refs(app, "job", job.id, job_events),
                     *_refs(app, "wallet", wallet_id_for(job.user_id), mine)],
                    key=lambda r: r["position"])
    made = {
        "receipt_version": RECEIPT_VERSION,
        "job_id": str(job.id),
        "user_id": str(job.user_id),
        "batch_id": str(job.batch_id) if job.batch_id else None,
        "batch_row": job.batch_row,
        "status": job.status,
        "requested_at": job_events[0].timestamp.isoformat(),
        "ended_at": job_events[-1].timestamp.isoformat() if job.ended else None,
        "model": {"name": job.model_name, "version": job.model_version,
                  "card_sha256": found.card_sha256 if found else None,
                  "artifact_sha256": found.artifact_sha256 if found else None},
        "input_sha256": input_sha256(job.features),
        "explain": job.explain,
        "credits": credits,
        "result": None if job.result is None else {"price": job.result, "interval": job.interval},
        "error": None if job.error is None else {"code": job.code, "reason": job.error},
        "events": events,
    }
    # the API key that spent the credits; absent (not null) when the account holder did, so
    # receipts issued before keys existed still verify field for field
    spent_by = next((e.api_key for e in mine if getattr(e, "api_key", None)), None)
    if spent_by:
        made["api_key"] = {"key_id": spent_by, "name": key_label(app, spent_by)}
    return made


def _flat(value: object, path: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flat(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        yield f"{path}.length", len(value)
        for i, v in enumerate(value):
            yield from _flat(v, f"{path}[{i}]")
    else:
        yield path, value


def differences(claimed: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """What a receipt says that the store does not: one line per field, in the receipt's order
    (fields missing from it or added to it count too)."""
    said, truth = dict(_flat(claimed)), dict(_flat(actual))
    lines = []
    for path in dict.fromkeys([*truth, *said]):
        if path not in said:
            lines.append(f"{path}: missing from the receipt (the store says {truth[path]!r})")
        elif path not in truth:
            lines.append(f"{path}: not in the store's receipt (the receipt says {said[path]!r})")
        elif said[path] != truth[path]:
            lines.append(f"{path}: the receipt says {said[path]!r}, the store says {truth[path]!r}")
    return lines
