"""A prediction job: requested, then exactly one outcome (finished or failed); the price the
car actually sold for may be reported on it, any number of times (the latest counts)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidSalePrice, JobAlreadyFinished, SaleNotReportable
from domain.events import JOB_COMPLETED, JOB_FAILED, JOB_REQUESTED, JOB_SALE_REPORTED
from domain.features import Car

QUEUED, STARTED, FINISHED, FAILED = "queued", "started", "finished", "failed"
TERMINAL = {FINISHED, FAILED}

# Why a job failed (`code` on job.failed.v1; older events have none).
MODEL_ERROR = "model_error"  # the model could not handle the input, or gave no usable price
MODEL_UNAVAILABLE = "model_unavailable"  # the pinned version could not be loaded
DEAD_LETTERED = "dead_lettered"  # every attempt to handle the request failed
EXPIRED = "expired"  # no outcome by the deadline
MAX_SALE_PRICE = 100_000_000  # a reported sale price above it is a typo, not a car


class PredictionJob(Aggregate):
    """One paid request for a price prediction."""

    TOPIC = "carprice.job"

    class Created(Aggregate.Created):
        # The library's generic creation event; ours is named below. Never triggered.
        TOPIC = "job.created.v0"

    @staticmethod
    def create_id(job_id: UUID) -> UUID:
        return job_id

    @event("Requested", topic=JOB_REQUESTED)
    def __init__(self, job_id: UUID, user_id: UUID, model_name: str, model_version: str,
                 features: Car, price: int, traceparent: str | None = None,
                 deadline: datetime | None = None, explain: bool = False,
                 surcharge: int = 0, batch_id: UUID | None = None,
                 batch_row: int | None = None) -> None:
        # traceparent: the W3C trace context of the request (metadata; it follows the job)
        # deadline: when the reaper fails and refunds the job if it has no outcome (older
        # events have none: the reaper then counts from the request's time)
        # explain: an explanation was bought; `surcharge` is its part of `price` (older
        # events have neither)
        # batch_id, batch_row: the fleet batch this job is row `batch_row` of (0-based)
        self.user_id = user_id
        self.model_name = model_name
        self.model_version = model_version
        self.features = features
        self.price = price
        self.deadline = deadline
        self.explain = explain
        self.surcharge = surcharge
        self.batch_id = batch_id
        self.batch_row = batch_row
        self.status = QUEUED
        self.result: float | None = None
        self.interval: dict[str, float] | None = None
        self.explanation: dict[str, Any] | None = None
        self.error: str | None = None
        self.code: str | None = None
        self.explain_error: str | None = None
        self.sold_price: float | None = None  # the latest sale price reported for the car

    @property
    def ended(self) -> bool:
        """True once the job finished or failed."""
        return self.status in TERMINAL

    def complete(self, result: float, model_version: str, timings: dict[str, float],
                 traceparent: str | None = None, interval: dict[str, float] | None = None,
                 explanation: dict[str, Any] | None = None,
                 explain_error: str | None = None) -> bool:
        """Record the predicted price (with its range and the explanation bought, or why the
        explanation failed); completing twice is a no-op (False)."""
        if self.status == FINISHED:
            return False
        if self.status == FAILED:
            raise JobAlreadyFinished(f"job {self.id} failed; it cannot be completed")
        if self.explain and explanation is None and explain_error is None:
            explain_error = "no explanation was produced"
        self._completed(user_id=self.user_id, result=float(result), model_version=model_version,
                        timings=timings, traceparent=traceparent, interval=interval,
                        explanation=explanation if self.explain else None,
                        explain_error=explain_error if self.explain else None)
        return True

    @property
    def surcharge_owed(self) -> int:
        """What to give back for an explanation that was bought and not delivered."""
        return self.surcharge if self.status == FINISHED and self.explain_error else 0

    def fail(self, reason: str, code: str = MODEL_ERROR, traceparent: str | None = None) -> bool:
        """Record a failure; failing twice is a no-op (False), a completed job refuses."""
        if self.status == FAILED:
            return False
        if self.status == FINISHED:
            raise JobAlreadyFinished(f"job {self.id} is completed; it cannot fail")
        self._failed(user_id=self.user_id, reason=reason, code=code, traceparent=traceparent)
        return True

    def expire(self) -> bool:
        """Fail a job that has no outcome by its deadline; a job that ended is left alone."""
        if self.ended:
            return False
        self._failed(user_id=self.user_id, reason="expired: no result by the deadline "
                     f"({self.deadline.isoformat() if self.deadline else 'none'}); refunded",
                     code=EXPIRED)
        return True

    def report_sale(self, sold_price: float) -> bool:
        """The price the car actually sold for; a new report supersedes the last one (False:
        the same price again, nothing recorded). A failed job has no price to compare with."""
        if isinstance(sold_price, bool) or not isinstance(sold_price, int | float) \
                or not math.isfinite(sold_price) or not 0 < sold_price <= MAX_SALE_PRICE:
            raise InvalidSalePrice(f"sold_price must be a price above 0 and at most {MAX_SALE_PRICE:,}")
        if self.status == FAILED:
            raise SaleNotReportable(f"job {self.id} failed: it has no price to compare a sale with")
        if self.sold_price == float(sold_price):
            return False
        self._sale_reported(user_id=self.user_id, sold_price=float(sold_price))
        return True

    @event("SaleReported", topic=JOB_SALE_REPORTED)
    def _sale_reported(self, user_id: UUID, sold_price: float) -> None:
        self.sold_price = sold_price

    @event("Completed", topic=JOB_COMPLETED)
    def _completed(self, user_id: UUID, result: float, model_version: str,
                   timings: dict[str, float], traceparent: str | None = None,
                   interval: dict[str, float] | None = None,
                   explanation: dict[str, Any] | None = None,
                   explain_error: str | None = None) -> None:
        # interval, explanation, explain_error: absent from older events
        self.status = FINISHED
        self.result = result
        self.interval = interval
        self.explanation = explanation
        self.explain_error = explain_error

    @event("Failed", topic=JOB_FAILED)
    def _failed(self, user_id: UUID, reason: str, traceparent: str | None = None,
                code: str | None = None) -> None:
        self.status = FAILED
        self.error = reason
        self.code = code
