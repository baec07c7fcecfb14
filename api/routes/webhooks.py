"""Webhooks: register a URL for job.ended and balance.low, list, delete, read the log."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, Deps, WebhookStore
from api.errors import ApiError
from api.schemas import (
    DeliveriesPublic,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookSecretPublic,
    WebhooksPublic,
)
from infra.webhook_http import url_problem
from projections.webhooks import WebhookRow

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
SIGNING = ("Each delivery is a JSON POST signed with your secret: `Carprice-Signature: "
           "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>`; `Carprice-Delivery` "
           "is the same on every retry (deliveries are at least once: deduplicate by it). Any 2xx "
           "is success; anything else is retried with a backoff that doubles, then given up.")


def _public(row: WebhookRow) -> WebhookPublic:
    return WebhookPublic(webhook_id=row.webhook_id, url=row.url, events=row.events,
                         balance_below=row.balance_below, created_at=row.created_at)


def _webhook_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise ApiError(404, "Webhook not found", f"no webhook {raw[:64]!r}") from None


@router.post("", response_model=WebhookCreated, status_code=201,
             description="Register a webhook; the answer carries your signing secret.\n\n" + SIGNING)
async def register(body: WebhookCreate, user: CurrentUser, hooks: WebhookStore,
                   c: Deps) -> WebhookCreated:
    """Register a webhook; the answer carries your signing secret."""
    if problem := url_problem(body.url, c.settings.webhook_targets):
        raise ApiError(422, "Malformed request", f"url: {problem}",
                       errors=[{"field": "url", "message": problem}])
    made = await hooks.register(user, body.url, list(body.events), body.balance_below)
    if made is None:
        raise ApiError(409, "Too many webhooks", f"you have {c.settings.webhooks_per_user} webhooks "
                       "already: delete one first")
    row, secret = made
    return WebhookCreated(**_public(row).model_dump(), secret=secret)


@router.get("", response_model=WebhooksPublic)
async def list_webhooks(user: CurrentUser, hooks: WebhookStore) -> WebhooksPublic:
    """Your webhooks."""
    return WebhooksPublic(webhooks=[_public(r) for r in await hooks.of(user)])


@router.get("/secret", response_model=WebhookSecretPublic)
async def signing_secret(user: CurrentUser, hooks: WebhookStore) -> WebhookSecretPublic:
    """Your signing secret (made with your first webhook)."""
    secret = await hooks.secret(user)
    if secret is None:
        raise ApiError(404, "No secret yet", "register a webhook first: it makes your secret")
    return WebhookSecretPublic(secret=secret)


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
async def delete_webhook(webhook_id: str, user: CurrentUser, hooks: WebhookStore) -> Response:
    """Delete one of your webhooks; what it had still to deliver is dropped."""
    if not await hooks.delete(user, _webhook_id(webhook_id)):
        raise ApiError(404, "Webhook not found", f"no webhook {webhook_id[:64]!r}")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic)
async def deliveries(webhook_id: str, user: CurrentUser, hooks: WebhookStore,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50) -> DeliveriesPublic:
    """The delivery log of one of your webhooks, newest first (kept 7 days)."""
    hook = _webhook_id(webhook_id)
    if not any(r.webhook_id == hook for r in await hooks.of(user)):
        raise ApiError(404, "Webhook not found", f"no webhook {webhook_id[:64]!r}")
    rows = await hooks.deliveries(user, hook, limit)
    return DeliveriesPublic(deliveries=[DeliveryPublic(
        delivery_id=r.delivery_id, event=r.event, status=r.status, attempts=r.attempts,
        last_status=r.last_status, last_error=r.last_error, created_at=r.created_at,
        next_attempt_at=r.next_attempt_at, delivered_at=r.delivered_at, payload=r.payload)
        for r in rows])
