"""The carprice Application: one method per command, over one event store.

Users, wallets and jobs share one store because a charge and its job must be
saved in one transaction; the store's optimistic concurrency (unique aggregate
id + version) makes concurrent commands safe without locks of our own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Recording

from commands.accounts import Accounts
from commands.group_commit import GroupCommitter
from commands.results import Accepted, Account, BatchAccepted, Outcome, WalletState
from commands.retry import retry_on_conflict
from domain.batch import MAX_ROWS as MAX_BATCH_ROWS
from domain.batch import PriceBatch
from domain.catalog import ModelCatalog
from domain.errors import (
    BatchNotFound,
    ExplanationUnavailable,
    InsufficientCredits,
    InvalidBatch,
    InvalidCredentials,
    InvalidFeatures,
    InvalidUserData,
    JobAlreadyFinished,
    JobNotFound,
)
from domain.features import unseen_categories, validate_features
from domain.ids import wallet_id_for
from domain.job import DEAD_LETTERED, EXPIRED, MODEL_ERROR, PredictionJob
from domain.text import text_problem
from domain.wallet import Wallet
from infra.eventsourcing_compat import Application
from infra.eventstore import latest_stored, postgres_env, stored_after
from infra.eventstore import pools as eventstore_pools
from infra.personal import personal_data_for
from infra.pg import database_url, discard_broken
from infra.published import PublishedEvent, from_notification, from_stored
from infra.settings import Settings

DEFAULT_DEADLINE_SECONDS = 300
MIN_DEADLINE_SECONDS, MAX_DEADLINE_SECONDS = 5, 24 * 3600

__all__ = ["Accepted", "Account", "CarpriceApp", "Outcome", "WalletState"]


def _last_position(recordings: list[Recording[UUID]]) -> int | None:
    ids = [r.notification.id for r in recordings]
    return max(ids) if ids else None


class CarpriceApp(Accounts, Application):
    """The write side of carprice."""

    name = "carprice"
    # A wallet loads from its latest snapshot plus at most this many events (users with a long
    # history would otherwise replay all of it on a process's first read of their wallet).
    snapshotting_intervals = {Wallet: 100}  # noqa: RUF012 - the library's class attribute

    def __init__(self, catalog: ModelCatalog, env: dict[str, str] | None = None,
                 group_commit: bool = False, deadline_seconds: int = DEFAULT_DEADLINE_SECONDS,
                 commit_timeout: float = 30.0) -> None:
        super().__init__(env=env)
        self.personal = personal_data_for(self.recorder)
        self.catalog = catalog
        self.deadline_seconds = deadline_seconds
        self._committer = (GroupCommitter(self.events.put, timeout=commit_timeout)
                           if group_commit else None)

    @classmethod
    def from_settings(cls, settings: Settings, catalog: ModelCatalog,
                      pool_size: int | None = None) -> CarpriceApp:
        """The write side on the settings' PostgreSQL (whose schema `carprice migrate` made)."""
        env = postgres_env(database_url(settings), pool_size or settings.db_pool_size)
        # Cached aggregates are fast-forwarded from the store on every get, so they are
        # never stale, even with several processes writing.
        env["AGGREGATE_CACHE_MAXSIZE"] = "10000"
        return cls(catalog, env=env, group_commit=settings.group_commit,
                   deadline_seconds=settings.job_deadline_seconds,
                   commit_timeout=settings.commit_timeout_seconds)

    def snapshot_after_save(self, processing_event: ProcessingEvent[UUID]) -> None:
        """At most one snapshot per aggregate per save, taken from the aggregate just saved.

        The library takes one per interval crossed (a fleet batch reserves thousands of times
        in one save) and rebuilds each from the store first; a wallet holding for thousands of
        jobs took 230 ms per snapshot that way. The saved aggregate is the recorded state at
        its version, so it is snapshotted as it is.
        """
        if self.snapshots is None:
            return
        due: set[UUID] = set()
        for e in processing_event.events:
            aggregate = processing_event.aggregates.get(e.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate else None
            if interval and e.originator_version % interval == 0:
                due.add(e.originator_id)
        aggregates: list[Any] = [processing_event.aggregates[i] for i in due]
        snapshots = [type(a).Snapshot.take(a) for a in aggregates]
        if snapshots:
            self.snapshots.put(snapshots)

    def record_events(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Application.save calls this, then takes snapshots and notifies as usual: with group
        commit only the insert is shared with other commands' inserts."""
        if self._committer is None or processing_event.tracking is not None:
            return super().record_events(processing_event)
        return self._committer.save(processing_event.events)

    def close(self) -> None:
        """Stop the group-commit writer, then close the store."""
        if self._committer is not None:
            self._committer.close()
        super().close()

    def discard_broken_connections(self) -> None:
        """After a database outage: drop the store's pooled connections the server ended."""
        discard_broken(*eventstore_pools(self.recorder))

    # -- reading the store (what other layers may know of it) -------------------

    def aggregate_version(self, aggregate_id: UUID) -> int:
        """The current version of an aggregate in the store (0: it does not exist)."""
        events = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return events[0].originator_version if events else 0

    @property
    def events_table(self) -> str:
        """The store's events table (for `versions.aggregate_version` on async connections)."""
        return str(self.recorder.events_table_name)  # type: ignore[attr-defined]

    def head_position(self) -> int:
        """The position of the last event recorded (0 in an empty store)."""
        return self.recorder.max_notification_id() or 0

    def published_after(self, position: int, limit: int = 500,
                        topics: Sequence[str] = ()) -> list[PublishedEvent]:
        """Events after `position` in log order, in their published form."""
        rows = self.recorder.select_notifications(start=position, limit=limit, topics=topics,
                                                  inclusive_of_start=False)
        return [from_notification(n, self.mapper.transcoder) for n in rows]

    def published_history(self, aggregate_id: str | UUID) -> list[PublishedEvent]:
        """Every event of one aggregate, in version order, in its published form."""
        rows = self.recorder.select_events(UUID(str(aggregate_id)))
        return [from_stored(s, self.mapper.transcoder) for s in rows]

    # -- wallet ----------------------------------------------------------------

    def _wallet(self, user_id: UUID) -> Wallet:
        try:
            return self.repository.get(wallet_id_for(user_id))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            raise InvalidCredentials() from None

    def _wallet_state(self, wallet: Wallet, recordings: list[Recording[UUID]]) -> WalletState:
        return WalletState(wallet.user_id, wallet.balance, wallet.version,
                           _last_position(recordings), bool(recordings), wallet.reserved,
                           wallet.promotional)

    @retry_on_conflict
    def deposit(self, user_id: UUID, amount: int, idempotency_key: str | None = None) -> WalletState:
        """Add credits; the same idempotency key credits once."""
        wallet = self._wallet(user_id)
        changed = wallet.deposit(amount, idempotency_key)
        return self._wallet_state(wallet, self.save(wallet) if changed else [])

    @retry_on_conflict
    def top_up_to(self, user_id: UUID, new_amount: int,
                  idempotency_key: str | None = None) -> WalletState:
        """Old clients' top-up to a total: deposits the difference, never lowers it."""
        wallet = self._wallet(user_id)
        changed = wallet.top_up_to(new_amount, idempotency_key)
        return self._wallet_state(wallet, self.save(wallet) if changed else [])

    def balance(self, user_id: UUID) -> WalletState:
        """The wallet as the event store has it now (the write side's view)."""
        return self._wallet_state(self._wallet(user_id), [])

    @retry_on_conflict
    def grant_credits(self, user_id: UUID, amount: int, expires_at: datetime, reason: str,
                      grant_id: str | None = None) -> WalletState:
        """Add promotional credits that expire at `expires_at` (an operator's command); the
        same grant id grants once."""
        problem = text_problem(reason) if isinstance(reason, str) else "must be a text"
        if problem or not reason.strip():
            raise InvalidUserData(f"reason {problem or 'must not be empty'}")
        wallet = self._wallet(user_id)
        changed = wallet.grant(grant_id or str(uuid4()), amount, expires_at, reason.strip()[:500])
        return self._wallet_state(wallet, self.save(wallet) if changed else [])

    @retry_on_conflict
    def expire_grants(self, user_id: UUID, now: datetime | None = None) -> int:
        """Expire what is left of the user's grants whose time has come, once (the wallet's
        version decides between racing expirers); how many expired."""
        wallet = self._wallet(user_id)
        expired = wallet.expire_grants(now)
        if expired:
            self.save(wallet)
        return expired

    # -- predictions -----------------------------------------------------------

    def _deadline(self, seconds: int | None) -> datetime:
        chosen = self.deadline_seconds if seconds is None else seconds
        chosen = max(MIN_DEADLINE_SECONDS, min(MAX_DEADLINE_SECONDS, int(chosen)))
        return datetime.now(UTC) + timedelta(seconds=chosen)

    @retry_on_conflict
    def request_prediction(self, user_id: UUID, model_name: str, features: dict[str, Any],
                           job_id: UUID | None = None, traceparent: str | None = None,
                           deadline_seconds: int | None = None, explain: bool = False) -> Accepted:
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
            job = self.job(job_id, user_id)
            return Accepted(job_id, job.model_name, job.model_version, job.price,
                            wallet.balance, None, created=False, deadline=job.deadline,
                            warnings=warnings)
        surcharge = offer.explain_price if explain else 0
        price = offer.price + surcharge
        wallet.reserve(job_id, price, offer.name, offer.version)
        job = PredictionJob(job_id=job_id, user_id=user_id, model_name=offer.name,
                            model_version=offer.version, features=clean, price=price,
                            traceparent=traceparent, deadline=self._deadline(deadline_seconds),
                            explain=explain, surcharge=surcharge)
        # The job first: once a projection shows the charge, it shows the job as well
        # (one partition per user, events applied in order).
        recordings = self.save(job, wallet)
        return Accepted(job_id, offer.name, offer.version, price, wallet.balance,
                        _last_position(recordings), created=True, deadline=job.deadline,
                        warnings=warnings)

    @retry_on_conflict
    def request_batch(self, user_id: UUID, model_name: str, rows: Sequence[Any], source: str,
                      batch_id: UUID | None = None) -> BatchAccepted:
        """Validate every row up front (one InvalidBatch names all the bad ones), then charge
        rows x price and record the batch and one job per row in one transaction."""
        offer = self.catalog.offer(model_name)
        if not rows:
            raise InvalidBatch({}, "a batch needs at least one car")
        if len(rows) > MAX_BATCH_ROWS:
            raise InvalidBatch({}, f"a batch holds at most {MAX_BATCH_ROWS} cars, not {len(rows)}")
        clean, errors = [], {}
        for i, raw in enumerate(rows):
            try:
                clean.append(validate_features(offer.input_schema, raw))
            except InvalidFeatures as exc:
                errors[i] = exc.errors
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
            wallet.reserve(job_id, offer.price, offer.name, offer.version)
            jobs.append(PredictionJob(job_id=job_id, user_id=user_id, model_name=offer.name,
                                      model_version=offer.version, features=features,
                                      price=offer.price, deadline=deadline, batch_id=batch_id,
                                      batch_row=row))
        self.save(batch, *jobs, wallet)
        return BatchAccepted(batch_id, offer.name, offer.version, offer.price, len(clean),
                             wallet.balance, created=True)

    def accepted(self, user_id: UUID, job_id: UUID) -> Accepted | None:
        """The answer to a job request already committed (its job id derived from the
        request's Idempotency-Key), or None if no such job was charged: what a retry gets when
        the first try committed but its answer was lost."""
        wallet = self._wallet(user_id)
        if job_id not in wallet.charges:
            return None
        job = self.job(job_id, user_id)
        return Accepted(job_id, job.model_name, job.model_version, job.price, wallet.balance,
                        None, created=False, deadline=job.deadline, warnings=())

    def job(self, job_id: UUID, user_id: UUID | None = None) -> PredictionJob:
        """A job (only the owner's, when a user is given)."""
        try:
            job: PredictionJob = self.repository.get(job_id)
        except AggregateNotFoundError:
            raise JobNotFound(job_id) from None
        if not isinstance(job, PredictionJob) or (user_id is not None and job.user_id != user_id):
            raise JobNotFound(job_id)
        return job

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

    def _wallet_of(self, user_id: UUID, wallets: dict[UUID, Wallet]) -> Wallet:
        """The user's wallet, loaded once per combined save."""
        if user_id not in wallets:
            wallets[user_id] = self._wallet(user_id)
        return wallets[user_id]

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

    def load_many(self, ids: Sequence[UUID]) -> dict[UUID, Any]:
        """Aggregates by id, read together (unknown ids are absent): on PostgreSQL one query
        for the snapshots of those not in the cache and one for the new events of all of them,
        where `repository.get` makes one or two per aggregate. Like `get`, it hands out copies:
        the cached aggregates are never changed here (a save puts the saved ones back)."""
        wanted = list(dict.fromkeys(ids))
        cache = self.repository.cache
        start: dict[UUID, Any] = {}
        if cache is not None:
            for i in wanted:
                try:
                    start[i] = deepcopy(cache.get(i))
                except KeyError:
                    continue
        missing = [i for i in wanted if i not in start]
        snapshots = (latest_stored(self.snapshots.recorder, missing)
                     if self.snapshots is not None else {})
        if snapshots is not None:
            for i, stored in snapshots.items():
                snapshot: Any = self.mapper.to_domain_event(stored)
                start[i] = snapshot.mutate(None)
            after = {i: (start[i].version if i in start else 0) for i in wanted}
            stored_events = stored_after(self.recorder, after)
        if snapshots is None or stored_events is None:  # not PostgreSQL: one by one
            found: dict[UUID, Any] = {}
            for i in wanted:
                try:
                    found[i] = self.repository.get(i)
                except AggregateNotFoundError:
                    continue
            return found
        out: dict[UUID, Any] = {}
        for i in wanted:
            aggregate = start.get(i)
            for stored in stored_events.get(i, ()):
                event: Any = self.mapper.to_domain_event(stored)
                aggregate = event.mutate(aggregate)  # what project_aggregate does, unasserted
            if aggregate is None:
                continue
            out[i] = aggregate
            if cache is not None:  # as get() keeps it: the next read fast-forwards from here
                cache.put(i, deepcopy(aggregate))
        return out

    def _record_outcomes_together(self, outcomes: list[Outcome]) -> int:
        jobs: dict[UUID, PredictionJob] = {}
        # the jobs and the wallets of the owners the outcomes name, in one read; a wallet the
        # outcomes did not name (or named wrongly) is read by _wallet_of, as its job says
        named = {wallet_id_for(o.user_id) for o in outcomes if o.user_id is not None}
        both = self.load_many([*(o.job_id for o in outcomes), *named])
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
