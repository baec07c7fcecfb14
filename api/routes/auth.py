"""Sign-up, sign-in (JSON and OAuth2 form) and the current user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import Commands, CurrentUser, Deps
from api.errors import ApiError
from api.schemas import SignIn, TokenPublic, UserCreate, UserPublic
from domain.ids import normalise_email
from domain.text import text_problem
from infra.auth import TOKEN_TTL_SECONDS, issue_token

router = APIRouter(tags=["account"])


def _client(request: Request) -> str:
    # the peer address (uvicorn puts a trusted proxy's X-Forwarded-For here; FORWARDED_ALLOW_IPS)
    return request.client.host if request.client else "unknown"


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
