"""The REST routes with FastAPI's TestClient, over in-memory fakes (dependency_overrides).

The write side is the real CarpriceApp on the in-memory (POPO) store; the read side is a fake
that reads the write side directly, as if the projector were instant (or, when told, stale).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api import deps
from api.container import Container
from api.main import create_api
from commands.application import CarpriceApp
from domain.ids import wallet_id_for
from infra.settings import Settings
from projections.queries import BalanceRow, JobRow
from tests.fakes import CAR, FakeCatalog

SECRET = "route-tests-secret-" + "x" * 32


class FakeReads:
    """The read side, read straight off the write side; `stale_for` users lag behind."""

    def __init__(self, app: CarpriceApp) -> None:
        self.app = app
        self.stale_for: set[UUID] = set()
        self.projected: set[UUID] = set()  # jobs the "projector" has written (others: not yet)
        self.projects_while_waiting = False  # a bounded wait sees the job's row appear
        self.waited_for: list[UUID] = []  # jobs a read waited for (bounded) to show

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def balance(self, user: UUID) -> tuple[BalanceRow | None, bool]:
        wallet = self.app.balance(user)
        if user in self.stale_for:
            return BalanceRow(user, 0, 1, datetime.now(UTC)), True
        return BalanceRow(user, wallet.balance, wallet.version, datetime.now(UTC), wallet.reserved,
                          wallet.promotional), False

    async def job(self, user: UUID, job_id: UUID, wait: bool = False) -> JobRow | None:
        if wait:
            self.waited_for.append(job_id)
        if wait and self.projects_while_waiting:
            self.projected.add(job_id)
        if job_id not in self.projected:
            return None
        job = self.app.repository.get(job_id)  # as the projector wrote it (not via app.job)
        if job.user_id != user:
            return None
        return JobRow(job.id, job.user_id, job.model_name, job.model_version, job.price, job.status,
                      job.features, job.result, job.error, job.created_on, None, None, job.deadline,
                      job.version)

    async def history(self, user: UUID, limit: int, before: Any) -> tuple[list[JobRow], list[UUID], bool]:
        rows = [r for j in sorted(self.projected, key=str) if (r := await self.job(user, j))]
        return rows[:limit], [r.job_id for r in rows], user in self.stale_for

    async def running(self, user: UUID) -> tuple[list[Any], bool]:
        return [], user in self.stale_for

    async def batches(self, user: UUID) -> list[Any]:
        return []

    async def batch(self, user: UUID, batch_id: UUID, until_projected: bool = False) -> Any:
        return None

    async def batch_rows(self, user: UUID, batch_id: UUID) -> list[Any]:
        return []

    async def job_until_ended(self, user: UUID, job_id: UUID, seconds: float,
                              first_show: bool = False, permit: Any = None) -> JobRow | None:
        self.waited = seconds
        return await self.job(user, job_id, wait=not first_show)

    async def job_updates(self, user: UUID, after: int | None, permit: Any = None) -> Any:
        self.resumed_after = after
        return
        yield


class FakeWebhooks:
    def __init__(self, per_user: int = 2) -> None:
        self.per_user = per_user
        self.hooks: dict[UUID, list[Any]] = {}

    async def register(self, user: UUID, url: str, events: list[str], balance_below: int | None) -> Any:
        from uuid import uuid4

        from projections.webhooks import WebhookRow

        mine = self.hooks.setdefault(user, [])
        if len(mine) >= self.per_user:
            return None
        mine.append(WebhookRow(uuid4(), url, events, balance_below, datetime.now(UTC)))
        return mine[-1], "whsec_fake"

    async def of(self, user: UUID) -> list[Any]:
        return self.hooks.get(user, [])

    async def secret(self, user: UUID) -> str | None:
        return "whsec_fake" if user in self.hooks else None

    async def forget(self, user: UUID) -> None:
        self.hooks.pop(user, None)

    async def delete(self, user: UUID, webhook_id: UUID) -> bool:
        before = len(self.hooks.get(user, []))
        self.hooks[user] = [h for h in self.hooks.get(user, []) if h.webhook_id != webhook_id]
        return len(self.hooks[user]) < before

    async def deliveries(self, user: UUID, webhook_id: UUID, limit: int) -> list[Any]:
        return []


class FakeThrottle:
    def __init__(self) -> None:
        self.wait = 0

    def sign_in_attempt(self, email: str, client: str) -> int:
        return self.wait

    def sign_in_succeeded(self, email: str, client: str) -> None:
        return None

    def sign_up_attempt(self, client: str) -> int:
        return 0

    def confirm_attempt(self, user: str) -> int:
        return self.wait

    def confirm_succeeded(self, user: str) -> None:
        return None


class FakeKeys:
    def __init__(self) -> None:
        self.stored: dict[tuple[UUID, str, str], tuple[str, dict[str, Any]]] = {}

    def replay(self, user: UUID, route: str, key: str, digest: str) -> dict[str, Any] | None:
        from infra.idempotency import KeyReused

        found = self.stored.get((user, route, key))
        if found and found[0] != digest:
            raise KeyReused
        return found[1] if found else None

    def remember(self, user: UUID, route: str, key: str, digest: str, response: dict[str, Any]) -> None:
        self.stored.setdefault((user, route, key), (digest, response))

    def release(self, user: UUID, route: str, key: str) -> None:
        self.released = (user, route, key)


class FakeRegistry:
    def names(self) -> list[str]:
        return ["cheap", "pricey"]

    def price(self, name: str) -> int:
        return FakeCatalog().offer(name).price

    def champion_cards(self) -> list[Any]:
        from model_registry.card import ModelCard

        return [ModelCard(name=n, version="1", price=self.price(n), created_at="", sklearn_version="",
                          sha256="", training_rows=205, metrics={"r2": {"mean": r2, "std": 0.0}},
                          cv={}, input_schema={}) for n, r2 in (("cheap", 0.9), ("pricey", 0.93))]


@pytest.fixture
def world() -> Iterator[tuple[TestClient, CarpriceApp, FakeReads, FakeThrottle]]:
    app = CarpriceApp(FakeCatalog())
    reads, throttle = FakeReads(app), FakeThrottle()
    container = Container(settings=Settings(), commands=app, registry=FakeRegistry(),  # type: ignore[arg-type]
                          reads=reads, throttle=throttle, idempotency=FakeKeys(),  # type: ignore[arg-type]
                          jwt_secret=SECRET, webhooks=FakeWebhooks())  # type: ignore[arg-type]
    api = create_api(container)
    api.dependency_overrides[deps.reads] = lambda: reads
    with TestClient(api) as client:
        yield client, app, reads, throttle


def _signed_in(client: TestClient, email: str = "ann@example.com") -> dict[str, str]:
    assert client.post("/api/v1/sign_up", json={"name": "Ann", "email": email,
                                                "password": "password-1"}).status_code == 200
    token = client.post("/api/v1/sign_in", json={"email": email, "password": "password-1"}).json()
    assert token["token"] == token["access_token"]
    return {"Authorization": f"Bearer {token['token']}"}


def test_the_old_clients_flow(world: Any) -> None:
    client, app, reads, _ = world
    h = _signed_in(client)
    assert client.get("/api/v1/balance", headers=h).json() == {  # old clients read `amount`
        "amount": 0, "available": 0, "reserved": 0, "promotional": 0, "stale": False}
    assert client.post("/api/v1/balance", json={"new_amount": 100}, headers=h).json()["amount"] == 100
    listed = client.get("/api/v1/predictors", headers=h).json()["models"]
    assert [(m["model_name"], m["price"]) for m in listed] == [("cheap", 10), ("pricey", 40)]
    job = client.post("/api/v1/predict", json={"model_name": "pricey", "data": CAR}, headers=h).json()
    assert (job["price"], job["balance"], job["status"]) == (40, 60, "queued") and job["deadline"]
    # just accepted, not projected yet: answered from the write side, and said to be stale
    first = client.get(f"/api/v1/predict/{job['job_id']}", headers=h).json()
    assert (first["status"], first["stale"]) == ("queued", True)
    reads.projected.add(UUID(job["job_id"]))
    old_style = client.request("GET", "/api/v1/predict", json={"job_id": job["job_id"]}, headers=h)
    assert old_style.json()["stale"] is False and old_style.json()["model_name"] == "pricey"
    assert client.get("/api/v1/history", headers=h).json()["job_ids"] == [job["job_id"]]


def test_every_promised_error(world: Any) -> None:
    client, app, _, _ = world
    h = _signed_in(client)
    client.post("/api/v1/balance", json={"amount": 30}, headers=h)
    dup = client.post("/api/v1/sign_up", json={"name": "A", "email": "ANN@example.com",
                                               "password": "password-1"})
    assert dup.status_code == 409 and "already registered" in dup.json()["detail"]
    wrong = client.post("/api/v1/sign_in", json={"email": "ann@example.com", "password": "nope-nope"})
    unknown = client.post("/api/v1/sign_in", json={"email": "bob@example.com", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "invalid email or password"
    bad = client.get("/api/v1/balance", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    poor = client.post("/api/v1/predict", json={"model_name": "pricey", "data": CAR}, headers=h)
    assert poor.status_code == 402 and (poor.json()["balance"], poor.json()["price"]) == (30, 40)
    missing = client.post("/api/v1/predict", json={"model_name": "magic", "data": CAR}, headers=h)
    assert missing.status_code == 404 and "available: cheap, pricey" in missing.json()["detail"]
    invalid = client.post("/api/v1/predict", headers=h, json={"model_name": "cheap",
                                                              "data": {**CAR, "horsepower": -1}})
    assert invalid.status_code == 422 and list(invalid.json()["errors"]) == ["horsepower"]
    lower = client.post("/api/v1/balance", json={"new_amount": 5}, headers=h)
    assert lower.status_code == 422 and "below your balance" in lower.json()["detail"]
    assert app.balance(app.authenticate("ann@example.com", "password-1").user_id).balance == 30


def test_another_users_job_does_not_exist_for_them(world: Any) -> None:
    client, _, reads, _ = world
    ann, bob = _signed_in(client), _signed_in(client, "bob@example.com")
    client.post("/api/v1/balance", json={"amount": 10}, headers=ann)
    job = client.post("/api/v1/predict", json={"model_name": "cheap", "data": CAR}, headers=ann).json()
    reads.projected.add(UUID(job["job_id"]))
    for who, status in ((bob, 404), (ann, 200)):
        assert client.get(f"/api/v1/predict/{job['job_id']}", headers=who).status_code == status
    assert client.get("/api/v1/predict/not-a-uuid", headers=ann).status_code == 404


def test_a_job_projected_within_the_bound_is_read_from_its_row_not_from_its_events(
        world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after the POST the row is not there yet: the store says whose job it is, then the
    read waits for the row (read-your-writes) and answers from it. Another user's job is a 404
    at once, without waiting for a row that will never show for them (a wait would tell that
    the id exists)."""
    client, app, reads, _ = world
    ann, bob = _signed_in(client), _signed_in(client, "bob@example.com")
    client.post("/api/v1/balance", json={"amount": 10}, headers=ann)
    job_id = client.post("/api/v1/predict", json={"model_name": "cheap", "data": CAR},
                         headers=ann).json()["job_id"]
    store_reads: list[UUID] = []
    read = app.job
    monkeypatch.setattr(app, "job", lambda jid, user=None: store_reads.append(jid) or read(jid, user))
    reads.projects_while_waiting = True
    for query in ("", "?wait=5"):
        reads.projected.clear()
        answer = client.get(f"/api/v1/predict/{job_id}{query}", headers=ann).json()
        assert (answer["status"], answer["stale"]) == ("queued", False)
    assert store_reads == [UUID(job_id)] * 2 and reads.waited_for == [UUID(job_id)] * 2
    reads.projected.clear()
    reads.projects_while_waiting = False
    for query in ("", "?wait=5"):
        for asked in (job_id, str(uuid4())):  # bob's 404 for ann's job is the unknown id's
            assert client.get(f"/api/v1/predict/{asked}{query}", headers=bob).status_code == 404
    assert reads.waited_for == [UUID(job_id)] * 2  # bob's reads waited for nothing


