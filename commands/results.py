"""What commands return: small immutable results, never aggregates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.job import MODEL_ERROR


@dataclass(frozen=True)
class Account:
    """A user as commands return it (no password hash)."""

    user_id: UUID
    name: str
    email: str


@dataclass(frozen=True)
class WalletState:
    """A wallet after a command: balance, version, and its last event's position."""

    user_id: UUID
    balance: int
    version: int
    position: int | None
    changed: bool
    reserved: int = 0  # held for jobs that have not ended
    promotional: int = 0  # the part of `balance` from grants (it expires)


@dataclass(frozen=True)
class Outcome:
    """What inference made of one job: a price, or the reason it failed."""

    job_id: UUID
    result: float | None = None
    model_version: str = ""
    timings: dict[str, float] | None = None
    error: str | None = None
    code: str = MODEL_ERROR  # why it failed, when it did (domain.job codes)
    traceparent: str | None = None  # the trace the outcome belongs to
    interval: dict[str, float] | None = None  # {"low", "high", "level"}
    explanation: dict[str, Any] | None = None  # {"base", "contributions"} when bought
    explain_error: str | None = None  # why a bought explanation could not be made
    user_id: UUID | None = None  # the job's owner, when known: its wallet is read with the job


@dataclass(frozen=True)
class Accepted:
    """A prediction request that was charged and recorded."""

    job_id: UUID
    model_name: str
    model_version: str
    price: int
    balance: int
    position: int | None
    created: bool  # False when the same job id was accepted before
    deadline: datetime | None = None
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class BatchAccepted:
    """A fleet batch that was charged and recorded, one job per row."""

    batch_id: UUID
    model_name: str
    model_version: str
    price: int  # per row
    rows: int
    balance: int
    created: bool  # False when the same batch id was accepted before


@dataclass(frozen=True)
class SaleReport:
    """A sale price reported on a job."""

    job_id: UUID
    sold_price: float
    superseded: float | None  # the price it replaces, if one was reported before
    recorded: bool  # False: the same price was reported already
