"""The API when the read side stalls, and sign-in protection across API replicas."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack.proc import free_port
from tests.e2e.conftest import Api
from tests.e2e.old_client import OldClient
from tests.procs import Proc, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _client(api: Api, credits: int = 0) -> OldClient:
    client = OldClient(api.base)
    email = f"stall-{uuid.uuid4().hex[:10]}@example.com"
    client.sign_up("Stall", email, "password-123")
    client.sign_in(email, "password-123")
    if credits:
        client.top_up(credits)
    return client


def test_with_the_projector_paused_every_request_is_still_answered(api: Api, car: dict[str, Any]) -> None:
    projector = next(p for p in api.procs.procs if p.args[:2] == ["consume", "projections"])
    clients = [_client(api, 100) for _ in range(30)]
    lr = {m["model_name"]: m["price"] for m in clients[0].predictors()}["linear_regression"]
    statuses: Counter[tuple[str, int]] = Counter()
    stale: Counter[bool] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def note(what: str, r: requests.Response) -> None:
        with lock:
            statuses[(what, r.status_code)] += 1
            if what == "GET /balance" and r.ok:
                stale[r.json()["stale"]] += 1

    deposited: Counter[int] = Counter()  # per client: the deposits of 1 credit the API accepted
    jobs: dict[int, list[str]] = {i: [] for i in range(len(clients))}  # and the jobs it charged

    def work(i: int, client: OldClient) -> None:
        h = client._headers()
        while not stop.is_set():
            try:
                r = requests.post(api.url("/balance"), json={"amount": 1}, headers=h, timeout=10)
                note("POST /balance", r)
                deposited[i] += r.status_code == 200
                note("GET /balance", requests.get(api.url("/balance"), headers=h, timeout=10))
                r = requests.post(api.url("/predict"), timeout=10, headers=h, json={
                    "model_name": "linear_regression", "data": car})
                note("POST /predict", r)
                if r.status_code == 200:
                    jobs[i].append(r.json()["job_id"])
            except requests.RequestException as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    def health() -> None:
        while not stop.is_set():
            try:
                note("GET /healthz", requests.get(f"{api.base}/healthz", timeout=5))
            except requests.RequestException as exc:
                with lock:
                    errors.append(f"healthz: {exc}")
            stop.wait(0.1)

    projector.pause()  # as a hung process would look
    try:
        threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
        threads.append(threading.Thread(target=health))
        for t in threads:
            t.start()
        wait_for(lambda: statuses[("GET /balance", 200)] >= 150, timeout=120, interval=0.1,
                 what="150 balance reads with the projector paused")
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        projector.resume()
    assert errors == []
    assert {status for (_, status) in statuses} == {200}, statuses
    assert statuses[("GET /healthz", 200)] >= 20
    assert stale[True] > 0  # the reads said they were behind, and still answered
    # once the projector runs again, the read side catches up with every deposit and charge:
    # 100 + the deposits - the price of each finished job (a failed one is refunded)
    assert lr > 0 and sum(len(j) for j in jobs.values()) > 0
    for i, client in enumerate(clients[:5]):
        ended = [wait_for(lambda c=client, j=job: (s := c.job(j)["status"]) in ("finished", "failed") and s,
                          timeout=60, what=f"job {job} to end") for job in jobs[i]]
        expected = 100 + deposited[i] - lr * ended.count("finished")
        wait_for(lambda c=client, e=expected: (r := requests.get(api.url("/balance"), headers=c._headers(),
                                                                  timeout=30).json())["amount"] == e
                 and not r["stale"], timeout=60, what=f"client {i}'s balance to read {expected}")


@pytest.fixture
def replicas(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two more API processes on the same database, with small limits, behind a (pretend)
    reverse proxy on loopback whose X-Forwarded-For they believe, as an operator sets it up."""
    env = {**api.procs.env, "SIGNIN_FAILURES_PER_CLIENT": "8", "SIGNUPS_PER_CLIENT": "3",
           "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    ports = [free_port(), free_port()]
    log_dir = tmp_path_factory.mktemp("replicas")
    procs = [Proc(["api", "--port", str(p)], env, log_dir / f"api-{p}.log") for p in ports]
    bases = [f"http://127.0.0.1:{p}" for p in ports]

    def up() -> bool:
        try:
            return all(requests.get(f"{b}/healthz", timeout=1).ok for b in bases)
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, timeout=60, what="the replicas")
        yield [f"{b}/api/v1" for b in bases]
    finally:
        for p in procs:
            p.stop()


def _sign_in(base: str, email: str, password: str, client: str) -> requests.Response:
    return requests.post(f"{base}/sign_in", json={"email": email, "password": password},
                         headers={"X-Forwarded-For": client}, timeout=30)


def test_failed_sign_ins_count_across_replicas_and_never_lock_the_owner_out(
    api: Api, replicas: list[str]
) -> None:
    a, b = replicas
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    assert requests.post(f"{a}/sign_up", json={"name": "V", "email": victim, "password": "right-password"},
                         headers={"X-Forwarded-For": "10.55.0.1"}, timeout=30).status_code == 200
    attacker = "10.66.0.1"
    tries = [_sign_in(a if i % 2 else b, victim, f"guess-{i}", attacker).status_code for i in range(5)]
    assert tries == [401] * 5
    blocked = _sign_in(a, victim, "guess-6", attacker)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "too many" in blocked.json()["detail"]
    assert _sign_in(b, victim, "right-password", attacker).status_code == 429  # that address, that account
    # the owner, from anywhere else, signs in at once; on either replica
    assert _sign_in(a, victim, "right-password", "10.77.0.2").status_code == 200
    # a success resets the owner's own count: five more mistakes are allowed again (without the
    # reset the third of them would be the sixth failure, and refused)
    owner = "10.77.0.3"
    assert [_sign_in(b, victim, "typo", owner).status_code for _ in range(2)] == [401] * 2
    assert _sign_in(b, victim, "right-password", owner).status_code == 200
    assert [_sign_in(a, victim, "typo", owner).status_code for _ in range(6)] == [401] * 5 + [429]
    # per client: one address trying many accounts is stopped too (8 failures here)
    sprayer = "10.88.0.4"
    codes = [_sign_in(a, f"nobody-{i}@example.com", "pw-12345678", sprayer).status_code for i in range(9)]
    assert codes == [401] * 8 + [429]


def test_sign_ups_are_limited_per_client_across_replicas(api: Api, replicas: list[str]) -> None:
    a, b = replicas

    def sign_up(base: str, client: str) -> requests.Response:
        return requests.post(f"{base}/sign_up", headers={"X-Forwarded-For": client}, timeout=30,
                             json={"name": "S", "email": f"s-{uuid.uuid4().hex[:8]}@example.com",
                                   "password": "password-123"})

    client = f"10.99.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    codes = [sign_up(a if i % 2 else b, client).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    assert sign_up(a, "10.99.251.6").status_code == 200
