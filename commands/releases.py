"""Model releases: which version serves paid jobs, changed by promotions and rollbacks, each an
event with who, when and why (the ModelRelease aggregate of the model)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from commands.write_side import WriteSide
from domain.release import ModelRelease, ReleaseRefused, release_id


@dataclass(frozen=True)
class Release:
    """One promotion or rollback, as recorded."""

    kind: str  # "promoted" or "rolled back"
    version: str  # the champion from then on
    previous: str | None  # the champion it replaced
    by: str
    why: str
    at: datetime
    forced: bool


class Releases(WriteSide):
    """The release commands of CarpriceApp."""

    def promoted_champion(self, model_name: str) -> str | None:
        """The version last promoted (None: never promoted; the registry's rule serves)."""
        try:
            release: ModelRelease = self.repository.get(release_id(model_name))
        except AggregateNotFoundError:
            return None
        return release.champion

    @retry_on_conflict
    def promote_model(self, model_name: str, version: str, current: str, by: str, why: str,
                      forced: bool = False) -> bool:
        """Make `version` the champion of `model_name` (`current`: the champion serving now, for
        a first promotion to record). False: it already is."""
        try:
            release: ModelRelease = self.repository.get(release_id(model_name))
        except AggregateNotFoundError:
            if version == current:
                return False
            release = ModelRelease(model_name=model_name, version=version, previous=current, by=by,
                                   why=why, forced=forced)
        else:
            if not release.promote(version, by=by, why=why, forced=forced):
                return False
        self.save(release)
        return True

    @retry_on_conflict
    def roll_back_model(self, model_name: str, by: str, why: str) -> str:
        """Return `model_name` to the champion before the current one; the version now serving.
        Raises ReleaseRefused when there is none."""
        try:
            release: ModelRelease = self.repository.get(release_id(model_name))
        except AggregateNotFoundError:
            raise ReleaseRefused(f"{model_name} was never promoted: there is nothing to roll "
                                 "back to") from None
        version = release.roll_back(by=by, why=why)
        self.save(release)
        return version

    def release_history(self, model_name: str) -> list[Release]:
        """Every promotion and rollback of `model_name`, oldest first."""
        out = []
        for e in self.events.get(release_id(model_name)):
            if isinstance(e, ModelRelease.RolledBack):  # type: ignore[attr-defined]
                out.append(Release("rolled back", e.version, e.from_version, e.by, e.why, e.timestamp,
                                   False))
            elif isinstance(e, ModelRelease.Released | ModelRelease.Promoted):  # type: ignore[attr-defined]
                out.append(Release("promoted", e.version, e.previous, e.by, e.why, e.timestamp,
                                   e.forced))
        return out
