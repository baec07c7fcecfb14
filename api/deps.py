"""Request dependencies: the container's parts and the signed-in user.

They are async (they only look things up), so that a request is never sent to a worker
thread just to resolve them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from api.container import Container
from api.errors import ApiError
from api.reads import ReadSide as ReadSideT
from api.scopes import needed
from commands.application import CarpriceApp
from domain.api_key import PREFIX as KEY_PREFIX
from infra.api_keys import Grant, KeyLookup
from infra.auth import TokenError, token_claims
from infra.erased import ErasedUsers
from infra.idempotency import Idempotency
from model_registry.store import Registry
from projections.webhook_registrations import Webhooks

# Declared as OAuth2 password flow so the "Authorize" button of /docs works.
bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/token", auto_error=False)


async def container(request: Request) -> Container:
    """The process-wide container built in the lifespan."""
    return request.app.state.container  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Caller:
    """Who signed this request, and until when: a long-poll or an event stream asks again at
    every wake-up (`still_allowed`) and ends when the token expired, the key was revoked or the
    account was erased."""

    user: UUID
    expires: float  # Unix time
    erased: ErasedUsers
    key: Grant | None = None  # the API key the request was signed with (None: a password's token)
    keys: KeyLookup | None = None  # where that key's revocation is read

    def seconds_left(self) -> float:
        """Seconds until the token expires (0 when it has)."""
        return max(0.0, self.expires - time.time())

    async def still_allowed(self) -> bool:
        """The token has not expired (the key was not revoked) and the account was not erased
        since."""
        if self.key is not None and (self.keys is None or not await self.keys.live(self.key.key_id)):
            return False
        return self.seconds_left() > 0 and not await self.erased.erased(self.user)


async def current_caller(c: Annotated[Container, Depends(container)], request: Request,
                         token: Annotated[str | None, Depends(bearer)]) -> Caller:
    """The signed-in caller (the user id is also noted for the access log)."""
    if not token:
        raise TokenError("not authenticated: send Authorization: Bearer <token>")
    if token.startswith(KEY_PREFIX):
        return await _key_caller(c, request, token)
    user, expires = token_claims(token, c.jwt_secret)
    if await c.erased.erased(user):
        raise TokenError("this account was erased; its tokens no longer work")
    request.state.user_id = user
    return Caller(user, expires, c.erased)


async def _key_caller(c: Container, request: Request, secret: str) -> Caller:
    """A request signed with an API key: live, within its scopes and its rate limit. Each
    request reads the key's row (one round trip, which also counts it), so a revocation holds
    on every API process as soon as it commits."""
    route = getattr(request.scope.get("route"), "path", "")
    scopes = needed(request.method, route)
    grant = await c.keys.use(secret) if c.keys is not None else None
    if grant is None or await c.erased.erased(grant.user_id):
        raise TokenError("invalid or revoked API key")
    request.state.user_id = grant.user_id
    request.state.key_prefix = grant.prefix
    if scopes is None:
        raise ApiError(403, "Not allowed with an API key",
                       f"{request.method} {route}: API keys cannot do this (topping up, erasing "
                       "the account and managing keys need a password sign-in)")
    if not scopes & grant.scopes:
        raise ApiError(403, "Scope missing",
                       f"{request.method} {route} needs a key with the scope "
                       f"{' or '.join(sorted(scopes))}; this key has {', '.join(sorted(grant.scopes))}")
    if not grant.allowed:
        raise ApiError(429, "Too many requests", "this API key's rate limit is used up for this "
                       f"minute; retry in {grant.retry_after} s",
                       {"Retry-After": str(grant.retry_after)})
    # a key does not expire: a long-poll or stream signed with one ends when it is revoked or
    # when the account is erased (still_allowed, at each of its wake-ups)
    return Caller(grant.user_id, float("inf"), c.erased, grant, c.keys)


async def current_user(caller: Annotated[Caller, Depends(current_caller)]) -> UUID:
    """The id of the user the bearer token was issued to."""
    return caller.user


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
CurrentCaller = Annotated[Caller, Depends(current_caller)]
Commands = Annotated[CarpriceApp, Depends(commands)]
ReadSide = Annotated[ReadSideT, Depends(reads)]
Keys = Annotated[Idempotency, Depends(idempotency)]
Models = Annotated[Registry, Depends(registry)]
WebhookStore = Annotated[Webhooks, Depends(webhooks)]
