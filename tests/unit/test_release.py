"""A model's champions: promotions and rollbacks as events, with who and why."""

from __future__ import annotations

import pytest
from eventsourcing.application import Application

from domain.release import ModelRelease, ReleaseRefused, release_id


def test_promotions_and_a_rollback_replay_to_the_same_champion() -> None:
    app: Application = Application()
    release = ModelRelease(model_name="random_forest", version="1", previous=None, by="ops@dealer",
                           why="first release")
    assert release.id == release_id("random_forest") and release.champion == "1"
    assert release.promote("2", by="ops@dealer", why="better live MAE") is True
    assert release.promote("2", by="ops@dealer", why="again") is False
    assert release.roll_back(by="ops@dealer", why="coverage fell") == "1"
    app.save(release)
    replayed = app.repository.get(release_id("random_forest"))
    assert replayed.champion == "1" and replayed.champions == ["1"]
    events = list(app.events.get(release.id))
    assert [type(e).__name__ for e in events] == ["Released", "Promoted", "RolledBack"]
    assert (events[1].by, events[1].why, events[1].previous) == ("ops@dealer", "better live MAE", "1")
    with pytest.raises(ReleaseRefused, match="no champion before v1"):
        replayed.roll_back(by="ops", why="again")
