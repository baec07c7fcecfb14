"""What the API process builds once at start-up and hands to every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from api.reads import ReadSide
from commands.application import CarpriceApp
from infra.api_keys import KeyLookup
from infra.erased import ErasedUsers
from infra.idempotency import Idempotency
from infra.pg import Pool
from infra.settings import Settings
from infra.throttle import Throttle
from model_registry.store import Registry
from projections.webhook_registrations import Webhooks

if TYPE_CHECKING:
    from api.drift import DriftMonitor
    from api.pipeline import PipelineProbe, PipelineStatus


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
    db: Pool | None = None  # sync connections (readiness, metrics)
    kafka_bootstrap: str | None = None
    pipeline: PipelineProbe | None = None  # set once the container exists
    webhooks: Webhooks | None = None
    erased: ErasedUsers = field(default_factory=ErasedUsers)  # whose tokens no longer work
    keys: KeyLookup | None = None  # API keys (None: only passwords' tokens work here)
    drift: DriftMonitor | None = None  # the models' drift (None: not measured here)

    def pipeline_status(self) -> PipelineStatus:
        """The pipeline's latest reading (database errors propagate: the caller reports them)."""
        if self.pipeline is None:
            raise LookupError("the pipeline probe is not set up yet")
        return self.pipeline.read()
