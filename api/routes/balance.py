"""The credit balance: read it, top it up, audit it by replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import Commands, CurrentUser, Keys, ReadSide
from api.errors import ApiError
from api.idempotency import body_hash, check_key
from api.schemas import AuditPublic, BalancePublic, BalanceUpdate, LedgerEntryPublic
from commands.audit import replay_ledger

router = APIRouter(tags=["balance"])


@router.get("/balance", response_model=BalancePublic)
async def get_balance(user: CurrentUser, reads: ReadSide) -> BalancePublic:
    """Your credit balance (reflects your own last top-up or prediction)."""
    row, stale = await reads.balance(user)
    return BalancePublic(amount=row.balance if row else 0, stale=stale)


@router.post("/balance", response_model=BalancePublic)
def top_up(body: BalanceUpdate, user: CurrentUser, keys: Keys, commands: Commands,
           idempotency_key: Annotated[str | None, Header()] = None) -> BalancePublic:
    """Add credits: `amount` deposits n > 0; `new_amount` (old clients) tops up to that total."""
    key = check_key(idempotency_key)
    digest = body_hash(body.model_dump())
    if key and (previous := keys.replay(user, "balance", key, digest)) is not None:
        return BalancePublic(**previous)
    deposit_key = f"api:{key}" if key else None
    if body.amount is not None:
        state = commands.deposit(user, body.amount, deposit_key)
    else:
        assert body.new_amount is not None  # noqa: S101 - guaranteed by BalanceUpdate
        state = commands.top_up_to(user, body.new_amount, deposit_key)
    result = BalancePublic(amount=state.balance)
    if key:
        keys.remember(user, "balance", key, digest, result.model_dump())
    return result


@router.get("/balance/audit", response_model=AuditPublic)
async def audit(user: CurrentUser, reads: ReadSide, commands: Commands,
                as_of: Annotated[datetime | None, Query(description="ISO time with zone")] = None,
                ) -> AuditPublic:
    """Your ledger replayed from the event store, compared with the projected balance."""
    if as_of is not None and as_of.tzinfo is None:
        raise ApiError(422, "Invalid as_of", "as_of needs a time zone, e.g. 2026-12-01T10:00:00Z")
    ledger = await run_in_threadpool(replay_ledger, commands, user, as_of)
    projected = None
    consistent = True
    if as_of is None:
        row, _ = await reads.balance(user)
        projected = row.balance if row else None
        consistent = projected == ledger.balance and row is not None and row.version == ledger.version
    entries = [LedgerEntryPublic(time=e.time, type=e.type, amount=e.amount, job_id=e.job_id,
                                 balance=e.balance, detail=e.detail) for e in ledger.entries]
    return AuditPublic(as_of=as_of, entries=entries, replayed_balance=ledger.balance,
                       projected_balance=projected, consistent=consistent)
