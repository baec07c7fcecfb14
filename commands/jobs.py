"""Job commands: a job requested and paid for, and its outcome settled (completed, failed,
expired or dead-lettered; one job or a batch of outcomes, through one decision)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from commands.results import Accepted, Outcome, SaleReport
from commands.retry import retry_on_conflict
from commands.write_side import WriteSide, last_position
from domain.errors import (
    ExplanationUnavailable,
    JobAlreadyFinished,
    JobNotFound,
)
from domain.features import unseen_categories, validate_features
from domain.ids import wallet_id_for
from domain.job import DEAD_LETTERED, EXPIRED, MODEL_ERROR, PredictionJob
from domain.wallet import Wallet


class Jobs(WriteSide):
    """The job commands of CarpriceApp."""

    @retry_on_conflict
    def request_prediction(self, user_id: UUID, model_name: str, features: dict[str, Any],
                           job_id: UUID | None = None, traceparent: str | None = None,
                           deadline_seconds: int | None = None, explain: bool = False,
                           api_key: UUID | None = None) -> Accepted:
        """Validate the features, then charge the wallet (the model's price, plus the
        explanation's surcharge when one is asked for) and record the job in one transaction."""
        offer = self.catalog.offer(model_name)
        if explain and not offer.explain_price:
            raise ExplanationUnavailable(offer.name, offer.version)
        clean = validate_features(offer.input_schema, features)
        warnings = tuple(f"{name}: {clean[name]!r} was not seen in training; it is predicted as "
                         "an unseen category" for name in unseen_categories(offer.input_schema, clean))
        wallet = self._wallet(user_id)
        job_id = job_id or uuid4()
        if job_id in wallet.charges:  # a retry of a request already accepted
            return self._answer(wallet, job_id, user_id, warnings)
        surcharge = offer.explain_price if explain else 0
        price = offer.price + surcharge
        wallet.reserve(job_id, price, offer.name, offer.version,
                       api_key=str(api_key) if api_key else None)
        job = PredictionJob(job_id=job_id, user_id=user_id, model_name=offer.name,
                            model_version=offer.version, features=clean, price=price,
                            traceparent=traceparent, deadline=self._deadline(deadline_seconds),
                            explain=explain, surcharge=surcharge)
        # The job first: once a projection shows the charge, it shows the job as well
        # (one partition per user, events applied in order).
        recordings = self.save(job, wallet)
        return Accepted(job_id, offer.name, offer.version, price, wallet.balance,
                        last_position(recordings), created=True, deadline=job.deadline,
                        warnings=warnings)

    def accepted(self, user_id: UUID, job_id: UUID) -> Accepted | None:
        """The answer to a job request already committed (its job id derived from the
        request's Idempotency-Key), or None if no such job was charged: what a retry gets when
        the first try committed but its answer was lost."""
        wallet = self._wallet(user_id)
        return self._answer(wallet, job_id, user_id) if job_id in wallet.charges else None

    def _answer(self, wallet: Wallet, job_id: UUID, user_id: UUID,
                warnings: tuple[str, ...] = ()) -> Accepted:
        """What the request of a job already charged answers again."""
        job = self.job(job_id, user_id)
        return Accepted(job_id, job.model_name, job.model_version, job.price, wallet.balance,
                        None, created=False, deadline=job.deadline, warnings=warnings)

    def complete_prediction(self, job_id: UUID, result: float, model_version: str,
                            timings: dict[str, float] | None = None) -> bool:
        """Record the result and capture the job's hold (releasing the surcharge of an
        explanation that failed) in one transaction; a second completion is a no-op (False)."""
        return self.record_outcome(Outcome(job_id, result, model_version, timings))

    def fail_prediction(self, job_id: UUID, reason: str, code: str = MODEL_ERROR) -> bool:
        """Record the failure and release the hold (refund an older charge) in one
        transaction, once."""
        return self.record_outcome(Outcome(job_id, error=reason, code=code))

    @retry_on_conflict
    def record_outcome(self, o: Outcome) -> bool:
        """One job's outcome, settled (see _settle) and saved in one transaction; True when
        the job changed (a redelivered outcome changes nothing)."""
        job = self.job(o.job_id)
        job_changed, wallet = self._settle(job, o, self._wallet)
        if job_changed or wallet is not None:
            self.save(job, *([wallet] if wallet is not None else []))
        return job_changed

    def _settle(self, job: PredictionJob, o: Outcome,
                wallet_of: Callable[[UUID], Wallet]) -> tuple[bool, Wallet | None]:
        """The one place a job's outcome is decided, for one job or a batch: a price
        completes it and captures its hold (giving back an undelivered explanation's
        surcharge); an error fails it and releases its hold (refunds an older charge).
        Returns whether the job changed and the owner's wallet when that changed."""
        if o.code == EXPIRED:  # the reaper's: no outcome by the deadline
            if not job.expire():
                return False, None  # it ended first: left as it is
            wallet = wallet_of(job.user_id)
            return True, wallet if wallet.release(job.id, job.error or EXPIRED) else None
        if o.error is None:
            if not job.complete(o.result or 0.0, o.model_version, o.timings or {}, o.traceparent,
                                o.interval, o.explanation, o.explain_error):
                return False, None  # completed already: the wallet is not even read
            wallet = wallet_of(job.user_id)
            return True, wallet if self._capture(job, wallet) else None
        failed = job.fail(o.error[:500], o.code, o.traceparent)
        wallet = wallet_of(job.user_id)
        return failed, wallet if wallet.release(job.id, o.error[:500]) else None

    @staticmethod
    def _capture(job: PredictionJob, wallet: Wallet) -> bool:
        """Settle a finished job's credits: capture the hold, give back an undelivered
        explanation's surcharge (for an older charged job, only that refund)."""
        reason = f"explanation failed: {job.explain_error}"[:500] if job.surcharge_owed else ""
        return wallet.capture(job.id, job.surcharge_owed, reason)

    def dead_letter_prediction(self, job_id: UUID, error: str) -> bool:
        """Fail and refund a job whose request could not be handled at all; False if it ended."""
        try:
            return self.fail_prediction(job_id, f"the request could not be processed: {error}",
                                        DEAD_LETTERED)
        except JobAlreadyFinished:
            return False

    def expire_prediction(self, job_id: UUID) -> bool:
        """Fail and refund a job past its deadline, once; a job that ended is left as it is.

        A completion racing with this is decided by the job's version in the store: whichever
        is recorded first wins, and the other finds the job ended and does nothing.
        """
        return self.record_outcome(Outcome(job_id, error=EXPIRED, code=EXPIRED))

    @retry_on_conflict
    def report_sale(self, user_id: UUID, job_id: UUID, sold_price: float) -> SaleReport:
        """The price the owner's car sold for, on its job: `job.sale_reported.v1` (a new report
        supersedes the last; the same price again records nothing)."""
        job = self.job(job_id, user_id)  # JobNotFound for another user's job
        superseded = job.sold_price
        if job.report_sale(sold_price):
            self.save(job)
            return SaleReport(job_id, float(sold_price), superseded, recorded=True)
        return SaleReport(job_id, float(sold_price), None, recorded=False)

    def record_outcomes(self, outcomes: list[Outcome]) -> int:
        """Complete (+ capture) or fail (+ release) many jobs in one transaction; returns how
        many changed.

        Idempotent: jobs already ended are left alone. If the combined save loses a
        race, each outcome is recorded on its own (each of those commands retries).
        """
        try:
            return self._record_outcomes_together(outcomes)
        except IntegrityError:
            changed = 0
            for o in outcomes:
                try:
                    changed += self.record_outcome(o)
                except (JobAlreadyFinished, JobNotFound):
                    pass
            return changed

    def _record_outcomes_together(self, outcomes: list[Outcome]) -> int:
        jobs: dict[UUID, PredictionJob] = {}
        # the jobs and the wallets of the owners the outcomes name, in one read; a wallet the
        # outcomes did not name (or named wrongly) is read by _wallet_of, as its job says
        named = {wallet_id_for(o.user_id) for o in outcomes if o.user_id is not None}
        # only the wallets stay cached: an outcome ends its job, which this process (inference)
        # will not read again, while a wallet is read for each of its owner's jobs
        both = self.load_many([*(o.job_id for o in outcomes), *named], keep=named)
        loaded = {i: a for i, a in both.items() if isinstance(a, PredictionJob)}
        owners = {a.user_id for a in loaded.values()}
        wallets: dict[UUID, Wallet] = {a.user_id: a for a in both.values()
                                       if isinstance(a, Wallet) and a.user_id in owners}
        for o in outcomes:
            try:
                job = jobs.get(o.job_id) or loaded.get(o.job_id)
                if job is None:
                    raise JobNotFound(o.job_id)
                job_changed, wallet = self._settle(
                    job, o, lambda user: self._wallet_of(user, wallets))
                changed = job_changed or wallet is not None
            except (JobAlreadyFinished, JobNotFound):
                continue
            if changed:
                jobs[o.job_id] = job
        if jobs or wallets:
            self.save(*jobs.values(), *wallets.values())
        return len(jobs)
