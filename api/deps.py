"""Request dependencies: the container's parts and the signed-in user.

They are async (they only look things up), so that a request is never sent to a worker
thread just to resolve them.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from api.container import Container
from api.idempotency import Idempotency
from api.reads import ReadSide as ReadSideT
from api.webhooks import Webhooks
from commands.application import CarpriceApp
from infra.auth import TokenError, read_token
from model_registry.store import Registry

# Declared as OAuth2 password flow so the "Authorize" button of /docs works.
bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/token", auto_error=False)


async def container(request: Request) -> Container:
    """The process-wide container built in the lifespan."""
    return request.app.state.container  # type: ignore[no-any-return]


async def current_user(c: Annotated[Container, Depends(container)], request: Request,
                       token: Annotated[str | None, Depends(bearer)]) -> UUID:
    """The id of the user the bearer token was issued to (also noted for the access log)."""
    if not token:
        raise TokenError("not authenticated: send Authorization: Bearer <token>")
    user = read_token(token, c.jwt_secret)
    if await c.erased.erased(user):
        raise TokenError("this account was erased; its tokens no longer work")
    request.state.user_id = user
    return user


async def commands(c: Annotated[Container, Depends(container)]) -> CarpriceApp:
    """The write side."""
    return c.commands


async def reads(c: Annotated[Container, Depends(container)]) -> ReadSideT:
    """The read side, for async routes."""
    return c.reads


async def idempotency(c: Annotated[Container, Depends(container)]) -> Idempotency:
    """Where the first answers to Idempotency-Keys are kept."""
    return c.idempotency


async def webhooks(c: Annotated[Container, Depends(container)]) -> Webhooks:
    """The user's webhooks."""
    if c.webhooks is None:
        from api.errors import ApiError

        raise ApiError(503, "Service unavailable", "webhooks are not configured here")
    return c.webhooks


async def registry(c: Annotated[Container, Depends(container)]) -> Registry:
    """The model registry."""
    return c.registry


Deps = Annotated[Container, Depends(container)]
CurrentUser = Annotated[UUID, Depends(current_user)]
Commands = Annotated[CarpriceApp, Depends(commands)]
ReadSide = Annotated[ReadSideT, Depends(reads)]
Keys = Annotated[Idempotency, Depends(idempotency)]
Models = Annotated[Registry, Depends(registry)]
WebhookStore = Annotated[Webhooks, Depends(webhooks)]
