"""A user's credit wallet: integer credits that never go negative."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot

from domain.errors import AlreadyCharged, BalanceDecrease, InsufficientCredits, InvalidAmount, NotCharged
from domain.ids import wallet_id_for

MAX_DEPOSIT = 1_000_000  # one deposit
MAX_BALANCE = 100_000_000  # a wallet


def _check_amount(amount: object, limit: int) -> int:
    # bool is an int in Python; credits are not.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidAmount(f"amount must be a whole number of credits, got {amount!r}")
    if amount <= 0:
        raise InvalidAmount(f"amount must be positive, got {amount}")
    if amount > limit:
        raise InvalidAmount(f"amount {amount} exceeds the limit of {limit} credits")
    return amount


class Wallet(Aggregate):
    """Deposits, charges per job and refunds per failed job."""

    TOPIC = "carprice.wallet"

    class Created(Aggregate.Created):
        # The library's generic creation event; ours is named below. Never triggered.
        TOPIC = "wallet.created.v0"

    class Snapshot(BaseSnapshot):
        """A wallet's state at a version, in JSON: the sets become lists, the charges pairs."""

        TOPIC = "wallet.snapshot.v1"

        @classmethod
        def take(cls, aggregate: Any) -> Wallet.Snapshot:
            taken = super().take(aggregate)
            state = dict(taken.state)
            state["charges"] = [[str(job), amount] for job, amount in state["charges"].items()]
            state["refunded"] = sorted(str(job) for job in state["refunded"])
            state["deposit_keys"] = sorted(state["deposit_keys"])
            return cls(originator_id=taken.originator_id,  # type: ignore[call-arg]
                       originator_version=taken.originator_version, timestamp=taken.timestamp,
                       topic=taken.topic, state=state)

        def mutate(self, _: None) -> Any:
            state = dict(self.state)
            state["charges"] = {UUID(job): int(amount) for job, amount in state["charges"]}
            state["refunded"] = {UUID(job) for job in state["refunded"]}
            state["deposit_keys"] = set(state["deposit_keys"])
            return super(Wallet.Snapshot, dataclasses.replace(self, state=state)).mutate(None)

    @staticmethod
    def create_id(user_id: UUID) -> UUID:  # type: ignore[override]
        return wallet_id_for(user_id)

    @event("Opened", topic="wallet.opened.v1")
    def __init__(self, user_id: UUID) -> None:
        self.user_id = user_id
        self.balance = 0
        self.charges: dict[UUID, int] = {}
        self.refunded: set[UUID] = set()
        self.deposit_keys: set[str] = set()

    def __deepcopy__(self, memo: dict[int, Any]) -> Wallet:
        # The repository copies cached wallets on every get. The collections hold only
        # immutable items, so copying the containers is a deep copy, at C speed
        # (the generic deepcopy of thousands of UUIDs dominated a command's cost).
        clone = copy.copy(self)
        clone.charges = dict(self.charges)
        clone.refunded = set(self.refunded)
        clone.deposit_keys = set(self.deposit_keys)
        clone.__dict__["_pending_events"] = list(self.__dict__.get("_pending_events", []))
        return clone

    # -- commands: validate once, then trigger the event -------------------------

    def deposit(self, amount: int, idempotency_key: str | None = None) -> bool:
        """Add credits; False (and nothing recorded) when the key was used before."""
        if idempotency_key is not None and idempotency_key in self.deposit_keys:
            return False
        _check_amount(amount, MAX_DEPOSIT)
        if self.balance + amount > MAX_BALANCE:
            raise InvalidAmount(f"a balance above {MAX_BALANCE} credits is not allowed")
        self._deposited(user_id=self.user_id, amount=amount, idempotency_key=idempotency_key)
        return True

    def top_up_to(self, new_amount: int, idempotency_key: str | None = None) -> bool:
        """Old clients' top-up: deposit the difference up to `new_amount`."""
        if idempotency_key is not None and idempotency_key in self.deposit_keys:
            return False
        if not isinstance(new_amount, int) or isinstance(new_amount, bool):
            raise InvalidAmount(f"new_amount must be a whole number of credits, got {new_amount!r}")
        if new_amount < self.balance:
            raise BalanceDecrease(self.balance, new_amount)
        if new_amount == self.balance:
            return False
        return self.deposit(new_amount - self.balance, idempotency_key)

    def charge(self, job_id: UUID, amount: int, model_name: str, model_version: str) -> None:
        """Pay for a job, once, from credits the wallet has."""
        if job_id in self.charges:
            raise AlreadyCharged(f"job {job_id} is already charged")
        _check_amount(amount, MAX_DEPOSIT)
        if amount > self.balance:
            raise InsufficientCredits(self.balance, amount, model_name)
        self._charged(user_id=self.user_id, job_id=job_id, amount=amount,
                      model_name=model_name, model_version=model_version)

    def refund(self, job_id: UUID, reason: str, amount: int | None = None) -> bool:
        """Give back what a job was charged (or the part `amount` of it, such as an
        explanation's surcharge), once per job; False when refunded before."""
        if job_id not in self.charges:
            raise NotCharged(f"job {job_id} was never charged to this wallet")
        if job_id in self.refunded:
            return False
        charged = self.charges[job_id]
        if amount is not None and not (isinstance(amount, int) and 0 < amount <= charged):
            raise InvalidAmount(f"a refund of job {job_id} must be 1 to {charged} credits, "
                                f"got {amount!r}")
        self._refunded(user_id=self.user_id, job_id=job_id, amount=charged if amount is None
                       else amount, reason=reason)
        return True

    # -- events: these bodies run again on every replay -------------------------

    @event("Deposited", topic="wallet.deposited.v1")
    def _deposited(self, user_id: UUID, amount: int, idempotency_key: str | None) -> None:
        self.balance += amount
        if idempotency_key is not None:
            self.deposit_keys.add(idempotency_key)

    @event("Charged", topic="wallet.charged.v1")
    def _charged(self, user_id: UUID, job_id: UUID, amount: int, model_name: str,
                 model_version: str) -> None:
        self.balance -= amount
        self.charges[job_id] = amount

    @event("Refunded", topic="wallet.refunded.v1")
    def _refunded(self, user_id: UUID, job_id: UUID, amount: int, reason: str) -> None:
        self.balance += amount
        self.refunded.add(job_id)
