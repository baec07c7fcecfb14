"""Sign-up, sign-in (JSON and OAuth2 form) and the current user."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import Commands, CurrentUser, Deps
from api.errors import ApiError
from api.schemas import ErasedPublic, SignIn, TokenPublic, UserCreate, UserErase, UserPublic
from domain.errors import InvalidCredentials
from domain.ids import normalise_email
from domain.text import text_problem
from infra.auth import TOKEN_TTL_SECONDS, issue_token

router = APIRouter(tags=["account"])


PROXY_HEADER = "X-Carprice-Proxy"


def client_address(request: Request, proxy_token: str | None) -> str:
    """The address a request is throttled as: the peer (uvicorn puts a trusted reverse proxy's
    X-Forwarded-For there, FORWARDED_ALLOW_IPS), or the browser's address that the dashboard
    passes on in X-Forwarded-For, believed only with the dashboard's proxy token."""
    peer = request.client.host if request.client else "unknown"
    given = request.headers.get(PROXY_HEADER, "")
    if not proxy_token or not hmac.compare_digest(given.encode(), proxy_token.encode()):
        return peer
    claimed = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(claimed))
    except ValueError:
        return peer


def _client(request: Request) -> str:
    return client_address(request, request.app.state.container.settings.proxy_token)


def _too_many(what: str, wait: int) -> ApiError:
    return ApiError(429, f"Too many {what}", f"too many {what} from this address; retry in "
                    f"{wait} seconds", {"Retry-After": str(wait)})


@router.post("/sign_up", response_model=UserPublic)
def sign_up(body: UserCreate, c: Deps, request: Request) -> UserPublic:
    """Create an account (and its wallet). The email registers once, case-insensitively."""
    if wait := c.throttle.sign_up_attempt(_client(request)):
        raise _too_many("sign-ups", wait)
    account = c.commands.sign_up(body.name, body.email, body.password)
    return UserPublic(name=account.name, email=account.email, user_id=account.user_id)


def _sign_in(c: Deps, request: Request, email: str, password: str) -> TokenPublic:
    for field, value in (("email", email), ("password", password)):
        if problem := text_problem(value):
            raise ApiError(422, "Malformed request", f"malformed request: {field}: {problem}")
    client, account_key = _client(request), normalise_email(email)
    if wait := c.throttle.sign_in_attempt(account_key, client):
        raise _too_many("failed sign-in attempts", wait)
    account = c.commands.authenticate(email, password)  # InvalidCredentials: the slot stays taken
    c.throttle.sign_in_succeeded(account_key, client)
    token = issue_token(account.user_id, c.jwt_secret)
    return TokenPublic(access_token=token, token=token, name=account.name, email=account.email,
                       expires_in=TOKEN_TTL_SECONDS)


@router.post("/sign_in", response_model=TokenPublic)
def sign_in(body: SignIn, c: Deps, request: Request) -> TokenPublic:
    """Exchange email and password for a 30-minute bearer token."""
    return _sign_in(c, request, body.email, body.password)


@router.post("/token", response_model=TokenPublic)
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], c: Deps,
          request: Request) -> TokenPublic:
    """OAuth2 password flow (username = email), for the Authorize button of /docs."""
    return _sign_in(c, request, form.username, form.password)


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser, commands: Commands) -> UserPublic:
    """The signed-in user."""
    account = commands.account(user)
    return UserPublic(name=account.name, email=account.email, user_id=account.user_id)


KEPT = ("the amounts of your deposits, holds, captures and releases and the models your jobs "
        "used, under this account id and without your name or email: the books must balance "
        "and every balance must still replay")


def _erase(c: Deps, user: UUID, password: str) -> bool:
    # password guesses are limited per account, like failed sign-ins (a stolen token is not
    # a password)
    if wait := c.throttle.confirm_attempt(str(user)):
        raise _too_many("failed password confirmations", wait)
    try:
        erased = c.commands.erase_account(user, password)
    except InvalidCredentials:
        raise ApiError(403, "Wrong password", "password: it does not match this account; "
                       "nothing was erased") from None
    c.throttle.confirm_succeeded(str(user))
    return erased


@router.delete("/me", response_model=ErasedPublic)
async def erase_me(body: UserErase, user: CurrentUser, c: Deps) -> ErasedPublic:
    """Erase your account, confirmed with your password: your name, email and password are
    deleted (their key is destroyed, leaving only ciphertext in the event store), you can no
    longer sign in, your tokens stop working, your webhooks are deleted, and your email can
    register again as a new account. What is kept, and why, is in `kept`."""
    erased = await run_in_threadpool(_erase, c, user, body.password)
    c.erased.add(user)
    if c.webhooks is not None:
        await c.webhooks.forget(user)
    return ErasedPublic(user_id=user, erased=erased, kept=KEPT)
