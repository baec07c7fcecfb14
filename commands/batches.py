"""Batch commands: a fleet checked whole, then charged and recorded as one job per car."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError

from commands.results import BatchAccepted
from commands.retry import retry_on_conflict
from commands.write_side import WriteSide
from domain.batch import MAX_ROWS as MAX_BATCH_ROWS
from domain.batch import PriceBatch
from domain.errors import (
    BatchNotFound,
    InsufficientCredits,
    InvalidBatch,
    InvalidFeatures,
)
from domain.features import validate_features
from domain.job import MAX_SALE_PRICE, PredictionJob


class Batches(WriteSide):
    """The batch commands of CarpriceApp."""

    @retry_on_conflict
    def request_batch(self, user_id: UUID, model_name: str, rows: Sequence[Any], source: str,
                      batch_id: UUID | None = None, api_key: UUID | None = None) -> BatchAccepted:
        """Validate every row up front (one InvalidBatch names all the bad ones), then charge
        rows x price and record the batch and one job per row in one transaction."""
        offer = self.catalog.offer(model_name)
        if not rows:
            raise InvalidBatch({}, "a batch needs at least one car")
        if len(rows) > MAX_BATCH_ROWS:
            raise InvalidBatch({}, f"a batch holds at most {MAX_BATCH_ROWS} cars, not {len(rows)}")
        clean, sold, errors = [], [], {}
        for i, raw in enumerate(rows):
            # a row may carry the price its car sold for: reported on its job, not a feature
            features, sale, problem = _sale_of(raw)
            try:
                clean.append(validate_features(offer.input_schema, features))
            except InvalidFeatures as exc:
                errors[i] = exc.errors
            sold.append(sale)
            if problem:
                errors.setdefault(i, {})["sold_price"] = problem
        if errors:
            raise InvalidBatch(errors)
        batch_id = batch_id or uuid4()
        wallet = self._wallet(user_id)
        try:
            previous: PriceBatch = self.repository.get(batch_id)
        except AggregateNotFoundError:
            previous = None  # type: ignore[assignment]
        if previous is not None:  # a retry of a batch already accepted
            if previous.user_id != user_id:
                raise BatchNotFound(batch_id)
            return BatchAccepted(batch_id, previous.model_name, previous.model_version,
                                 previous.price, previous.rows, wallet.balance, created=False)
        total = offer.price * len(clean)
        wallet.expire_grants()
        if total > wallet.balance:
            raise InsufficientCredits(wallet.balance, total, f"{len(clean)} cars with {offer.name}")
        batch = PriceBatch(batch_id=batch_id, user_id=user_id, model_name=offer.name,
                           model_version=offer.version, price=offer.price, rows=len(clean),
                           source=source)
        # a deadline that leaves time for the whole batch to run through the pipeline
        deadline = self._deadline(max(self.deadline_seconds, len(clean) // 10))
        jobs = []
        for row, features in enumerate(clean):
            job_id = uuid5(batch_id, str(row))
            wallet.reserve(job_id, offer.price, offer.name, offer.version,
                           api_key=str(api_key) if api_key else None)
            job = PredictionJob(job_id=job_id, user_id=user_id, model_name=offer.name,
                                model_version=offer.version, features=features,
                                price=offer.price, deadline=deadline, batch_id=batch_id,
                                batch_row=row)
            if sold[row] is not None:
                job.report_sale(sold[row])
            jobs.append(job)
        self.save(batch, *jobs, wallet)
        return BatchAccepted(batch_id, offer.name, offer.version, offer.price, len(clean),
                             wallet.balance, created=True)


def _sale_of(raw: Any) -> tuple[Any, float | None, str | None]:
    """(the features, the sale price or None, what is wrong with it) of one batch row."""
    if not isinstance(raw, dict) or "sold_price" not in raw:
        return raw, None, None
    features = {k: v for k, v in raw.items() if k != "sold_price"}
    value = raw["sold_price"]
    if value is None or value == "":
        return features, None, None  # not sold (yet): a blank cell
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 < value <= MAX_SALE_PRICE:
        return features, None, f"must be a price above 0 and at most {MAX_SALE_PRICE:,}, or empty"
    return features, float(value), None
