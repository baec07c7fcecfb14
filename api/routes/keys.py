"""API keys for integrations: issue (the secret shown once), list, revoke. A password's token
only: a key cannot manage keys (api/scopes.py)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Commands, CurrentUser
from api.errors import ApiError
from api.schemas import KeyCreate, KeyCreated, KeyPublic, KeysPublic
from infra.api_keys import KeyRow

router = APIRouter(prefix="/keys", tags=["API keys"])


def _public(row: KeyRow) -> KeyPublic:
    return KeyPublic(key_id=row.key_id, prefix=row.prefix, name=row.name, scopes=list(row.scopes),
                     rate_limit_per_minute=row.rate_limit_per_minute, created_at=row.created_at,
                     last_used_at=row.last_used_at, revoked_at=row.revoked_at)


@router.post("", response_model=KeyCreated, status_code=201)
async def issue(body: KeyCreate, user: CurrentUser, commands: Commands) -> KeyCreated:
    """Issue an API key with these scopes. The secret is in this answer and nowhere else:
    carprice keeps only its hash."""
    issued = await run_in_threadpool(commands.issue_key, user, body.name, list(body.scopes),
                                     body.rate_limit_per_minute)
    return KeyCreated(**_public(issued.row).model_dump(), secret=issued.secret)


@router.get("", response_model=KeysPublic)
async def list_keys(user: CurrentUser, commands: Commands) -> KeysPublic:
    """Your keys (revoked ones too), oldest first; never their secrets."""
    return KeysPublic(keys=[_public(r) for r in await run_in_threadpool(commands.list_keys, user)])


@router.delete("/{key_id}", status_code=204, response_class=Response)
async def revoke(key_id: str, user: CurrentUser, commands: Commands) -> Response:
    """Revoke a key: it stops working at once, on every API process."""
    try:
        found = UUID(key_id)
    except ValueError:
        raise ApiError(404, "API key not found", f"no API key {key_id[:64]!r}") from None
    await run_in_threadpool(commands.revoke_key, user, found)
    return Response(status_code=204)
