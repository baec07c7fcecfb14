"""An API key: a credential an integration signs its requests with, within its scopes.

The key's secret is shown once, when it is issued; the store and the events never hold it (the
lookup table keeps its SHA-256). Issuing and revoking are events, so who made which key, and
when it stopped working, replays like the rest of the ledger.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.events import KEY_ISSUED, KEY_REVOKED

# What a key may be granted. Reading a job it submitted comes with `predict` (and a batch's
# results with `batch`); topping up, erasing the account and managing keys need a password.
SCOPES = ("predict", "read", "batch", "webhooks")
PREFIX = "cpk_"  # every secret starts with it: recognisable in logs, scanners and config files


class ApiKey(Aggregate):
    """A user's API key."""

    TOPIC = "carprice.api_key"

    class Created(Aggregate.Created):
        # The library's generic creation event; ours is named below. Never triggered.
        TOPIC = "api_key.created.v0"

    @event("Issued", topic=KEY_ISSUED)
    def __init__(self, user_id: UUID, name: str, scopes: list[str], prefix: str,
                 rate_limit_per_minute: int) -> None:
        self.user_id = user_id
        self.name = name
        self.scopes = list(scopes)
        self.prefix = prefix
        self.rate_limit_per_minute = rate_limit_per_minute
        self.revoked = False

    def revoke(self, why: str) -> bool:
        """Stop the key (a second time is a no-op: False)."""
        if self.revoked:
            return False
        self._revoked(why)
        return True

    @event("Revoked", topic=KEY_REVOKED)
    def _revoked(self, why: str) -> None:
        self.revoked = True
