"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Deps

router = APIRouter(tags=["operations"])
MAX_PROJECTION_LAG = 1000  # events


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(c: Deps) -> JSONResponse:
    """Ready to serve: database, broker, models and projection lag; 503 with the reasons."""
    problems: list[str] = []
    checks: dict[str, Any] = {}
    head = 0
    try:
        head = c.commands.recorder.max_notification_id() or 0
        with c.reads.connection() as db:
            positions = dict(db.execute("SELECT name, position FROM projection_state").fetchall())
        lag = {n: head - int(positions.get(n, 0)) for n in ("balances", "jobs")}
        checks["projection_lag"] = lag
        if max(lag.values()) > MAX_PROJECTION_LAG:
            problems.append(f"projections lag behind the event store: {lag}")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        problems.append(f"database unreachable: {type(exc).__name__}")
        checks["database"] = "down"
    checks["models"] = c.registry.names()
    if not checks["models"]:
        problems.append("no models registered")
    checks["broker"] = _broker(c.kafka_bootstrap)
    if checks["broker"] != "ok":
        problems.append(f"broker: {checks['broker']}")
    body = {"status": "ready" if not problems else "not ready", "checks": checks}
    if problems:
        body["detail"] = "; ".join(problems)
    return JSONResponse(body, status_code=503 if problems else 200)


def _broker(bootstrap: str | None) -> str:
    if not bootstrap:
        return "not configured"
    import socket

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return "ok"
    except (OSError, ValueError):
        return f"unreachable at {bootstrap}"
