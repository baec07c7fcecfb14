"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Deps

router = APIRouter(tags=["operations"])
MAX_LAG = 1000  # events not yet in the read tables, or not yet on the broker


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(c: Deps) -> JSONResponse:
    """Ready to serve: database, broker, models, relay and projection lag (the partition furthest
    behind counts), stalled projections (work waiting, no progress for
    PROJECTION_STALL_SECONDS, whatever the lag), unrepaired projection faults; 503 with the
    reasons."""
    problems: list[str] = []
    checks: dict[str, Any] = {}
    try:
        status = c.pipeline_status()
        checks["database"] = "ok"
        checks["relay_lag"] = status.relay_lag
        checks["projection_lag"] = status.projection_lag
        checks["projection_faults"] = status.faults
        checks["projections_stalled"] = status.stalled
        for name, idle in status.stalled.items():
            since = "never advanced" if idle is None else f"has not advanced for {idle:.0f} s"
            problems.append(f"projection {name} is stalled: messages are waiting and it {since}")
        if status.relay_lag > MAX_LAG:
            problems.append(f"the relay is {status.relay_lag} events behind the event store")
        if status.projection_lag is not None and max(status.projection_lag.values()) > MAX_LAG:
            problems.append(f"projections lag behind the event store: {status.projection_lag}")
        for name, count in status.faults.items():
            if count:
                problems.append(f"projection {name} has {count} unrepaired fault(s) "
                                "(events it could not apply; see `carprice dlq list`)")
        checks["broker"] = "ok" if status.broker_error is None else status.broker_error
        if status.broker_error is not None:
            problems.append(f"broker: {status.broker_error}")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        problems.append(f"database unreachable: {type(exc).__name__}")
        checks["database"] = "down"
    checks["models"] = c.registry.names()
    if not checks["models"]:
        problems.append("no models registered")
    body = {"status": "ready" if not problems else "not ready", "checks": checks}
    if problems:
        body["detail"] = "; ".join(problems)
    return JSONResponse(body, status_code=503 if problems else 200)
