"""What the API process builds once at start-up and hands to every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from api.reads import ReadSide
from commands.application import CarpriceApp
from infra.erased import ErasedUsers
from infra.idempotency import Idempotency
from infra.settings import Settings
from infra.throttle import Throttle
from model_registry.store import Registry
from projections.webhook_registrations import Webhooks


@dataclass
class Container:
    """The API's collaborators (the composition root fills it in the lifespan)."""

    settings: Settings
    commands: CarpriceApp
    registry: Registry
    reads: ReadSide  # async reads, with read-your-writes
    throttle: Throttle
    idempotency: Idempotency
    jwt_secret: str
    db: ConnectionPool[Any] | None = None  # sync connections (readiness, metrics)
    kafka_bootstrap: str | None = None
    pipeline: Any = None  # api.pipeline.PipelineProbe, set once the container exists
    webhooks: Webhooks | None = None
    erased: ErasedUsers = field(default_factory=ErasedUsers)  # whose tokens no longer work
