"""The event catalogue: the published language, stable and versioned.

These names are what the event store records and what Kafka consumers match
on; they never change meaning. A new shape of an event is a new version.
"""

from __future__ import annotations

USER_REGISTERED = "user.registered.v1"
WALLET_OPENED = "wallet.opened.v1"
WALLET_DEPOSITED = "wallet.deposited.v1"
WALLET_CHARGED = "wallet.charged.v1"
WALLET_REFUNDED = "wallet.refunded.v1"
JOB_REQUESTED = "job.requested.v1"
JOB_STARTED = "job.started.v1"
JOB_COMPLETED = "job.completed.v1"
JOB_FAILED = "job.failed.v1"

# type -> fields besides the envelope (originator_id, originator_version, timestamp)
CATALOGUE: dict[str, tuple[str, ...]] = {
    USER_REGISTERED: ("name", "email", "password_hash"),
    WALLET_OPENED: ("user_id",),
    WALLET_DEPOSITED: ("user_id", "amount", "idempotency_key"),
    WALLET_CHARGED: ("user_id", "job_id", "amount", "model_name", "model_version"),
    WALLET_REFUNDED: ("user_id", "job_id", "amount", "reason"),
    JOB_REQUESTED: ("job_id", "user_id", "model_name", "model_version", "features", "price"),
    JOB_STARTED: ("user_id",),
    JOB_COMPLETED: ("user_id", "result", "model_version", "timings"),
    JOB_FAILED: ("user_id", "reason"),
}

# Fields that never leave the write side (not published to Kafka, never logged).
PRIVATE_FIELDS = frozenset({"password_hash"})
