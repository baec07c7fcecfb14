"""Audit by replay: a wallet's ledger recomputed event by event from the store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from eventsourcing.application import Application

from domain.events import WALLET_OPENED
from domain.ids import wallet_id_for
from domain.wallet import Wallet


@dataclass(frozen=True)
class LedgerEntry:
    """One wallet event and the balance after it."""

    time: datetime
    type: str
    amount: int  # signed: deposits and refunds add, charges subtract
    job_id: UUID | None
    balance: int
    version: int
    detail: str = ""


@dataclass
class Ledger:
    """A wallet's history and its balance as of a time (or now)."""

    user_id: UUID
    as_of: datetime | None
    entries: list[LedgerEntry] = field(default_factory=list)

    @property
    def balance(self) -> int:
        """The replayed balance."""
        return self.entries[-1].balance if self.entries else 0

    @property
    def version(self) -> int:
        """The wallet version the replay reached."""
        return self.entries[-1].version if self.entries else 0


_SIGN = {"Deposited": 1, "Refunded": 1, "Charged": -1}


def replay_ledger(app: Application[UUID], user_id: UUID, as_of: datetime | None = None) -> Ledger:
    """Replay a wallet's events (up to `as_of`) into a ledger with running balances."""
    ledger = Ledger(user_id, as_of)
    balance = 0
    for event in app.events.get(wallet_id_for(user_id)):
        timestamp: datetime = event.timestamp  # type: ignore[attr-defined]
        if as_of is not None and timestamp > as_of:
            break
        kind = type(event).__name__
        amount = _SIGN.get(kind, 0) * int(getattr(event, "amount", 0))
        balance += amount
        if balance < 0:  # the aggregate forbids it; a replay that sees it has found corruption
            raise AssertionError(f"wallet of {user_id} replays to a negative balance")
        detail = getattr(event, "model_name", "") or getattr(event, "reason", "") or ""
        ledger.entries.append(LedgerEntry(
            time=timestamp, type=kind, amount=amount, job_id=getattr(event, "job_id", None),
            balance=balance, version=event.originator_version, detail=detail,
        ))
    return ledger


def all_wallet_users(app: Application[UUID]) -> Iterator[UUID]:
    """The user id of every wallet ever opened, from the notification log."""
    start, page = 1, 500
    while True:
        items = app.recorder.select_notifications(start=start, limit=page, topics=[WALLET_OPENED])
        for item in items:
            wallet: Wallet.Event = app.mapper.to_domain_event(item)  # type: ignore[assignment]
            yield wallet.user_id  # type: ignore[attr-defined]
        if len(items) < page:
            return
        start = items[-1].id + 1


KINDS = {"Deposited": "deposit", "Charged": "charge", "Refunded": "refund"}


@dataclass(frozen=True)
class StatementLine:
    """One credit movement of a statement, with the balance after it."""

    time: datetime
    kind: str
    amount: int  # signed
    job_id: UUID | None
    model: str
    balance: int


@dataclass
class Statement:
    """A wallet's movements in [start, end], between its opening and closing balances."""

    user_id: UUID
    start: datetime | None
    end: datetime | None
    opening: int
    closing: int
    lines: list[StatementLine]


def statement(app: Application[UUID], user_id: UUID, start: datetime | None = None,
              end: datetime | None = None) -> Statement:
    """The replay, cut to a period: every line is the ledger's own entry (a refund names the
    model its job was charged for); opening + the amounts = closing."""
    ledger = replay_ledger(app, user_id, end)
    model_of: dict[UUID | None, str] = {}
    opening, lines = 0, []
    for e in ledger.entries:
        if e.type == "Charged":
            model_of[e.job_id] = e.detail
        if start is not None and e.time < start:
            opening = e.balance
            continue
        if e.type not in KINDS:
            continue  # the wallet's opening moves no credit
        model = model_of.get(e.job_id, "") if e.job_id is not None else ""
        lines.append(StatementLine(time=e.time, kind=KINDS[e.type],
                                   amount=e.amount, job_id=e.job_id, model=model,
                                   balance=e.balance))
    return Statement(user_id, start, end, opening, ledger.balance, lines)
