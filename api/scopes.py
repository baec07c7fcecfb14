"""Which routes an API key may call, by scope: everything else needs a password's token.

A route not listed here answers a key with 403: topping up, erasing the account and managing
keys are the account holder's, never an integration's. Listing by route template (not by
URL prefix) means a new route is closed to keys until someone decides its scope here.
"""

from __future__ import annotations

_READ = frozenset({"read"})

# (method, route template under /api/v1, as a matched route names itself) -> the scopes, any
# one of which lets a key call it
KEY_ROUTES: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/predict"): frozenset({"predict"}),
    ("GET", "/predict/{job_id}"): frozenset({"predict", "read"}),
    ("GET", "/predict/{job_id}/receipt"): frozenset({"predict", "read"}),
    ("POST", "/predict/{job_id}/outcome"): frozenset({"predict", "batch"}),
    ("GET", "/predict"): _READ,
    ("POST", "/predict/batch"): frozenset({"batch"}),
    ("GET", "/predict/batch/{batch_id}"): frozenset({"batch", "read"}),
    ("GET", "/predict/batch/{batch_id}/results.csv"): frozenset({"batch", "read"}),
    ("GET", "/predictors"): frozenset({"predict", "batch", "read"}),
    ("GET", "/predictors/{model_name}/card"): frozenset({"predict", "batch", "read"}),
    ("GET", "/predictors/{model_name}/live"): frozenset({"predict", "batch", "read"}),
    ("GET", "/predictors/{model_name}/drift"): frozenset({"predict", "batch", "read"}),
    ("GET", "/predictors/{model_name}/challengers"): frozenset({"predict", "batch", "read"}),
    ("GET", "/balance"): _READ,
    ("GET", "/balance/statement"): _READ,
    ("GET", "/balance/audit"): _READ,
    ("GET", "/me"): _READ,
    ("GET", "/history"): _READ,
    ("GET", "/jobs/running"): _READ,
    ("GET", "/jobs/events"): _READ,
    ("POST", "/webhooks"): frozenset({"webhooks"}),
    ("GET", "/webhooks"): frozenset({"webhooks"}),
    ("GET", "/webhooks/secret"): frozenset({"webhooks"}),
    ("DELETE", "/webhooks/{webhook_id}"): frozenset({"webhooks"}),
    ("GET", "/webhooks/{webhook_id}/deliveries"): frozenset({"webhooks"}),
}


def needed(method: str, route: str) -> frozenset[str] | None:
    """The scopes that open this route to a key; None: no key may call it."""
    if method == "HEAD":
        method = "GET"
    return KEY_ROUTES.get((method, route.removeprefix("/api/v1")))
