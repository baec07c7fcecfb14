"""Which version of a model serves paid jobs: its champion, changed only by events.

A model's release history is an aggregate of its own (one per model name): each promotion
names the version, who asked, when and why, and the champion it replaced; a rollback returns
to the champion before the current one. Until a model's first promotion, its latest
registered version serves (as carprice did before the lifecycle existed).
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.events import MODEL_PROMOTED, MODEL_RELEASED, MODEL_ROLLED_BACK
from domain.ids import NAMESPACE


class ReleaseRefused(DomainError):
    """A promotion or rollback that cannot be done as asked."""


def worse_beyond_noise(candidate: Mapping[str, Mapping[str, float]],
                       champion: Mapping[str, Mapping[str, float]]) -> str | None:
    """Why a candidate is worse than the champion on cross-validation beyond its noise (None: it
    is not): its mean CV R² is lower by more than the larger of the two fold-to-fold standard
    deviations. R² because prices rank the models by it."""
    if "r2" not in candidate or "r2" not in champion:
        return None  # a version from before CV metrics: nothing to compare
    c, k = candidate["r2"], champion["r2"]
    noise = max(c["std"], k["std"])
    if k["mean"] - c["mean"] <= noise:
        return None
    return (f"its CV R² {c['mean']:.3f} ± {c['std']:.3f} is below the champion's "
            f"{k['mean']:.3f} ± {k['std']:.3f} by {k['mean'] - c['mean']:.3f}, more than the "
            f"noise ({noise:.3f})")


def release_id(model_name: str) -> UUID:
    """The id of a model's release history."""
    return uuid5(NAMESPACE, f"model-release:{model_name}")


class ModelRelease(Aggregate):
    """The champions of one model, in order."""

    TOPIC = "carprice.model_release"

    class Created(Aggregate.Created):
        TOPIC = "model_release.created.v0"  # never triggered: the first promotion creates it

    @staticmethod
    def create_id(model_name: str) -> UUID:
        return release_id(model_name)

    @event("Released", topic=MODEL_RELEASED)  # the first champion an operator named
    def __init__(self, model_name: str, version: str, previous: str | None, by: str, why: str,
                 forced: bool = False) -> None:
        self.model_name = model_name
        # the champion it replaced (the latest version before any promotion) is where a
        # rollback returns to
        self.champions: list[str] = [previous, version] if previous else [version]

    @property
    def champion(self) -> str:
        """The version serving paid jobs."""
        return self.champions[-1]

    def promote(self, version: str, by: str, why: str, forced: bool = False) -> bool:
        """Make `version` the champion (False: it is already)."""
        if version == self.champion:
            return False
        self._promoted(model_name=self.model_name, version=version, previous=self.champion,
                       by=by, why=why, forced=forced)
        return True

    @event("Promoted", topic=MODEL_PROMOTED)
    def _promoted(self, model_name: str, version: str, previous: str | None, by: str, why: str,
                  forced: bool = False) -> None:
        self.champions.append(version)

    def roll_back(self, by: str, why: str) -> str:
        """Return to the champion before this one; the version now serving."""
        if len(self.champions) < 2:
            raise ReleaseRefused(f"{self.model_name} has no champion before v{self.champion} "
                                 "to roll back to")
        self._rolled_back(model_name=self.model_name, version=self.champions[-2],
                          from_version=self.champion, by=by, why=why)
        return self.champion

    @event("RolledBack", topic=MODEL_ROLLED_BACK)
    def _rolled_back(self, model_name: str, version: str, from_version: str, by: str, why: str) -> None:
        self.champions.pop()
