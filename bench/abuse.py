"""`carprice bench abuse`: the security probe's cases, sent to a running stack as an ordinary
signed-up account would send them.

Each case prints what the API answered, what it should answer, and what the API process went
through meanwhile: its worst `/healthz` latency (a frozen event loop shows there) and its RSS
growth (the API's processes on the port, workers included). Nothing here needs the database
or the broker directly: it is what anyone with an account can do.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil
import requests

from api.schemas import EXAMPLE_CAR as CAR
from model_registry.features import FEATURES

MIB = 1024 * 1024
PASSWORD = "abuse-password-1"  # noqa: S105 - the probe's own throwaway accounts


@dataclass
class Case:
    """One probe: what was sent, what came back, what should have."""

    name: str
    answer: str
    expected: str
    closed: bool
    healthz_worst_ms: float = 0.0
    rss_growth_mib: float = 0.0


class Watch:
    """Polls /healthz every 20 ms and samples the API's RSS while a case runs."""

    def __init__(self, base: str, pids: list[int]) -> None:
        self.base, self.pids = base, pids
        self.worst_ms, self.peak, self._stop = 0.0, 0, threading.Event()
        self.start_rss = self._rss()

    def _rss(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            t = time.perf_counter()
            try:
                session.get(f"{self.base}/healthz", timeout=30)
            except requests.RequestException:
                pass
            self.worst_ms = max(self.worst_ms, (time.perf_counter() - t) * 1000)
            self.peak = max(self.peak, self._rss())
            self._stop.wait(0.02)

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def api_pids(port: int) -> list[int]:
    """The processes listening on the API's port and their children (uvicorn workers)."""
    found: set[int] = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            proc = psutil.Process(conn.pid)
            found |= {proc.pid, *(c.pid for c in proc.children(recursive=True))}
    return sorted(found)


class Probe:
    """An ordinary account (and a second one) on the API at `base`."""

    def __init__(self, base: str, port: int) -> None:
        self.base, self.api = base, f"{base}/api/v1"
        self.pids = api_pids(port)
        self.run = uuid.uuid4().hex[:8]
        self.me, self.me_id = self._account("me")
        self.other, _ = self._account("other")

    def _account(self, who: str) -> tuple[requests.Session, str]:
        s = requests.Session()
        email, password = f"abuse-{who}-{self.run}@example.com", PASSWORD
        s.post(f"{self.api}/sign_up", json={"name": "Probe", "email": email, "password": password},
               timeout=30)
        token = s.post(f"{self.api}/sign_in", json={"email": email, "password": password},
                       timeout=30).json()["access_token"]
        s.headers["Authorization"] = f"Bearer {token}"
        s.post(f"{self.api}/balance", json={"amount": 1000}, timeout=30)
        return s, str(s.get(f"{self.api}/me", timeout=30).json()["user_id"])

    def case(self, name: str, expected: str, act: Callable[[], tuple[str, bool]]) -> Case:
        """Run one case under the watch."""
        with Watch(self.base, self.pids) as watch:
            try:
                answer, closed = act()
            except Exception as exc:  # noqa: BLE001 - a probe reports, it does not stop
                answer, closed = f"probe failed: {type(exc).__name__}: {exc}"[:120], False
        return Case(name, answer, expected, closed, round(watch.worst_ms, 1),
                    round((watch.peak - watch.start_rss) / MIB, 1))

    # ------------------------------------------------------------------ the cases

    def csv_bomb(self) -> tuple[str, bool]:
        body = ",".join(FEATURES).encode() + b"\n" + b",,\n" * (16 * MIB // 3 - 100)
        r = self.me.post(f"{self.api}/predict/batch", params={"model_name": "linear_regression"},
                         data=body, headers={"Content-Type": "text/csv"}, timeout=120)
        return f"{r.status_code} {r.json().get('detail', '')[:60]}", r.status_code == 422

    def json_bomb(self) -> tuple[str, bool]:
        body = b'{"model_name":"linear_regression","cars":[' + b"{}," * (16 * MIB // 3 - 100) + b"{}]}"
        r = self.me.post(f"{self.api}/predict/batch", data=body,
                         headers={"Content-Type": "application/json"}, timeout=120)
        return f"{r.status_code} {r.json().get('detail', '')[:60]}", r.status_code == 422

    def private_webhooks(self) -> tuple[str, bool]:
        targets = ["http://127.0.0.1:22/", "http://169.254.169.254/latest/meta-data/",
                   "http://[::1]:5432/", "http://2130706433:8000/", "http://[::ffff:127.0.0.1]/",
                   "http://localhost:8000/"]
        codes = []
        for url in targets:
            r = self.me.post(f"{self.api}/webhooks", json={"url": url, "events": ["job.ended"]},
                             timeout=30)
            codes.append(r.status_code)
            if r.status_code == 201:
                self.me.delete(f"{self.api}/webhooks/{r.json()['webhook_id']}", timeout=30)
        # 2130706433 is a name the text check cannot judge: refused at delivery (never posted)
        refused = sum(1 for c in codes if c == 422)
        return f"{refused} of {len(codes)} refused at registration: {codes}", refused >= len(codes) - 1

    def spoofed_forwarded_for(self) -> tuple[str, bool]:
        victim = f"abuse-me-{self.run}@example.com"
        codes = [requests.post(f"{self.api}/sign_in", json={"email": victim, "password": f"guess-{i}"},
                               headers={"X-Forwarded-For": f"10.{i}.{i}.{i}"}, timeout=30).status_code
                 for i in range(7)]
        return f"7 wrong passwords, each with a new X-Forwarded-For: {codes}", 429 in codes

    def stream_after_erasure(self) -> tuple[str, bool]:
        s, _ = self._account("erased")
        got: list[str] = []

        def listen() -> None:
            try:
                with s.get(f"{self.api}/jobs/events", stream=True, timeout=30) as r:
                    for line in r.iter_lines(decode_unicode=True):
                        got.append(str(line))
            except requests.RequestException as exc:
                got.append(f"error {type(exc).__name__}")

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        time.sleep(0.5)
        erased = time.monotonic()
        s.delete(f"{self.api}/me", json={"password": PASSWORD}, timeout=30)
        thread.join(20)
        took = time.monotonic() - erased
        ended = not thread.is_alive()
        return (f"stream {'ended' if ended else 'still open'} {took:.1f} s after DELETE /me",
                ended and took < 5)

    def formula_in_results(self) -> tuple[str, bool]:
        car = {**CAR, "model": '=HYPERLINK("http://evil.example","x")'}
        r = self.me.post(f"{self.api}/predict/batch", json={"model_name": "linear_regression",
                                                           "cars": [car]}, timeout=60)
        if r.status_code != 202:
            return f"batch refused: {r.status_code} {r.text[:60]}", r.status_code == 422
        batch = r.json()["batch_id"]
        text = self.me.get(f"{self.api}/predict/batch/{batch}/results.csv", timeout=60).text
        raw = "=HYPERLINK" in text and "'=HYPERLINK" not in text
        return ("the cell is written as '=HYPERLINK…" if not raw else "the formula is echoed raw"), not raw

    def timing_of_404(self) -> tuple[str, bool]:
        r = self.other.post(f"{self.api}/predict", json={"model_name": "linear_regression",
                                                         "data": CAR}, timeout=30)
        theirs = r.json().get("job_id") if r.ok else None

        def timed(job: str) -> float:
            t = time.perf_counter()
            self.me.get(f"{self.api}/predict/{job}", timeout=30)
            return (time.perf_counter() - t) * 1000
        random_ms = statistics.median(timed(str(uuid.uuid4())) for _ in range(15))
        if theirs is None:
            return f"no job of the other account to try (random id {random_ms:.1f} ms)", False
        theirs_ms = statistics.median(timed(theirs) for _ in range(15))
        return (f"median 404: another's job {theirs_ms:.1f} ms, random id {random_ms:.1f} ms",
                theirs_ms < random_ms + 50)

    def lax_integers(self) -> tuple[str, bool]:
        codes = [self.me.post(f"{self.api}/balance", json={"amount": value}, timeout=30).status_code
                 for value in (True, "10", 10.0)]
        return f"amount true / \"10\" / 10.0: {codes}", codes == [422, 422, 422]

    def idempotency_race(self) -> tuple[str, bool]:
        key = f"race-{uuid.uuid4().hex}"

        def send(amount: int) -> tuple[int, str]:
            r = self.me.post(f"{self.api}/balance", json={"amount": amount},
                             headers={"Idempotency-Key": key}, timeout=30)
            return r.status_code, r.text

        before = self.me.get(f"{self.api}/balance", timeout=30).json()["amount"]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, [1, 2] * 4))
        codes = sorted(code for code, _ in answers)
        # every 200 is the first request's answer (in flight: 409; another body: 422), and the
        # deposit was made once
        firsts = {text for code, text in answers if code == 200}
        after = self.me.get(f"{self.api}/balance", timeout=30).json()["amount"]
        ok = set(codes) <= {200, 409, 422} and len(firsts) == 1 and after - before in (1, 2)
        return f"8 concurrent, one key, two bodies: {codes}; deposited once: {after - before}", ok

    def metrics(self) -> tuple[str, bool]:
        r = requests.get(f"{self.base}/metrics", timeout=30)
        return (f"{r.status_code} without a token (open in the embedded mode; production needs "
                "METRICS_TOKEN)", r.status_code in (200, 401, 404))


def run(base: str, port: int) -> list[Case]:
    """Every case, in the probe's order."""
    probe = Probe(base, port)
    return [
        probe.case("16 MiB CSV of empty rows", "422 at the row cap; loop free", probe.csv_bomb),
        probe.case("16 MiB JSON list of {}", "422 at the row cap; loop free", probe.json_bomb),
        probe.case("webhooks to private targets", "422 (or never posted)", probe.private_webhooks),
        probe.case("X-Forwarded-For per try", "429 all the same", probe.spoofed_forwarded_for),
        probe.case("event stream after erasure", "ends at once", probe.stream_after_erasure),
        probe.case("formula in results.csv", "neutralised", probe.formula_in_results),
        probe.case("404 timing", "same for theirs and unknown", probe.timing_of_404),
        probe.case("credits true / \"10\"", "422", probe.lax_integers),
        probe.case("Idempotency-Key race", "first answer again, 409 in flight, 422 other body; "
                   "deposited once", probe.idempotency_race),
        probe.case("/metrics", "token in production", probe.metrics),
    ]


def as_rows(cases: list[Case]) -> list[dict[str, Any]]:
    """The cases as JSON-ready rows."""
    return [c.__dict__ for c in cases]
