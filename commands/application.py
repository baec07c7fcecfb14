"""The carprice Application: one method per command, over one event store, in a module per
boundary (accounts, wallets, jobs, batches) on one shared base (commands/write_side.py)."""

from __future__ import annotations

from typing import Any

from commands.accounts import Accounts
from commands.batches import Batches
from commands.jobs import Jobs
from commands.keys import Keys
from commands.releases import Releases
from commands.results import Accepted, Account, Outcome, WalletState
from commands.wallets import Wallets
from commands.write_side import DEFAULT_DEADLINE_SECONDS
from domain.catalog import ModelCatalog
from infra.eventstore import postgres_env
from infra.pg import database_url
from infra.settings import Settings

__all__ = ["DEFAULT_DEADLINE_SECONDS", "Accepted", "Account", "CarpriceApp", "Outcome",
           "WalletState"]


class CarpriceApp(Accounts, Wallets, Jobs, Batches, Keys, Releases):
    """The write side of carprice."""

    name = "carprice"  # the library names the store's tables after it (and reads its env by it)

    def __init__(self, catalog: ModelCatalog, **kwargs: Any) -> None:
        super().__init__(catalog, **kwargs)
        # promotions in this store choose who serves, as long as it is open
        self._unfollow = catalog.follow(self.promoted_champion)

    def close(self) -> None:
        """Stop serving this store's champions, then close it."""
        self._unfollow()
        super().close()

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