def test_a_read_behind_the_callers_write_says_so(world: Any) -> None:
    client, app, reads, _ = world
    h = _signed_in(client)
    user = app.authenticate("ann@example.com", "password-1").user_id
    client.post("/api/v1/balance", json={"amount": 10}, headers=h)
    reads.stale_for.add(user)
    assert client.get("/api/v1/balance", headers=h).json()["stale"] is True
    assert client.get("/api/v1/history", headers=h).json()["stale"] is True
    assert app.aggregate_version(wallet_id_for(user)) == 2


def test_a_throttled_sign_in_gets_429_with_retry_after(world: Any) -> None:
    client, _, _, throttle = world
    _signed_in(client)
    throttle.wait = 17
    r = client.post("/api/v1/sign_in", json={"email": "ann@example.com", "password": "password-1"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "17" and "17 seconds" in r.json()["detail"]


def test_an_idempotency_key_answers_the_first_response_and_charges_once(world: Any) -> None:
    client, app, _, _ = world
    h = {**_signed_in(client), "Idempotency-Key": "order-7"}
    client.post("/api/v1/balance", json={"amount": 100}, headers=h)
    first = client.post("/api/v1/predict", json={"model_name": "cheap", "data": CAR}, headers=h).json()
    again = client.post("/api/v1/predict", json={"model_name": "cheap", "data": CAR}, headers=h).json()
    assert first == again and first["balance"] == 90
    other = client.post("/api/v1/predict", json={"model_name": "pricey", "data": CAR}, headers=h)
    assert other.status_code == 422
    assert app.balance(app.authenticate("ann@example.com", "password-1").user_id).balance == 90


def test_long_poll_and_event_stream_parameters_are_checked(world: Any) -> None:
    client, _, reads, _ = world
    h = _signed_in(client)
    client.post("/api/v1/balance", json={"amount": 10}, headers=h)
    job = client.post("/api/v1/predict", json={"model_name": "cheap", "data": CAR}, headers=h).json()
    reads.projected.add(UUID(job["job_id"]))
    too_long = client.get(f"/api/v1/predict/{job['job_id']}?wait=31", headers=h)
    assert too_long.status_code == 422 and "wait" in too_long.json()["detail"]
    started = time.monotonic()
    assert client.get(f"/api/v1/predict/{job['job_id']}?wait=2", headers=h).status_code == 200
    took = time.monotonic() - started
    # a queued job is long-polled for what is left of the 2 s (whatever the machine's load)
    assert 2 - took <= reads.waited <= 2
    bad = client.get("/api/v1/jobs/events", headers={**h, "Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]
    assert client.get("/api/v1/jobs/events").status_code == 401


def test_webhooks_are_registered_listed_and_deleted_and_bad_ones_named(world: Any) -> None:
    client, _, _, _ = world
    h, other = _signed_in(client), _signed_in(client, "bob@example.com")
    assert client.get("/api/v1/webhooks/secret", headers=h).status_code == 404
    made = client.post("/api/v1/webhooks", headers=h, json={
        "url": "https://hooks.example.com/a", "events": ["job.ended", "balance.low"], "balance_below": 20})
    assert made.status_code == 201 and made.json()["secret"] == "whsec_fake"
    for body, field in (({"url": "ftp://x", "events": ["job.ended"]}, "url"),
                        ({"url": "https://h.example.com", "events": ["job.started"]}, "events"),
                        ({"url": "https://h.example.com", "events": ["balance.low"]}, "balance_below"),
                        ({"url": "https://h.example.com", "events": []}, "events")):
        refused = client.post("/api/v1/webhooks", headers=h, json=body)
        assert refused.status_code == 422 and field in refused.json()["detail"], body
    client.post("/api/v1/webhooks", headers=h, json={"url": "https://h.example.com/b",
                                                     "events": ["job.ended"]})
    over = client.post("/api/v1/webhooks", headers=h, json={"url": "https://h.example.com/c",
                                                             "events": ["job.ended"]})
    assert over.status_code == 409
    listed = client.get("/api/v1/webhooks", headers=h).json()["webhooks"]
    assert [w["url"] for w in listed] == ["https://hooks.example.com/a", "https://h.example.com/b"]
    assert "secret" not in listed[0]
    hook = listed[0]["webhook_id"]
    assert client.delete(f"/api/v1/webhooks/{hook}", headers=other).status_code == 404
    assert client.get(f"/api/v1/webhooks/{hook}/deliveries", headers=other).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{hook}", headers=h).status_code == 204
    assert len(client.get("/api/v1/webhooks", headers=h).json()["webhooks"]) == 1


def test_a_batch_is_refused_whole_naming_its_rows_or_charged_whole(world: Any) -> None:
    client, app, _, _ = world
    h = _signed_in(client)
    client.post("/api/v1/balance", json={"amount": 100}, headers=h)
    bad = client.post("/api/v1/predict/batch", headers=h, json={
        "model_name": "cheap", "cars": [CAR, {**CAR, "horsepower": "fast"}, CAR]})
    assert bad.status_code == 422 and "row 1: horsepower" in bad.json()["detail"]
    poor = client.post("/api/v1/predict/batch", headers=h, json={"model_name": "cheap",
                                                                 "cars": [CAR] * 11})
    assert poor.status_code == 402 and "11 cars" in poor.json()["detail"]
    csv = client.post("/api/v1/predict/batch", headers=h, data={"model_name": "cheap"},
                      files={"file": ("f.csv", b"horsepower,brand\n100,toyota\n", "text/csv")})
    assert csv.status_code == 422 and "missing columns" in csv.json()["detail"]
    assert client.get("/api/v1/balance", headers=h).json()["amount"] == 100
    ok = client.post("/api/v1/predict/batch", headers=h, json={"model_name": "cheap",
                                                               "cars": [CAR] * 3})
    assert ok.status_code == 202 and (ok.json()["total_price"], ok.json()["balance"]) == (30, 70)
    missing = client.get(f"/api/v1/predict/batch/{ok.json()['batch_id']}x", headers=h)
    assert missing.status_code == 422 and "batch_id" in missing.json()["detail"]


def test_an_explanation_is_priced_and_refused_where_the_model_cannot_explain(world: Any) -> None:
    client, _, _, _ = world
    h = _signed_in(client)
    client.post("/api/v1/balance", json={"amount": 100}, headers=h)
    no = client.post("/api/v1/predict", headers=h, json={"model_name": "cheap", "data": CAR,
                                                         "explain": True})
    assert no.status_code == 422 and no.json()["detail"].startswith("explain:")
    yes = client.post("/api/v1/predict", headers=h, json={"model_name": "pricey", "data": CAR,
                                                          "explain": True})
    assert (yes.json()["price"], yes.json()["balance"]) == (45, 55)


def test_the_balance_as_of_any_time_is_replayed(world: Any) -> None:
    import time
    from datetime import UTC, datetime

    client, _, _, _ = world
    h = _signed_in(client)
    client.post("/api/v1/balance", json={"amount": 30}, headers=h)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    client.post("/api/v1/balance", json={"amount": 12}, headers=h)
    then = client.get("/api/v1/balance", params={"as_of": between.isoformat()}, headers=h).json()
    assert then["amount"] == 30 and then["as_of"].startswith(between.strftime("%Y-%m-%dT%H:%M"))
    assert client.get("/api/v1/balance", headers=h).json() == {
        "amount": 42, "available": 42, "reserved": 0, "promotional": 0, "stale": False}
    before = client.get("/api/v1/balance", params={"as_of": "2020-01-01T00:00:00Z"}, headers=h)
    assert before.json()["amount"] == 0
    naive = client.get("/api/v1/balance", params={"as_of": "2026-12-01T10:00:00"}, headers=h)
    assert naive.status_code == 422 and "as_of" in naive.json()["detail"]
    junk = client.get("/api/v1/balance", params={"as_of": "yesterday"}, headers=h)
    assert junk.status_code == 422 and "as_of" in junk.json()["detail"]


def test_the_statement_in_json_and_csv(world: Any) -> None:
    import csv
    import io

    client, _, _, _ = world
    h = _signed_in(client)
    client.post("/api/v1/balance", json={"amount": 50}, headers=h)
    client.post("/api/v1/predict", json={"model_name": "cheap", "data": CAR}, headers=h)
    body = client.get("/api/v1/balance/statement", headers=h).json()
    assert (body["opening_balance"], body["closing_balance"], body["closing_reserved"]) == (0, 40, 10)
    assert [(x["kind"], x["amount"], x["credits"], x["model"], x["balance"], x["reserved"])
            for x in body["lines"]] == [("deposit", 50, 50, "", 50, 0),
                                        ("reservation", -10, 10, "cheap", 40, 10)]
    out = client.get("/api/v1/balance/statement", params={"format": "csv"}, headers=h)
    assert out.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(out.text)))
    # `key` came last, after the columns statements had before keys existed
    assert rows[0] == ["time", "kind", "amount", "credits", "job_id", "model", "balance", "reserved",
                       "detail", "key"]
    assert rows[1][1] == "opening" and rows[-1][1:] == ["closing", "", "", "", "", "40", "10", "", ""]
    assert [r[-1] for r in rows[2:-1]] == ["", ""]  # signed in: no key spent them
    bad = client.get("/api/v1/balance/statement", params={"from": "2026-12-02T00:00:00Z",
                                                          "to": "2026-12-01T00:00:00Z"}, headers=h)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("from:")
    wrong = client.get("/api/v1/balance/statement", params={"format": "xml"}, headers=h)
    assert wrong.status_code == 422 and "format" in wrong.json()["detail"]


def test_deleting_me_needs_the_password_and_ends_the_account(world: Any) -> None:
    client, app, _, _ = world
    h = _signed_in(client)
    user = UUID(client.get("/api/v1/me", headers=h).json()["user_id"])
    assert client.post("/api/v1/webhooks", json={"url": "https://example.com/h", "events": ["job.ended"]},
                       headers=h).status_code in (200, 201)
    wrong = client.request("DELETE", "/api/v1/me", json={"password": "not-it"}, headers=h)
    assert wrong.status_code == 403 and wrong.json()["detail"].startswith("password:")
    assert client.get("/api/v1/me", headers=h).status_code == 200  # nothing was erased
    missing = client.request("DELETE", "/api/v1/me", json={}, headers=h)
    assert missing.status_code == 422 and "password" in missing.json()["detail"]
    done = client.request("DELETE", "/api/v1/me", json={"password": "password-1"}, headers=h)
    assert done.status_code == 200 and done.json()["erased"] is True and "books" in done.json()["kept"]
    # its token no longer works, it cannot sign in, and the email registers again
    again = client.get("/api/v1/balance", headers=h)
    assert again.status_code == 401 and "erased" in again.json()["detail"]
    assert client.post("/api/v1/sign_in", json={"email": "ann@example.com",
                                                "password": "password-1"}).status_code == 401
    h2 = _signed_in(client)
    assert UUID(client.get("/api/v1/me", headers=h2).json()["user_id"]) != user
    assert client.get("/api/v1/webhooks", headers=h2).json()["webhooks"] == []
    assert app.personal.key(user) is None


def test_a_bug_is_a_500_with_the_request_id_and_an_outage_a_503_with_retry_after(
        world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    client, app, _, _ = world
    h = _signed_in(client)

    def bug(*_: Any, **__: Any) -> None:
        raise KeyError("a bug")

    def outage(*_: Any, **__: Any) -> None:
        raise psycopg.OperationalError("the database is restarting")

    quiet = TestClient(client.app, raise_server_exceptions=False)
    monkeypatch.setattr(app, "deposit", bug)
    r = quiet.post("/api/v1/balance", json={"amount": 5}, headers={**h, "X-Request-Id": "req-42"})
    assert r.status_code == 500 and "Retry-After" not in r.headers
    assert r.json()["request_id"] == "req-42" and "req-42" in r.json()["detail"]
    monkeypatch.setattr(app, "deposit", outage)
    r = quiet.post("/api/v1/balance", json={"amount": 5}, headers=h)
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/balance", {"amount": True}, "amount"),
    ("/api/v1/balance", {"amount": "10"}, "amount"),
    ("/api/v1/balance", {"new_amount": 10.0}, "new_amount"),
    ("/api/v1/predict", {"model_name": "cheap", "data": CAR, "deadline_seconds": "60"},
     "deadline_seconds"),
    ("/api/v1/webhooks", {"url": "https://example.com/h", "events": ["balance.low"],
                          "balance_below": True}, "balance_below"),
])
def test_credits_and_counts_are_strict_integers(world: Any, path: str, body: dict[str, Any],
                                                field: str) -> None:
    client, app, _, _ = world
    h = _signed_in(client)
    r = client.post(path, json=body, headers=h)
    assert r.status_code == 422 and field in r.json()["detail"]
    assert app.balance(app.authenticate("ann@example.com", "password-1").user_id).balance == 0


def test_a_failed_request_gives_its_idempotency_key_back(world: Any) -> None:
    client, _, _, _ = world
    h = {**_signed_in(client), "Idempotency-Key": "k-402"}
    r = client.post("/api/v1/predict", json={"model_name": "cheap", "data": CAR}, headers=h)
    assert r.status_code == 402
    keys = client.app.state.container.idempotency
    assert keys.released[1:] == ("predict", "k-402")


def test_metrics_are_behind_the_token_when_one_is_set_and_not_served_in_production(
        world: Any) -> None:
    client, _, _, _ = world
    settings = client.app.state.container.settings
    assert client.get("/metrics").status_code == 200  # embedded, no token: open
    client.app.state.container.settings = settings.model_copy(update={"metrics_token": "t" * 40})
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {'t' * 40}"})
    assert ok.status_code == 200 and "carprice_http_request_duration_seconds" in ok.text
    client.app.state.container.settings = settings.model_copy(update={"mode": "production"})
    assert client.get("/metrics").status_code == 404


def test_the_dashboards_browser_address_is_believed_only_with_its_proxy_token() -> None:
    from starlette.requests import Request

    from api.routes.auth import client_address

    def request(headers: dict[str, str]) -> Request:
        return Request({"type": "http", "client": ("127.0.0.1", 5000), "headers": [
            (k.lower().encode(), v.encode()) for k, v in headers.items()]})

    token = "p" * 40
    vouched = {"X-Carprice-Proxy": token, "X-Forwarded-For": "203.0.113.7"}
    assert client_address(request(vouched), token) == "203.0.113.7"
    assert client_address(request({"X-Forwarded-For": "203.0.113.7"}), token) == "127.0.0.1"
    assert client_address(request({**vouched, "X-Carprice-Proxy": "guess"}), token) == "127.0.0.1"
    assert client_address(request(vouched), None) == "127.0.0.1"  # no token configured: the peer
    assert client_address(request({**vouched, "X-Forwarded-For": "not-an-ip"}), token) == "127.0.0.1"
