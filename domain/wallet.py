"""A user's credit wallet: integer credits that never go negative.

A job's price is held when it is submitted (`Reserved`), then either captured when the job
finishes or released when it fails, expires or is dead-lettered. Wallets recorded before
holds existed have `Charged` (paid at submit) and `Refunded` events; those replay as they
always did, and a job charged that way is refunded, never released.

Promotional credits come in grants with an expiry time. They are spent before paid credits;
what is left of a grant at its time expires as one `GrantExpired` event.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any, TypedDict
from uuid import UUID

from eventsourcing.domain import Aggregate, BaseAggregate, MutableOrImmutableAggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from domain.errors import AlreadyCharged, BalanceDecrease, InsufficientCredits, InvalidAmount, NotCharged
from domain.events import (
    WALLET_CAPTURED,
    WALLET_CHARGED,
    WALLET_DEPOSITED,
    WALLET_GRANT_EXPIRED,
    WALLET_GRANTED,
    WALLET_OPENED,
    WALLET_REFUNDED,
    WALLET_RELEASED,
    WALLET_RESERVED,
)
from domain.ids import wallet_id_for

MAX_DEPOSIT = 1_000_000  # one deposit (or grant)
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


def _split(amount: int, parts: dict[str, int]) -> dict[str, int]:
    """Take `amount` from `parts` in their order: {key: taken} (only what is taken)."""
    taken: dict[str, int] = {}
    for key, have in parts.items():
        if amount <= 0:
            break
        n = min(have, amount)
        if n:
            taken[key] = n
            amount -= n
    return taken


class Hold(TypedDict):
    """What one open hold took, and from where: paid credits and each grant's part."""

    paid: int
    grants: dict[str, int]


