"""Every error as an RFC 9457 problem document whose `detail` old clients can read."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing import persistence as es
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kafka.errors import KafkaError
from starlette.exceptions import HTTPException as StarletteHTTPException

from commands.group_commit import StoreTimeout, WriterStopped
from domain import errors as de
from infra.auth import TokenError
from infra.idempotency import KeyInFlight, KeyReused
from infra.pg import DATABASE_DOWN

log = logging.getLogger("carprice.api")

# domain error -> (status, title)
STATUS: dict[type[Exception], tuple[int, str]] = {
    de.EmailAlreadyRegistered: (409, "Email already registered"),
    de.InvalidCredentials: (401, "Invalid credentials"),
    de.InsufficientCredits: (402, "Not enough credits"),
    de.UnknownModel: (404, "Unknown model"),
    de.InvalidFeatures: (422, "Invalid features"),
    de.ExplanationUnavailable: (422, "Explanation unavailable"),
    de.InvalidBatch: (422, "Invalid batch"),
    de.BatchNotFound: (404, "Batch not found"),
    de.InvalidAmount: (422, "Invalid amount"),
    de.BalanceDecrease: (422, "Balance cannot decrease"),
    de.InvalidUserData: (422, "Invalid sign-up data"),
    de.JobNotFound: (404, "Job not found"),
    de.JobAlreadyFinished: (409, "Job already finished"),
    de.AlreadyCharged: (409, "Already charged"),
    de.Busy: (503, "Busy"),
    de.InvalidApiKey: (422, "Invalid API key request"),
    de.ApiKeyNotFound: (404, "API key not found"),
    de.InvalidSalePrice: (422, "Invalid sale price"),
    de.SaleNotReportable: (409, "No price to compare"),
}


class ApiError(Exception):
    """An error raised by the API layer itself."""

    def __init__(self, status: int, title: str, detail: str,
                 headers: dict[str, str] | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers, self.extra = (
            status, title, detail, headers or {}, extra)


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None,
            **extra: object) -> JSONResponse:
    """An application/problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json")


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        errors.append({"field": where or "body", "message": str(err.get("msg", ""))[:200]})
    if not errors:
        return "malformed request body", []
    text = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
    return f"malformed request: {text}", errors[:50]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a problem document."""

    @app.exception_handler(de.DomainError)
    async def domain_error(_: Request, exc: de.DomainError) -> JSONResponse:
        status, title = next(((s, t) for cls, (s, t) in STATUS.items() if isinstance(exc, cls)),
                             (422, "Request refused"))
        extra: dict[str, Any] = {}
        if isinstance(exc, de.InsufficientCredits):
            extra = {"balance": exc.balance, "price": exc.price}
        if isinstance(exc, de.InvalidFeatures):
            extra = {"errors": exc.errors}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "1"}
        return problem(status, title, str(exc), headers, **extra)

    @app.exception_handler(KeyInFlight)
    async def key_in_flight(_: Request, exc: KeyInFlight) -> JSONResponse:
        return problem(409, "Request in progress", str(exc), {"Retry-After": "1"})

    @app.exception_handler(KeyReused)
    async def key_reused(_: Request, exc: KeyReused) -> JSONResponse:
        return problem(422, "Idempotency-Key reused", str(exc))

    @app.exception_handler(TokenError)
    async def token_error(_: Request, exc: TokenError) -> JSONResponse:
        return problem(401, "Not authenticated", str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_detail(exc)
        return problem(422, "Malformed request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail),
                       dict(exc.headers) if exc.headers else None)

    @app.exception_handler(StoreTimeout)
    @app.exception_handler(WriterStopped)
    async def store_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return problem(503, "Service unavailable", str(exc), {"Retry-After": "2"})

    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, dependency_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug: a 500 that monitoring counts as one, never a "please retry" that hides it.
        request_id = (request.scope.get("state") or {}).get("request_id")
        log.error("unhandled error on %s %s (request %s)", request.method, request.url.path,
                  request_id, exc_info=exc)
        return problem(500, "Internal error", "the service failed on this request; it is logged "
                       f"under request id {request_id}",
                       {"X-Request-Id": request_id} if request_id else None, request_id=request_id)


# What is known to be temporary: the database or the broker is down or restarting. Only these
# answer 503 with Retry-After; anything else unexpected is a 500.
UNAVAILABLE: tuple[type[Exception], ...] = (
    *DATABASE_DOWN,  # psycopg's OperationalError includes the pool's PoolTimeout
    es.ConnectionUnavailableError, KafkaError,
)


async def dependency_down(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After: a dependency (database, broker) is unavailable for now."""
    log.warning("%s %s: a dependency is unavailable: %s: %s", request.method, request.url.path,
                type(exc).__name__, str(exc)[:300])
    return problem(503, "Service unavailable", "a service this request needs (the database or "
                   "the broker) is unavailable for the moment; retry shortly", {"Retry-After": "2"})
