"""Push against the running stack: long-poll, server-sent events (resumed), signed webhooks."""

from __future__ import annotations

import json
import queue
import socket
import threading
import uuid
from typing import Any

import pytest
import requests

from infra.webhook_http import verify
from tests.e2e.conftest import Api
from tests.procs import wait_for
from tests.receiver import Receiver

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _user(api: Api, credits: int) -> dict[str, str]:
    email = f"push-{uuid.uuid4().hex[:10]}@example.com"
    requests.post(api.url("/sign_up"), json={"name": "Push", "email": email, "password": "password-123"},
                  timeout=30).raise_for_status()
    token = requests.post(api.url("/sign_in"), json={"email": email, "password": "password-123"},
                          timeout=30).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    if credits:
        requests.post(api.url("/balance"), json={"amount": credits}, headers=h, timeout=30).raise_for_status()
    return h


def _submit(api: Api, h: dict[str, str], car: dict[str, Any], model: str = "linear_regression") -> str:
    r = requests.post(api.url("/predict"), json={"model_name": model, "data": car}, headers=h, timeout=30)
    r.raise_for_status()
    return str(r.json()["job_id"])


def test_a_long_poll_answers_with_the_ended_job_in_one_request(api: Api, car: dict[str, Any]) -> None:
    h = _user(api, 100)
    for path in ("/predict/{}?wait=25", "/predict?job_id={}&wait=25"):
        job = _submit(api, h, car)
        r = requests.get(api.url(path.format(job)), headers=h, timeout=60)
        assert r.status_code == 200
        assert r.json()["status"] == "finished" and r.json()["result"] > 0, r.json()
    other = _user(api, 0)
    assert requests.get(api.url(f"/predict/{job}?wait=1"), headers=other, timeout=30).status_code == 404


class Stream:
    """GET /jobs/events in a thread; its events, parsed, on a queue."""

    def __init__(self, api: Api, h: dict[str, str], last_event_id: str | None = None) -> None:
        headers = {**h, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        self.response = requests.get(api.url("/jobs/events"), headers=headers, stream=True, timeout=(10, 60))
        assert self.response.status_code == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("id:"):
                    event["id"] = int(line[3:].strip())
                elif line.startswith("event:"):
                    event["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    event["data"] = json.loads(line[5:].strip())
                elif not line and "data" in event:
                    self.events.put(event)
                    event = {}
        except (requests.RequestException, AttributeError):
            return  # closed

    def take(self, n: int, timeout: float = 60) -> list[dict[str, Any]]:
        return [self.events.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        # Shut the socket down first: the reading thread holds the response's buffer lock
        # until its recv returns, so a bare close() would wait for the server's next ping.
        conn = self.response.raw.connection
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone
        self.response.close()


def test_the_event_stream_pushes_each_status_change_and_resumes_after_the_last_event_id(
    api: Api, car: dict[str, Any]
) -> None:
    h = _user(api, 100)
    stream = Stream(api, h)
    try:
        jobs = [_submit(api, h, car), _submit(api, h, car, "gradient_boosting")]
        seen = stream.take(4)
    finally:
        stream.close()
    assert {e["event"] for e in seen} == {"job"}
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)  # in order: ids are positions
    for job in jobs:
        assert [e["data"]["status"] for e in seen if e["data"]["job_id"] == job] == ["queued", "finished"]
    # the connection drops after the first event: resuming sends the three after it, once
    resumed = Stream(api, h, last_event_id=str(seen[0]["id"]))
    try:
        again = resumed.take(3)
        third = _submit(api, h, car)  # and then the live ones
        live = resumed.take(2)
    finally:
        resumed.close()
    assert [e["id"] for e in again] == [e["id"] for e in seen[1:]]
    assert [(e["data"]["job_id"], e["data"]["status"]) for e in live] == [
        (third, "queued"), (third, "finished")]
    # another user's stream carries none of it
    other = Stream(api, _user(api, 0), last_event_id="0")
    try:
        with pytest.raises(queue.Empty):
            other.take(1, timeout=2)
    finally:
        other.close()


def test_signed_webhooks_for_an_ended_job_and_a_low_balance(api: Api, car: dict[str, Any]) -> None:
    receiver = Receiver(statuses=[500])  # the first delivery fails: it is retried
    try:
        h = _user(api, 30)
        made = requests.post(api.url("/webhooks"), headers=h, timeout=30, json={
            "url": receiver.url, "events": ["job.ended", "balance.low"], "balance_below": 15})
        assert made.status_code == 201, made.text
        hook, secret = made.json()["webhook_id"], made.json()["secret"]
        assert requests.get(api.url("/webhooks/secret"), headers=h, timeout=30).json()["secret"] == secret
        job = _submit(api, h, car)  # 30 -> 20
        _submit(api, h, car)  # 20 -> 10: below 15
        log_url = api.url(f"/webhooks/{hook}/deliveries")

        seen: list[dict[str, Any]] = []

        def delivered() -> list[dict[str, Any]]:
            seen[:] = requests.get(log_url, headers=h, timeout=30).json()["deliveries"]
            return seen if len(seen) == 3 and all(d["status"] == "delivered" for d in seen) else []

        try:
            wait_for(delivered, timeout=60,
                     what="three deliveries delivered (two jobs ended, one balance low)")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the delivery log: {seen}; the receiver got "
                                 f"{len(receiver.requests)} requests") from None
        log = delivered()
    finally:
        receiver.close()
    bodies = [json.loads(body) for _, body in receiver.requests]
    assert all(verify(secret, hd["carprice-signature"], body) for hd, body in receiver.requests)
    ended = {b["data"]["job_id"] for b in bodies if b["type"] == "job.ended"}
    low = [b["data"] for b in bodies if b["type"] == "balance.low"]
    assert job in ended and len(ended) == 2
    assert low and {(d["balance"], d["balance_below"]) for d in low} == {(10, 15)}
    assert len(receiver.requests) == 4  # one of them twice (the 500), with the same delivery id
    assert len({hd["carprice-delivery"] for hd, _ in receiver.requests}) == 3
    assert sorted(d["attempts"] for d in log) == [1, 1, 2]
    assert requests.delete(api.url(f"/webhooks/{hook}"), headers=h, timeout=30).status_code == 204
