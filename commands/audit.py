"""Audit by replay: a wallet's ledger recomputed event by event from the store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from domain.api_key import ApiKey
from domain.events import WALLET_OPENED
from domain.ids import wallet_id_for
from domain.wallet import Wallet


@dataclass(frozen=True)
class LedgerEntry:
    """One wallet event and the balances after it."""

    time: datetime
    type: str
    amount: int  # signed change of the available balance (a capture changes only `reserved`)
    job_id: UUID | None
    balance: int  # available: what can be spent
    version: int
    detail: str = ""
    credits: int = 0  # what the event moved (unsigned)
    reserved: int = 0  # held for jobs not ended
    promotional: int = 0  # the part of `balance` from grants
    api_key: str | None = None  # the id of the API key that spent these credits, if one did


@dataclass
class Ledger:
    """A wallet's history and its balance as of a time (or now)."""

    user_id: UUID
    as_of: datetime | None
    entries: list[LedgerEntry] = field(default_factory=list)

    @property
    def balance(self) -> int:
        """The replayed available balance."""
        return self.entries[-1].balance if self.entries else 0

    @property
    def reserved(self) -> int:
        """The replayed credits on hold."""
        return self.entries[-1].reserved if self.entries else 0

    @property
    def promotional(self) -> int:
        """The replayed promotional part of the balance."""
        return self.entries[-1].promotional if self.entries else 0

    @property
    def version(self) -> int:
        """The wallet version the replay reached."""
        return self.entries[-1].version if self.entries else 0


@dataclass(frozen=True)
class ModelSpend:
    """What a wallet paid for one model: spent (jobs that finished), on hold (jobs running),
    given back (jobs that failed or expired)."""

    model: str
    spent: int = 0
    on_hold: int = 0
    given_back: int = 0


def spend_per_model(entries: list[LedgerEntry]) -> list[ModelSpend]:
    """Per model, from a replayed ledger: a hold is spent when captured and given back when
    released; a wallet from before holds counts charges less refunds as spent. Models by
    name."""
    model_of = {e.job_id: e.detail for e in entries
                if e.type in ("Reserved", "Charged") and e.job_id is not None}
    totals: dict[str, list[int]] = {}
    moves = {"Reserved": (0, 1, 0), "Captured": (1, -1, 0), "Released": (0, -1, 1),
             "Charged": (1, 0, 0), "Refunded": (-1, 0, 1)}
    for e in entries:
        model = model_of.get(e.job_id) if e.job_id is not None else None
        if model is None or e.type not in moves:
            continue
        t = totals.setdefault(model, [0, 0, 0])
        for i, sign in enumerate(moves[e.type]):
            t[i] += sign * e.credits
    return [ModelSpend(m, *t) for m, t in sorted(totals.items())]


def _effect(kind: str, event: object) -> tuple[int, int, int]:
    """(available, reserved, promotional) changes of one wallet event."""
    amount = int(getattr(event, "amount", 0))
    from_grants = sum(getattr(event, "grants", {}).values())
    if kind in ("Deposited", "Refunded"):
        return amount, 0, 0
    if kind == "Charged":
        return -amount, 0, 0
    if kind == "Granted":
        return amount, 0, amount
    if kind == "GrantExpired":
        return -amount, 0, -amount
    if kind == "Reserved":
        return -amount, amount, -from_grants
    if kind == "Captured":
        return 0, -amount, 0
    if kind == "Released":
        return amount - int(getattr(event, "forfeited", 0)), -amount, from_grants
    return 0, 0, 0


