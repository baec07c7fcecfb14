"""The user's webhooks, as the routes manage them (registrations, secret, delivery log)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID, uuid4

from infra.pg import AsyncPool
from infra.webhook_http import new_secret
from projections import webhooks as store
from projections.webhooks import DeliveryRow, WebhookRow


class Webhooks(Protocol):
    """What the webhook routes need (the route tests fake it)."""

    async def register(self, user: UUID, url: str, events: list[str], balance_below: int | None,
                       ) -> tuple[WebhookRow, str] | None: ...
    async def of(self, user: UUID) -> list[WebhookRow]: ...
    async def secret(self, user: UUID) -> str | None: ...
    async def delete(self, user: UUID, webhook_id: UUID) -> bool: ...
    async def deliveries(self, user: UUID, webhook_id: UUID, limit: int) -> list[DeliveryRow]: ...
    async def forget(self, user: UUID) -> None: ...


class PgWebhooks:
    """The webhook tables, on the API's async pool."""

    def __init__(self, pool: AsyncPool, per_user: int) -> None:
        self.pool, self.per_user = pool, per_user

    async def register(self, user: UUID, url: str, events: list[str], balance_below: int | None,
                       ) -> tuple[WebhookRow, str] | None:
        """A new webhook and the user's secret; None when they have `per_user` already."""
        async with self.pool.connection() as conn:
            return await store.register(conn, user, uuid4(), url, events, balance_below,
                                        new_secret(), self.per_user)

    async def of(self, user: UUID) -> list[WebhookRow]:
        """The user's webhooks."""
        async with self.pool.connection() as conn:
            return await store.webhooks(conn, user)

    async def secret(self, user: UUID) -> str | None:
        """The user's signing secret."""
        async with self.pool.connection() as conn:
            return await store.secret(conn, user)

    async def delete(self, user: UUID, webhook_id: UUID) -> bool:
        """Delete one of the user's webhooks."""
        async with self.pool.connection() as conn:
            return await store.delete(conn, user, webhook_id)

    async def deliveries(self, user: UUID, webhook_id: UUID, limit: int) -> list[DeliveryRow]:
        """The newest deliveries of one of the user's webhooks."""
        async with self.pool.connection() as conn:
            return await store.deliveries(conn, user, webhook_id, limit)

    async def forget(self, user: UUID) -> None:
        """Delete all of an erased user's webhooks, deliveries and secret."""
        async with self.pool.connection() as conn:
            await store.forget(conn, user)
