"""Sign-up, sign-in (JSON and OAuth2 form) and the current user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import Commands, CurrentUser, Deps
from api.errors import ApiError
from api.schemas import SignIn, TokenPublic, UserCreate, UserPublic
from domain.errors import InvalidCredentials
from domain.ids import normalise_email
from infra.auth import TOKEN_TTL_SECONDS, issue_token

router = APIRouter(tags=["account"])


@router.post("/sign_up", response_model=UserPublic)
def sign_up(body: UserCreate, commands: Commands) -> UserPublic:
    """Create an account (and its wallet). The email registers once, case-insensitively."""
    account = commands.sign_up(body.name, body.email, body.password)
    return UserPublic(name=account.name, email=account.email, user_id=account.user_id)


def _sign_in(c: Deps, request: Request, email: str, password: str) -> TokenPublic:
    client = request.client.host if request.client else "unknown"
    keys = (f"email:{normalise_email(email)}", f"client:{client}")
    wait = c.limiter.retry_after(*keys)
    if wait:
        raise ApiError(429, "Too many sign-in attempts",
                       f"too many failed sign-in attempts; retry in {wait} seconds",
                       {"Retry-After": str(wait)})
    try:
        account = c.commands.authenticate(email, password)
    except InvalidCredentials:
        c.limiter.failed(*keys)
        raise
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
