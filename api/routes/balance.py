"""The credit balance: read it, top it up, audit it by replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.csv_text import csv_text
from api.deps import Commands, CurrentUser, Keys, ReadSide
from api.errors import ApiError
from api.idempotency import body_hash, check_key, claimed
from api.schemas import (
    AuditPublic,
    BalancePublic,
    BalanceUpdate,
    LedgerEntryPublic,
    ModelSpendPublic,
    StatementLinePublic,
    StatementPublic,
)
from commands.audit import replay_ledger, spend_per_model, statement

router = APIRouter(tags=["balance"])


AsOf = Annotated[datetime | None, Query(description="ISO-8601 time with a zone, e.g. "
                                        "2026-12-01T10:00:00Z")]


def _check_as_of(as_of: datetime | None) -> None:
    if as_of is not None and as_of.tzinfo is None:
        raise ApiError(422, "Invalid as_of", "as_of needs a time zone, e.g. 2026-12-01T10:00:00Z")


@router.get("/balance", response_model=BalancePublic, response_model_exclude_none=True)
async def get_balance(user: CurrentUser, reads: ReadSide, commands: Commands,
                      as_of: AsOf = None) -> BalancePublic:
    """Your credit balance (reflects your own last top-up or prediction); with `as_of`, what
    it was at that time, replayed from your wallet's events (exact, never stale)."""
    _check_as_of(as_of)
    if as_of is not None:
        ledger = await run_in_threadpool(replay_ledger, commands, user, as_of)
        return BalancePublic(amount=ledger.balance, available=ledger.balance,
                             reserved=ledger.reserved, promotional=ledger.promotional, as_of=as_of)
    row, stale = await reads.balance(user)
    if row is None:
        return BalancePublic(amount=0, available=0, reserved=0, promotional=0, stale=stale)
    return BalancePublic(amount=row.balance, available=row.balance, reserved=row.reserved,
                         promotional=row.promotional, stale=stale)


@router.post("/balance", response_model=BalancePublic, response_model_exclude_none=True)
def top_up(body: BalanceUpdate, user: CurrentUser, keys: Keys, commands: Commands,
           idempotency_key: Annotated[str | None, Header()] = None) -> BalancePublic:
    """Add credits: `amount` deposits n > 0; `new_amount` (old clients) tops up to that total."""
    key = check_key(idempotency_key)
    digest = body_hash(body.model_dump())
    if key and (previous := keys.replay(user, "balance", key, digest)) is not None:
        return BalancePublic(**previous)
    deposit_key = f"api:{key}" if key else None
    with claimed(keys, user, "balance", key):
        if body.amount is not None:
            state = commands.deposit(user, body.amount, deposit_key)
        else:
            assert body.new_amount is not None  # noqa: S101 - guaranteed by BalanceUpdate
            state = commands.top_up_to(user, body.new_amount, deposit_key)
        result = BalancePublic(amount=state.balance, available=state.balance,
                               reserved=state.reserved, promotional=state.promotional)
        if key:
            keys.remember(user, "balance", key, digest, result.model_dump())
    return result


CSV_COLUMNS = ["time", "kind", "amount", "credits", "job_id", "model", "balance", "reserved",
               "detail", "key"]
STATEMENT_CSV = (",".join(CSV_COLUMNS) + "\n"
                 ",opening,,,,,0,0,,\n"
                 "2026-12-01T10:00:00+00:00,deposit,50,50,,,50,0,,\n"
                 "2026-12-01T10:00:01+00:00,reservation,-10,10,5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11,"
                 "linear_regression,40,10,,dealer DMS (cpk_6f0c3a1e)\n"
                 "2026-12-01T10:00:02+00:00,capture,0,10,5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11,"
                 "linear_regression,40,0,,dealer DMS (cpk_6f0c3a1e)\n"
                 ",closing,,,,,40,0,,\n")


@router.get("/balance/statement", response_model=StatementPublic, responses={200: {
    "content": {"text/csv": {"example": STATEMENT_CSV}},
    "description": "JSON, or with `format=csv` a CSV whose first and last lines are the opening "
                   "and closing balances"}})
async def get_statement(
    user: CurrentUser, commands: Commands,
    start: Annotated[datetime | None, Query(alias="from", description=(
        "ISO-8601 with a zone; default: the wallet's beginning"))] = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO-8601 with a zone; "
                                          "default: now")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",  # noqa: A002 - the API's name
) -> StatementPublic | Response:
    """Every credit movement in the period with its running balance, between the opening and
    closing balances: the replay of your wallet, line for line."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, "Invalid period", f"{name}: needs a time zone, e.g. "
                           "2026-12-01T10:00:00Z")
    if start is not None and end is not None and start > end:
        raise ApiError(422, "Invalid period", "from: must not be after `to`")
    found = await run_in_threadpool(statement, commands, user, start, end)
    lines = [StatementLinePublic(time=x.time, kind=x.kind, amount=x.amount, credits=x.credits,
                                 job_id=x.job_id, model=x.model, balance=x.balance,
                                 reserved=x.reserved, detail=x.detail, key=x.key) for x in found.lines]
    if format == "json":
        return StatementPublic(start=start, end=end, opening_balance=found.opening,
                               closing_balance=found.closing, opening_reserved=found.opening_reserved,
                               closing_reserved=found.closing_reserved, lines=lines)
    text = csv_text(CSV_COLUMNS, [
        [start.isoformat() if start else "", "opening", "", "", "", "", found.opening,
         found.opening_reserved, "", ""],
        *([x.time.isoformat(), x.kind, x.amount, x.credits, x.job_id or "", x.model, x.balance,
           x.reserved, x.detail, x.key] for x in found.lines),
        [end.isoformat() if end else "", "closing", "", "", "", "", found.closing,
         found.closing_reserved, "", ""]])
    return Response(text, media_type="text/csv", headers={
        "Content-Disposition": 'attachment; filename="carprice-statement.csv"'})


@router.get("/balance/audit", response_model=AuditPublic)
async def audit(user: CurrentUser, reads: ReadSide, commands: Commands,
                as_of: AsOf = None) -> AuditPublic:
    """Your ledger replayed from the event store, compared with the projected balance."""
    _check_as_of(as_of)
    ledger = await run_in_threadpool(replay_ledger, commands, user, as_of)
    projected = None
    consistent = True
    if as_of is None:
        row, _ = await reads.balance(user)
        projected = row.balance if row else None
        consistent = (row is not None and (row.balance, row.reserved, row.promotional, row.version)
                      == (ledger.balance, ledger.reserved, ledger.promotional, ledger.version))
    entries = [LedgerEntryPublic(time=e.time, type=e.type, amount=e.amount, job_id=e.job_id,
                                 balance=e.balance, detail=e.detail, credits=e.credits,
                                 reserved=e.reserved, promotional=e.promotional)
               for e in ledger.entries]
    spend = [ModelSpendPublic(model=m.model, spent=m.spent, on_hold=m.on_hold,
                              given_back=m.given_back) for m in spend_per_model(ledger.entries)]
    return AuditPublic(as_of=as_of, entries=entries, replayed_balance=ledger.balance,
                       projected_balance=projected, consistent=consistent, spend_per_model=spend)
