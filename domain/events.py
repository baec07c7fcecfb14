"""The event catalogue: the published language, stable and versioned.

These names are what the event store records and what Kafka consumers match
on; they never change meaning. A new shape of an event is a new version.
"""

from __future__ import annotations

USER_REGISTERED = "user.registered.v1"
USER_ERASED = "user.erased.v1"
WALLET_OPENED = "wallet.opened.v1"
WALLET_DEPOSITED = "wallet.deposited.v1"
WALLET_CHARGED = "wallet.charged.v1"
WALLET_REFUNDED = "wallet.refunded.v1"
WALLET_RESERVED = "wallet.reserved.v1"
WALLET_CAPTURED = "wallet.captured.v1"
WALLET_RELEASED = "wallet.released.v1"
WALLET_GRANTED = "wallet.granted.v1"
WALLET_GRANT_EXPIRED = "wallet.grant_expired.v1"
JOB_REQUESTED = "job.requested.v1"
JOB_COMPLETED = "job.completed.v1"
JOB_FAILED = "job.failed.v1"
JOB_SALE_REPORTED = "job.sale_reported.v1"
BATCH_SUBMITTED = "batch.submitted.v1"
KEY_ISSUED = "key.issued.v1"
KEY_REVOKED = "key.revoked.v1"
MODEL_RELEASED = "model.released.v1"
MODEL_PROMOTED = "model.promoted.v1"
MODEL_ROLLED_BACK = "model.rolled_back.v1"

# Fields that never leave the write side (not published to Kafka, never logged).
PRIVATE_FIELDS = frozenset({"password_hash", "sealed"})
