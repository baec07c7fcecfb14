"""What an operator sees of the running stack: metrics, request ids, one trace per job."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack
from tests.e2e.conftest import Api
from tests.e2e.old_client import OldClient
from tests.procs import topic_messages, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _client(api: Api, credits: int) -> OldClient:
    client = OldClient(api.base)
    email = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    client.sign_up("Ops", email, "password-123")
    client.sign_in(email, "password-123")
    client.top_up(credits)
    return client


def _metrics(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(f"{api.base}/metrics", timeout=30).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(metrics: dict[Any, float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_jobs_credits_and_lag(api: Api, car: dict[str, Any]) -> None:
    before = _metrics(api)
    client = _client(api, 100)
    job = client.predict("gradient_boosting", car)
    wait_for(lambda: client.job(job)["status"] == "finished", timeout=60, what="the job")

    def moved() -> dict[Any, float] | None:
        now = _metrics(api)
        charged = _value(now, "carprice_credits_charged_total") - _value(
            before, "carprice_credits_charged_total")
        return now if charged >= 10 and _value(now, "carprice_job_latency_seconds_count") > _value(
            before, "carprice_job_latency_seconds_count") else None

    now = wait_for(moved, timeout=30, interval=1, what="job metrics to count the new job")
    assert _value(now, "carprice_jobs", status="finished") >= 1
    assert _value(now, "carprice_http_request_duration_seconds_count", method="POST",
                  route="/api/v1/predict", status="200") >= 1
    # the route template, not the raw path: one series for every job id
    assert not any("route" in dict(labels) and str(job) in dict(labels)["route"] for _, labels in now)
    # the series exist (a missing one would read 0.0 through _value and pass anything)
    for name in ("carprice_relay_lag_events", "carprice_event_store_head",
                 "carprice_credits_refunded_total"):
        assert (name, frozenset()) in now, name
    assert ("carprice_consumer_lag_messages", frozenset({("group", "e2e-inference")})) in now
    assert ("carprice_projection_lag_events", frozenset({("projection", "balances")})) in now
    assert _value(now, "carprice_event_store_head") > _value(before, "carprice_event_store_head")


def test_a_request_id_is_echoed_and_logged_without_the_token(api: Api) -> None:
    client = _client(api, 10)
    r = requests.get(f"{api.base}/api/v1/balance", headers={**client._headers(), "X-Request-ID": "req-42"},
                     timeout=30)
    assert r.headers["X-Request-ID"] == "req-42"
    assert len(requests.get(f"{api.base}/healthz", timeout=30).headers["X-Request-ID"]) == 32
    api_log = next(p for p in api.procs.procs if p.args[0] == "api")
    line = wait_for(lambda: next((x for x in api_log.text().splitlines() if "request_id=req-42" in x), None),
                    timeout=10, what="the access log line")
    assert "GET /api/v1/balance 200" in line and "user_id=" in line
    assert client.token is not None and client.token not in api_log.text()


def test_one_trace_follows_a_job_from_post_through_kafka_to_its_result(
    api: Api, stack: Stack, car: dict[str, Any]
) -> None:
    client = _client(api, 50)
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    r = requests.post(f"{api.base}/api/v1/predict", json={"model_name": "linear_regression", "data": car},
                      headers={**client._headers(), "traceparent": f"00-{trace_id}-{parent}-01"}, timeout=30)
    job = r.json()["job_id"]
    wait_for(lambda: client.job(job)["status"] == "finished", timeout=60, what="the job")

    def traced_messages() -> dict[str, str] | None:
        found = {}
        for msg in topic_messages(stack.kafka_bootstrap, "e2e.events", wait_ms=3000):
            value = json.loads(msg.value)
            if value["aggregate_id"] == job:
                found[value["type"]] = dict(msg.headers).get("traceparent", b"").decode()
        return found if "job.completed.v1" in found else None

    found = wait_for(traced_messages, timeout=30, interval=1, what="the job's messages on Kafka")
    requested, completed = found["job.requested.v1"], found["job.completed.v1"]
    assert requested.split("-")[1] == trace_id and completed.split("-")[1] == trace_id
    assert requested.split("-")[2] != parent  # the API's own span, child of the caller's
    assert completed.split("-")[2] not in (parent, requested.split("-")[2])  # inference's span
    inference_log = next(p for p in api.procs.procs if p.args[:2] == ["consume", "inference"])
    assert wait_for(lambda: next((x for x in inference_log.text().splitlines()
                                  if f"job_id={job}" in x and f"trace_id={trace_id}" in x), None),
                    timeout=10, what="the inference log line of the job")
