"""`carprice bench chaos`: a fault soak anyone can run.

K clients submit jobs through the HTTP API for N seconds while, in turn, an inference consumer,
the projector, the relay, an API worker and the broker are SIGKILLed (a supervisor restarts
each after a second, as `carprice up` does), PostgreSQL is restarted, and the projector is
paused for 8 s; poison requests arrive all along. Then it waits for every job to end (the
reaper expires what nothing else will) and checks the money.

Besides the money it measures how the pipeline heals: each job's latency from its request to
its end showing in the read side; for each fault, the slowest job accepted between it and the
next fault, less the median before the first fault (the time to heal); and whether every job
showed as ended within WEDGE_SECONDS of the last fault (a run where it did not is a wedge).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import psycopg
import requests

from bench.common import MODELS, write_side
from bench.stack import BenchStack, wait_idle
from commands.audit import replay_ledger
from infra.settings import Settings
from model_registry.features import load_dataset

if TYPE_CHECKING:
    from commands.application import CarpriceApp

POISON: list[dict[str, Any]] = [
    {"model": "giulia\u0000"}, {"brand": "\ud800"}, {"horsepower": 10**400}, {"carbody": "a\u0007"},
]
WEDGE_SECONDS = 60.0


class _Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.connection_errors = 0
        self.jobs: list[tuple[UUID, UUID, int]] = []  # (user, job, price)
        self.poison: Counter[int] = Counter()
        self.unexplained_5xx = 0  # a 5xx that is not a 503 with Retry-After (a bug, not an outage)

    def status(self, code: int, headers: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self.statuses[code] += 1
            if code >= 500 and not (code == 503 and headers is not None and "Retry-After" in headers):
                self.unexplained_5xx += 1


def _signed_in(api: str, tally: _Tally, run: str, i: int) -> tuple[requests.Session, UUID]:
    s = requests.Session()
    email, password = f"chaos-{run}-{i}@example.com", "chaos-password"
    while True:
        try:
            s.post(f"{api}/sign_up", json={"name": "Chaos", "email": email, "password": password}, timeout=30)
            r = s.post(f"{api}/sign_in", json={"email": email, "password": password}, timeout=30)
            if r.ok:
                break
        except requests.RequestException:
            time.sleep(0.5)
    s.headers["Authorization"] = f"Bearer {r.json()['token']}"
    me = s.get(f"{api}/me", timeout=30).json()
    while not s.post(f"{api}/balance", json={"amount": 1_000_000}, timeout=30,
                     headers={"Idempotency-Key": f"chaos-{run}-{i}"}).ok:
        time.sleep(0.5)
    return s, UUID(me["user_id"])


def _client(api: str, car: dict[str, Any], tally: _Tally, stop: threading.Event, run: str, i: int) -> None:
    s, user = _signed_in(api, tally, run, i)
    rng = random.Random(i)  # noqa: S311 - a workload, not a secret
    n, model = 0, rng.choice(MODELS)
    while not stop.is_set():
        try:
            # an Idempotency-Key per job, sent again until an answer arrives: a request whose
            # answer was lost (its API worker SIGKILLed after the commit) gets that answer on
            # the retry, so the tally knows every job it was charged for
            r = s.post(f"{api}/predict", json={"model_name": model, "data": car}, timeout=30,
                       headers={"Idempotency-Key": f"chaos-{run}-{i}-{n}"})
            tally.status(r.status_code, r.headers)
            if r.status_code in (409, 503):
                # 409: the first try is still in flight; 503: unavailable, and the request
                # may have committed before its answer failed. Ask again with the same key:
                # the retry gets the job the first try committed, if it did
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            n, model = n + 1, rng.choice(MODELS)
            if r.ok:
                body = r.json()
                with tally.lock:
                    tally.jobs.append((user, UUID(body["job_id"]), int(body["price"])))
            b = s.get(f"{api}/balance", timeout=30)
            tally.status(b.status_code, b.headers)
        except requests.RequestException:
            with tally.lock:
                tally.connection_errors += 1  # in flight on a killed API worker, or it restarting
            time.sleep(0.2)


def _poison(api: str, car: dict[str, Any], tally: _Tally, stop: threading.Event, run: str) -> None:
    s, _ = _signed_in(api, tally, run, 10_000)
    i = 0
    while not stop.wait(0.3):
        try:
            r = s.post(f"{api}/predict", json={"model_name": "linear_regression",
                                               "data": {**car, **POISON[i % len(POISON)]}}, timeout=30)
            with tally.lock:
                tally.poison[r.status_code] += 1
        except requests.RequestException:
            pass
        i += 1


def bench_chaos(settings: Settings, db: str, kafka: str, clients: int, seconds: float,
                deadline: int = 60, broker: Callable[[], None] | None = None,
                database: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the soak; `broker` kills and restarts the broker, `database` restarts PostgreSQL
    (None: left alone)."""
    stack = BenchStack(settings, db, kafka, supervise=True,
                       extra_env={"JOB_DEADLINE_SECONDS": str(deadline), "RELAY_CHECK_SECONDS": "2",
                                  "INFERENCE_BATCH_MS": str(settings.inference_batch_ms)})
    app = write_side(settings, db)
    tally = _Tally()
    stop = threading.Event()
    actions: list[str] = []
    run = uuid4().hex[:6]
    x, _ = load_dataset(settings.data_dir)
    car = {k: (v.item() if hasattr(v, "item") else v) for k, v in x.iloc[0].to_dict().items()}
    try:
        stack.up()
        with psycopg.connect(db, autocommit=True) as conn:
            wait_idle(conn, app.head_position, kafka, stack.theirs)
        threads = [threading.Thread(target=_client, args=(stack.api, car, tally, stop, run, i))
                   for i in range(clients)]
        threads.append(threading.Thread(target=_poison, args=(stack.api, car, tally, stop, run)))
        for t in threads:
            t.start()
        started = time.monotonic()
        faults: list[tuple[str, Callable[[], None]]] = [
            ("SIGKILL inference-1", lambda: _restart(stack, "inference-1")),
            ("SIGKILL projector", lambda: _restart(stack, "projector")),
            ("SIGKILL relay", lambda: _restart(stack, "relay")),
            ("SIGKILL an API worker", lambda: (stack.kill_api_worker(), None)[1]),
            ("pause projector 8 s", lambda: _pause(stack, "projector", 8)),
        ]
        if broker is not None:
            faults.insert(4, ("SIGKILL the broker, restart it", broker))
        if database is not None:
            faults.insert(4, ("restart PostgreSQL", database))
        fault_times: list[tuple[str, float]] = []  # (fault, wall-clock time it began)
        for n, (what, do) in enumerate(faults, start=1):
            at = started + seconds * n / (len(faults) + 1)
            stop.wait(max(0.0, at - time.monotonic()))
            actions.append(f"{time.monotonic() - started:5.1f} s  {what}")
            fault_times.append((what, time.time()))
            do()
        last_fault = time.time()
        stop.wait(max(0.0, started + seconds - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(60)
        submitted = time.monotonic() - started
        app.close()  # its pooled sessions may have died with a database restart
        app = write_side(settings, db)
        figures = _settle(app, db, stack, tally, actions, clients, submitted, deadline)
        return {**figures, **_healing(db, [j for _, j, _ in tally.jobs], fault_times, last_fault,
                                      started_wall=time.time() - (time.monotonic() - started))}
    finally:
        stop.set()
        stack.stop()
        app.close()


def _restart(stack: BenchStack, name: str) -> None:
    stack.kill(name)  # the stack's supervisor starts it again after a second


def _pause(stack: BenchStack, name: str, seconds: float) -> None:
    stack.pause(name)
    time.sleep(seconds)
    stack.resume(name)


def kill_and_restart_broker(settings: Settings) -> Callable[[], None]:
    """The embedded broker of this home, SIGKILLed and started again on its port."""
    from devstack import services

    def act() -> None:
        record = services.State(settings.home).load()["kafka"]
        if record.pid:
            os.kill(record.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while services.pid_alive(record.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        time.sleep(1.0)
        services.up(settings)

    return act


def restart_database(settings: Settings) -> Callable[[], None]:
    """The embedded PostgreSQL of this home, stopped (fast: every session cut) and started again
    on its port, as a crash-restart or a failover would look to the processes."""
    from devstack import embedded_pg, services

    def act() -> None:
        embedded_pg.stop(settings.home)
        time.sleep(1.0)
        services.up(settings)

    return act


def _latencies(db: str, jobs: list[UUID]) -> dict[UUID, tuple[float, float]]:
    """job -> (request time, seconds until its end showed in the read side), for ended jobs."""
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT h.job_id, extract(epoch FROM h.created_at), extract(epoch FROM min(u.recorded_at) "
            "- h.created_at) FROM prediction_history h JOIN job_updates u ON u.job_id = h.job_id "
            "AND u.status IN ('finished', 'failed') WHERE h.job_id = ANY(%s) "
            "GROUP BY h.job_id, h.created_at", (jobs,)).fetchall()
    return {UUID(str(j)): (float(at), float(took)) for j, at, took in rows}


def _healing(db: str, jobs: list[UUID], fault_times: list[tuple[str, float]], last_fault: float,
             started_wall: float) -> dict[str, Any]:
    """Waits until every job shows as ended, or WEDGE_SECONDS after the last fault; then
    heal_figures() of what it saw."""
    deadline = last_fault + WEDGE_SECONDS
    while True:
        seen = _latencies(db, jobs)
        if len(seen) == len(jobs) or time.time() > deadline:
            break
        time.sleep(0.5)
    return {**heal_figures(seen, len(jobs), fault_times, last_fault), "run_started": started_wall}


def heal_figures(seen: dict[UUID, tuple[float, float]], jobs: int,
                 fault_times: list[tuple[str, float]], last_fault: float) -> dict[str, Any]:
    """From each ended job's (request time, latency): per fault, the slowest job requested
    between it and the next fault, less the median before the first fault (its time to heal);
    the slowest job; how long after the last fault the last job showed as ended (None while
    some never did: a wedge)."""
    converged = (max((at + took for at, took in seen.values()), default=last_fault) - last_fault
                 if len(seen) == jobs else None)
    first = fault_times[0][1] if fault_times else float("inf")
    calm = sorted(took for at, took in seen.values() if at < first)
    base = calm[len(calm) // 2] if calm else 0.0
    heal: dict[str, float] = {}
    bounds = [t for _, t in fault_times] + [float("inf")]
    for (what, begin), end in zip(fault_times, bounds[1:], strict=False):
        window = [took for at, took in seen.values() if begin <= at < end]
        heal[what] = round(max(0.0, max(window, default=base) - base), 2)
    slowest = max((took for _, took in seen.values()), default=0.0)
    return {"median_latency_s": round(base, 3), "slowest_job_s": round(slowest, 2),
            "heal_s": heal, "converged_after_last_fault_s": None if converged is None
            else round(max(0.0, converged), 1), "wedged": converged is None or converged > WEDGE_SECONDS,
            "shown_ended": len(seen)}


def _settle(app: CarpriceApp, db: str, stack: BenchStack, tally: _Tally, actions: list[str], clients: int,
            submitted: float, deadline: int) -> dict[str, Any]:
    jobs = list(tally.jobs)
    until = time.monotonic() + deadline + 180
    open_jobs = [j for _, j, _ in jobs]
    while open_jobs and time.monotonic() < until:
        open_jobs = [j for j in open_jobs if not app.job(j).ended]
        time.sleep(1)
    status = Counter(app.job(j).status for _, j, _ in jobs)
    users = sorted({u for u, _, _ in jobs})
    charged_twice = refunded = failed_unrefunded = mismatches = 0
    expected: dict[UUID, int] = {}
    for user in users:
        ledger = replay_ledger(app, user)
        charges = Counter(e.job_id for e in ledger.entries if e.type in ("Charged", "Reserved"))
        refunds = Counter(e.job_id for e in ledger.entries if e.type in ("Refunded", "Released"))
        charged_twice += sum(1 for n in charges.values() if n > 1) + sum(1 for n in refunds.values() if n > 1)
        mine = [(j, p) for u, j, p in jobs if u == user]
        refunded += sum(1 for j, _ in mine if refunds[j])
        failed_unrefunded += sum(1 for j, _ in mine if app.job(j).status == "failed" and not refunds[j])
        expected[user] = 1_000_000 - sum(p for j, p in mine if app.job(j).status != "failed")
        if not (ledger.balance == app.balance(user).balance == expected[user]) or ledger.reserved:
            mismatches += 1
    projected = _projected(db, users, expected)
    mismatches += sum(1 for u in users if projected.get(u) != expected[u])
    return {"benchmark": "chaos", "clients": clients, "seconds": round(submitted, 1),
            "job_deadline_s": deadline, "faults": actions,
            "jobs_accepted": len(jobs), "finished": status.get("finished", 0),
            "failed_and_refunded": refunded, "failed_not_refunded": failed_unrefunded,
            "still_open": len(open_jobs), "charged_twice": charged_twice,
            "audit_mismatches": mismatches, "http_5xx": sum(n for s, n in tally.statuses.items() if s >= 500),
            "http_5xx_unexplained": tally.unexplained_5xx,
            "expired": sum(1 for _, j, _ in jobs if app.job(j).code == "expired"),
            "http_statuses": dict(tally.statuses), "connection_errors": tally.connection_errors,
            "poison_statuses": dict(tally.poison),
            "kills": {n: c.kills for n, c in stack.children.items() if c.kills}, "logs": str(stack.logs)}


def _projected(db: str, users: list[UUID], expected: dict[UUID, int], wait: float = 120) -> dict[UUID, int]:
    """The balances projection of these users once it agrees (or after `wait` seconds)."""
    until = time.monotonic() + wait
    with psycopg.connect(db, autocommit=True) as conn:
        while True:
            shown: dict[UUID, int] = dict(conn.execute("SELECT user_id, balance FROM balances "
                                                       "WHERE user_id = ANY(%s)",
                                      (users,)).fetchall())
            if all(shown.get(u) == expected[u] for u in users) or time.monotonic() > until:
                return shown
            time.sleep(1)