def replay_ledger(app: Application[UUID], user_id: UUID, as_of: datetime | None = None) -> Ledger:
    """Replay a wallet's events (up to `as_of`) into a ledger with running balances."""
    ledger = Ledger(user_id, as_of)
    balance = reserved = promotional = 0
    for event in app.events.get(wallet_id_for(user_id)):
        timestamp: datetime = event.timestamp  # type: ignore[attr-defined]
        if as_of is not None and timestamp > as_of:
            break
        kind = type(event).__name__
        d_balance, d_reserved, d_promotional = _effect(kind, event)
        balance, reserved, promotional = (balance + d_balance, reserved + d_reserved,
                                          promotional + d_promotional)
        if min(balance, reserved, promotional) < 0:
            # the aggregate forbids it; a replay that sees it has found corruption
            raise AssertionError(f"wallet of {user_id} replays to a negative balance")
        detail = (getattr(event, "model_name", "") or getattr(event, "reason", "")
                  or getattr(event, "grant_id", "") or "")
        ledger.entries.append(LedgerEntry(
            time=timestamp, type=kind, amount=d_balance, job_id=getattr(event, "job_id", None),
            balance=balance, version=event.originator_version, detail=detail,
            credits=int(getattr(event, "amount", 0)), reserved=reserved, promotional=promotional,
            api_key=getattr(event, "api_key", None),
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


KINDS = {"Deposited": "deposit", "Granted": "grant", "Reserved": "reservation",
         "Captured": "capture", "Released": "release", "GrantExpired": "expiry",
         "Charged": "charge", "Refunded": "refund"}


@dataclass(frozen=True)
class StatementLine:
    """One credit movement of a statement, with the balances after it."""

    time: datetime
    kind: str
    amount: int  # signed change of the available balance
    job_id: UUID | None
    model: str
    balance: int
    credits: int = 0  # what moved (a capture moves credits from the hold to spent)
    reserved: int = 0
    detail: str = ""  # a grant's or a release's reason
    key: str = ""  # the API key that spent them ("name (prefix)"); empty: the account holder


@dataclass
class Statement:
    """A wallet's movements in [start, end], between its opening and closing balances."""

    user_id: UUID
    start: datetime | None
    end: datetime | None
    opening: int
    closing: int
    lines: list[StatementLine]
    opening_reserved: int = 0
    closing_reserved: int = 0


@lru_cache(maxsize=1024)
def key_label(app: Application[UUID], key_id: str) -> str:
    """How a statement or a receipt names an API key: "name (prefix)" (a key's name and prefix
    never change, so they are looked up once)."""
    try:
        key: object = app.repository.get(UUID(key_id))
    except (AggregateNotFoundError, ValueError):
        return key_id
    return f"{key.name} ({key.prefix})" if isinstance(key, ApiKey) else key_id


def statement(app: Application[UUID], user_id: UUID, start: datetime | None = None,
              end: datetime | None = None) -> Statement:
    """The replay, cut to a period: every line is the ledger's own entry (a release, capture or
    refund names the model its job was reserved or charged for); opening + the amounts =
    closing."""
    ledger = replay_ledger(app, user_id, end)
    model_of: dict[UUID | None, str] = {}
    key_of: dict[UUID | None, str] = {}
    opening = opening_reserved = 0
    lines = []
    for e in ledger.entries:
        if e.type in ("Charged", "Reserved"):
            model_of[e.job_id] = e.detail
            if e.api_key:
                key_of[e.job_id] = e.api_key
        if start is not None and e.time < start:
            opening, opening_reserved = e.balance, e.reserved
            continue
        if e.type not in KINDS:
            continue  # the wallet's opening moves no credit
        model = model_of.get(e.job_id, "") if e.job_id is not None else ""
        key = key_of.get(e.job_id) if e.job_id is not None else None
        lines.append(StatementLine(time=e.time, kind=KINDS[e.type], amount=e.amount,
                                   job_id=e.job_id, model=model, balance=e.balance,
                                   credits=e.credits, reserved=e.reserved,
                                   detail="" if e.detail == model else e.detail,
                                   key=key_label(app, key) if key else ""))
    return Statement(user_id, start, end, opening, ledger.balance, lines, opening_reserved,
                     ledger.reserved)
