"""`carprice bench baseline`: the bare endpoint prices exactly as inference does, refuses what
the API refuses, and its runner measures it from a child server."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.api import of_baseline
from bench.baseline import MODELS, create_baseline, run_baseline
from model_registry.features import columns_of
from tests.cars import car


def test_the_bare_endpoint_answers_the_served_price_and_range(
    registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_REGISTRY_DIR", str(registry.root))
    with TestClient(create_baseline()) as client:
        for name in MODELS:
            answer = client.post("/predict", json={"model_name": name, "data": car(3)})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            card = registry.card(name)
            assert body["model_version"] == card.version
            served = registry.load(name, card.version).price(columns_of([car(3)]))[0]
            assert body["result"] == round(served.price, 2)
            assert body["interval"]["low"] <= body["result"] <= body["interval"]["high"]
            assert body["interval"]["level"] == pytest.approx(0.8)


def test_the_bare_endpoint_refuses_a_bad_car_naming_the_field(
    registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_REGISTRY_DIR", str(registry.root))
    with TestClient(create_baseline()) as client:
        bad = client.post("/predict", json={"model_name": MODELS[0],
                                            "data": {**car(0), "horsepower": -5}})
        assert bad.status_code == 422
        assert "horsepower" in bad.json()["detail"]
        assert client.post("/predict", json={"model_name": "nope", "data": car(0)}).status_code == 404


def test_a_run_measures_the_child_server(registry: Any) -> None:
    figures = run_baseline(registry.root, car(0), clients=2, seconds=1.0, workers=1)
    assert figures["errors"] == 0
    assert figures["requests"] > 0
    assert figures["cpu_ms_per_request"] > 0  # the server's workers are read, not this process


def test_carprice_is_put_as_a_share_of_the_baseline() -> None:
    ratio = of_baseline({"jobs_per_s": 100.0, "stack_cpu_ms_per_job": 15.0},
                        {"requests_per_s": 1000.0, "cpu_ms_per_request": 1.5})
    assert ratio == {"jobs_per_s_share": 0.1, "cpu_per_job_multiple": 10.0}
