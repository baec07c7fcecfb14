"""Wallet commands: deposits, old clients' top-ups, promotional grants and their expiry."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from commands.results import WalletState
from commands.retry import retry_on_conflict
from commands.write_side import WriteSide
from domain.errors import (
    InvalidUserData,
)
from domain.text import text_problem


class Wallets(WriteSide):
    """The wallet commands of CarpriceApp."""


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