class Wallet(Aggregate):
    """Deposits, grants, and per job a hold that is captured or released."""

    TOPIC = "carprice.wallet"

    class Created(Aggregate.Created):
        # The library's generic creation event; ours is named below. Never triggered.
        TOPIC = "wallet.created.v0"

    class Snapshot(BaseSnapshot):
        """A wallet's state at a version, in JSON: the sets become lists, the maps pairs."""

        TOPIC = "wallet.snapshot.v1"

        @classmethod
        def take(cls, aggregate: MutableOrImmutableAggregate[UUID]) -> Wallet.Snapshot:
            taken = super().take(aggregate)
            state = dict(taken.state)
            state["charges"] = [[str(job), amount] for job, amount in state["charges"].items()]
            state["refunded"] = sorted(str(job) for job in state["refunded"])
            state["settled"] = sorted(str(job) for job in state["settled"])
            state["holds"] = [[str(job), hold] for job, hold in state["holds"].items()]
            state["deposit_keys"] = sorted(state["deposit_keys"])
            return cls(originator_id=taken.originator_id,
                       originator_version=taken.originator_version, timestamp=taken.timestamp,
                       topic=taken.topic, state=state)

        def mutate(self, _: None) -> BaseAggregate[UUID]:
            state = dict(self.state)
            state["charges"] = {UUID(job): int(amount) for job, amount in state["charges"]}
            state["refunded"] = {UUID(job) for job in state["refunded"]}
            # snapshots taken before holds and grants existed have neither
            state["settled"] = {UUID(job) for job in state.get("settled", [])}
            state["holds"] = {UUID(job): hold for job, hold in state.get("holds", [])}
            state.setdefault("grants", {})
            state["deposit_keys"] = set(state["deposit_keys"])
            return super(Wallet.Snapshot, dataclasses.replace(self, state=state)).mutate(None)

    @staticmethod
    def create_id(user_id: UUID) -> UUID:
        return wallet_id_for(user_id)

    @event("Opened", topic=WALLET_OPENED)
    def __init__(self, user_id: UUID) -> None:
        self.user_id = user_id
        self.balance = 0  # available: paid + promotional credits, not counting holds
        self.charges: dict[UUID, int] = {}  # every job paid for: charged (older) or reserved
        self.refunded: set[UUID] = set()  # older charged jobs refunded
        self.settled: set[UUID] = set()  # reserved jobs captured or released
        # job -> {"paid": n, "grants": {grant id: n}}: what each open hold took from where
        self.holds: dict[UUID, Hold] = {}
        # grant id -> [credits left, expiry time as ISO-8601], soonest expiry first
        self.grants: dict[str, list[Any]] = {}
        self.deposit_keys: set[str] = set()

    def __deepcopy__(self, memo: dict[int, Any]) -> Wallet:
        # The repository copies cached wallets on every get. The collections hold only
        # immutable items (holds and grants are copied a level down), so this is a deep copy
        # at C speed (the generic deepcopy of thousands of UUIDs dominated a command's cost).
        clone = copy.copy(self)
        # every collection an instance holds gets one of its own: the wallet's, and the base
        # class's (its pending events), without naming the library's private attributes
        for name, value in vars(self).items():
            if isinstance(value, list | set | dict):
                vars(clone)[name] = copy.copy(value)
        clone.holds = {job: {"paid": h["paid"], "grants": dict(h["grants"])}
                       for job, h in self.holds.items()}
        clone.grants = {g: list(v) for g, v in self.grants.items()}
        return clone

    # -- what the wallet holds ----------------------------------------------------

    @property
    def reserved(self) -> int:
        """Credits held for jobs that have not ended."""
        return sum(h["paid"] + sum(h["grants"].values()) for h in self.holds.values())

    @property
    def promotional(self) -> int:
        """The part of the available balance that comes from grants (it expires)."""
        return sum(left for left, _ in self.grants.values())

    def due_grants(self, now: datetime | None = None) -> list[str]:
        """Grants whose expiry time has come and that have not expired yet."""
        now = now or datetime.now(UTC)
        return [g for g, (_, expires) in self.grants.items() if datetime.fromisoformat(expires) <= now]

    # -- commands: validate once, then trigger the event -------------------------

    def deposit(self, amount: int, idempotency_key: str | None = None) -> bool:
        """Add credits; False (and nothing recorded) when the key was used before."""
        if idempotency_key is not None and idempotency_key in self.deposit_keys:
            return False
        _check_amount(amount, MAX_DEPOSIT)
        if self.balance + self.reserved + amount > MAX_BALANCE:
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

    def grant(self, grant_id: str, amount: int, expires_at: datetime, reason: str) -> bool:
        """Add promotional credits that expire at `expires_at`; one grant id grants once."""
        if f"grant:{grant_id}" in self.deposit_keys:
            return False
        _check_amount(amount, MAX_DEPOSIT)
        if expires_at.tzinfo is None:
            raise InvalidAmount("a grant's expiry time needs a time zone")
        if expires_at <= datetime.now(UTC):
            raise InvalidAmount(f"a grant must expire in the future, not at {expires_at.isoformat()}")
        if self.balance + self.reserved + amount > MAX_BALANCE:
            raise InvalidAmount(f"a balance above {MAX_BALANCE} credits is not allowed")
        self._granted(user_id=self.user_id, grant_id=grant_id, amount=amount,
                      expires_at=expires_at.astimezone(UTC).isoformat(), reason=reason)
        return True

    def expire_grants(self, now: datetime | None = None) -> int:
        """Expire what is left of every grant whose time has come, once; how many expired."""
        due = self.due_grants(now)
        for g in due:
            self._grant_expired(user_id=self.user_id, grant_id=g, amount=int(self.grants[g][0]))
        return len(due)

    def reserve(self, job_id: UUID, amount: int, model_name: str, model_version: str,
                api_key: str | None = None) -> None:
        """Hold a job's price, once, from credits the wallet has: promotional credits first
        (the soonest to expire first), then paid ones. Grants past their time expire first.
        `api_key`: the id of the key that spent them (None: the account holder, signed in)."""
        if job_id in self.charges:
            raise AlreadyCharged(f"job {job_id} is already charged")
        _check_amount(amount, MAX_DEPOSIT)
        self.expire_grants()
        if amount > self.balance:
            raise InsufficientCredits(self.balance, amount, model_name)
        grants = _split(amount, {g: int(left) for g, (left, _) in self.grants.items()})
        self._reserved(user_id=self.user_id, job_id=job_id, amount=amount, model_name=model_name,
                       model_version=model_version, grants=grants, api_key=api_key)

    def capture(self, job_id: UUID, release: int = 0, reason: str = "") -> bool:
        """A job finished: keep what was held for it, except `release` credits (an explanation
        that was bought and not delivered), which go back. False when already settled."""
        hold = self.holds.get(job_id)
        if hold is None:
            # older: charged at submit, so only a part to give back remains
            return self.refund(job_id, reason, release) if release and job_id in self.charges else False
        held = hold["paid"] + sum(hold["grants"].values())
        if not (isinstance(release, int) and 0 <= release < held):
            raise InvalidAmount(f"a job holding {held} credits can release 0 to {held - 1} of "
                                f"them on completion, not {release!r}")
        # promotional credits are spent first; the paid part goes back first
        grants = _split(held - release, hold["grants"])
        self._captured(user_id=self.user_id, job_id=job_id, amount=held - release, grants=grants)
        if release:
            self._release(job_id, reason)
        return True

    def release(self, job_id: UUID, reason: str) -> bool:
        """A job failed, expired or was dead-lettered: give back what was held for it, once
        (an older charged job is refunded). False when settled or refunded before."""
        if job_id not in self.charges:
            raise NotCharged(f"job {job_id} was never charged to this wallet")
        if job_id not in self.holds:
            return False if job_id in self.settled else self.refund(job_id, reason)
        self._release(job_id, reason)
        return True

    def _release(self, job_id: UUID, reason: str) -> None:
        hold = self.holds[job_id]
        grants = {g: n for g, n in hold["grants"].items() if g in self.grants}
        forfeited = sum(n for g, n in hold["grants"].items() if g not in self.grants)
        self._released(user_id=self.user_id, job_id=job_id,
                       amount=hold["paid"] + sum(hold["grants"].values()), paid=hold["paid"],
                       grants=grants, forfeited=forfeited, reason=reason[:500])

    def refund(self, job_id: UUID, reason: str, amount: int | None = None) -> bool:
        """Older charged jobs: give back what a job was charged (or the part `amount` of it,
        such as an explanation's surcharge), once per job; False when refunded before."""
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

    @event("Deposited", topic=WALLET_DEPOSITED)
    def _deposited(self, user_id: UUID, amount: int, idempotency_key: str | None) -> None:
        self.balance += amount
        if idempotency_key is not None:
            self.deposit_keys.add(idempotency_key)

    @event("Granted", topic=WALLET_GRANTED)
    def _granted(self, user_id: UUID, grant_id: str, amount: int, expires_at: str,
                 reason: str) -> None:
        self.balance += amount
        self.deposit_keys.add(f"grant:{grant_id}")
        self.grants[grant_id] = [amount, expires_at]
        self.grants = dict(sorted(self.grants.items(), key=lambda kv: (kv[1][1], kv[0])))

    @event("GrantExpired", topic=WALLET_GRANT_EXPIRED)
    def _grant_expired(self, user_id: UUID, grant_id: str, amount: int) -> None:
        self.balance -= amount
        del self.grants[grant_id]

    @event("Reserved", topic=WALLET_RESERVED)
    def _reserved(self, user_id: UUID, job_id: UUID, amount: int, model_name: str,
                  model_version: str, grants: dict[str, int], api_key: str | None = None) -> None:
        # api_key: absent from events recorded before keys existed
        self.balance -= amount
        self.charges[job_id] = amount
        for g, n in grants.items():
            self.grants[g][0] -= n
        self.holds[job_id] = {"paid": amount - sum(grants.values()), "grants": dict(grants)}

    @event("Captured", topic=WALLET_CAPTURED)
    def _captured(self, user_id: UUID, job_id: UUID, amount: int, grants: dict[str, int]) -> None:
        hold = self.holds[job_id]
        for g, n in grants.items():
            hold["grants"][g] -= n
            if not hold["grants"][g]:
                del hold["grants"][g]
        hold["paid"] -= amount - sum(grants.values())
        if not hold["paid"] and not hold["grants"]:
            del self.holds[job_id]
            self.settled.add(job_id)

    @event("Released", topic=WALLET_RELEASED)
    def _released(self, user_id: UUID, job_id: UUID, amount: int, paid: int,
                  grants: dict[str, int], forfeited: int, reason: str) -> None:
        # `grants`: what goes back to grants still running; `forfeited`: what was held from
        # grants that expired meanwhile (gone with them)
        self.balance += amount - forfeited
        for g, n in grants.items():
            self.grants[g][0] += n
        del self.holds[job_id]
        self.settled.add(job_id)

    @event("Charged", topic=WALLET_CHARGED)
    def _charged(self, user_id: UUID, job_id: UUID, amount: int, model_name: str,
                 model_version: str) -> None:
        # older wallets: paid at submit (before holds)
        self.balance -= amount
        self.charges[job_id] = amount

    @event("Refunded", topic=WALLET_REFUNDED)
    def _refunded(self, user_id: UUID, job_id: UUID, amount: int, reason: str) -> None:
        self.balance += amount
        self.refunded.add(job_id)


# The library registers the explicit topics of an aggregate's events, not of its snapshot
# class: without this, a process that reads a snapshot it did not take itself cannot
# resolve it (since holds, inference loads wallets to capture, often after a snapshot).
register_topic(Wallet.Snapshot.TOPIC, Wallet.Snapshot)
