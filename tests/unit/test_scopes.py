"""The API-key policy names real routes: a typo would shut a route to every key unnoticed."""

from __future__ import annotations

from fastapi.routing import APIRoute

from api.routes import auth, balance, batch, events, history, keys, predict, quality, webhooks
from api.scopes import KEY_ROUTES, needed


def _routes() -> set[tuple[str, str]]:
    found = set()
    for module in (auth, balance, batch, events, history, keys, predict, quality, webhooks):
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                found |= {(m, route.path) for m in route.methods}
    return found


def test_every_route_the_policy_opens_to_keys_exists() -> None:
    assert set(KEY_ROUTES) - _routes() == set()


def test_keys_never_reach_the_account_holders_doors() -> None:
    for method, path in (("POST", "/balance"), ("DELETE", "/me"), ("POST", "/keys"), ("GET", "/keys"),
                         ("DELETE", "/keys/{key_id}")):
        assert (method, path) in _routes()
        assert needed(method, path) is None
    assert needed("GET", "/api/v1/balance") == frozenset({"read"})  # a full template works too
    assert needed("HEAD", "/balance") == frozenset({"read"})
