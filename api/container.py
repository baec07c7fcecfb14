"""What the API process builds once at start-up and hands to every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from api.reads import Reads
from api.throttle import Throttle
from commands.app import CarpriceApp
from infra.settings import Settings
from model_registry.store import Registry


@dataclass
class Container:
    """The API's collaborators (the composition root fills it in the lifespan)."""

    settings: Settings
    commands: CarpriceApp
    registry: Registry
    db: ConnectionPool[Any]  # sync connections, for the routes that run in threads
    reads: Reads  # async reads, for the routes that wait on the read side
    throttle: Throttle
    jwt_secret: str
    kafka_bootstrap: str | None = None
    pipeline: Any = None  # api.pipeline.PipelineProbe, set once the container exists
