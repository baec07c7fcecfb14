"""`carprice bench api`: the SEED_API flow from N concurrent HTTP clients.

Each client signs up, tops up, then submits jobs (the three models in turn) and follows each
until it has ended, in one of two ways:

- poll: GET /predict/{id} every `poll_ms`, as old clients do;
- long-poll: GET /predict/{id}?wait=30, answered the moment the job ends.

Latency is from POST /predict to the answer that shows the job ended. The load generator is
asyncio + aiohttp in this process, so it costs the machine little (its CPU is reported).

With `profile`, CPU time is read from /proc for every process around the measured window
(the sign-ups before it are not counted) and divided by the jobs finished: the cost model.
The API then runs as two processes, one for submits and one for reads, so that the two are
told apart. `runs` repeats the load on the same stack and reads every process's RSS after
each run (memory growth shows as a rising column).

Then (unless `baseline` is off) the same clients drive the same models behind a bare endpoint
(bench.baseline) for as long, and carprice's jobs/s and CPU per job are given as a share and a
multiple of it. With `py_spy`, each process's CPU per job is split into the cost model's steps
(bench.spy).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import psycopg

from bench.baseline import run_baseline
from bench.common import MODELS, percentiles, sample_car, write_side
from bench.cpu import Reading, cores, service_pids
from bench.spy import Recorders, ms_per_job, steps
from bench.spy import py_spy as find_py_spy
from bench.stack import BenchStack, wait_idle
from commands.relay import PUBLISHED_CHANNEL
from infra.settings import Settings

ENDED = ("finished", "failed")


class Hops:
    """How many round trips the stack made in a run: the relay's batches (it NOTIFYs after
    each; each is one produce, and a fetch for every consumer it wakes) and PostgreSQL's
    transactions (a statement outside a transaction counts as one). Per job, with the floors
    of `carprice bench floors`, they give each step's floor."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.batches = 0
        self.stopping = threading.Event()
        self.conn = psycopg.connect(db, autocommit=True)
        self.conn.execute(f"LISTEN {PUBLISHED_CHANNEL}")
        self.transactions = self.count_transactions()
        self.thread = threading.Thread(target=self._count, daemon=True)
        self.thread.start()

    def count_transactions(self) -> int:
        with psycopg.connect(self.db, autocommit=True) as conn:
            row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                               "WHERE datname = current_database()").fetchone()
        return int(row[0]) if row else 0

    def _count(self) -> None:
        while not self.stopping.is_set():
            self.batches += sum(1 for _ in self.conn.notifies(timeout=0.2))

    def per_job(self, jobs: int) -> dict[str, float]:
        """Stop counting; relay batches and PostgreSQL transactions per job."""
        self.stopping.set()
        self.thread.join()
        self.conn.close()
        transactions = self.count_transactions() - self.transactions - 1  # less this reading's own
        return {"relay_batches": round(self.batches / jobs, 2),
                "postgres_transactions": round(transactions / jobs, 2)}


@dataclass
class Load:
    """What the clients saw in one run."""

    latencies: list[float] = field(default_factory=list)
    submits: list[float] = field(default_factory=list)
    polls: int = 0
    errors: list[str] = field(default_factory=list)


async def _client(session: aiohttp.ClientSession, submit: str, read: str, token: str,
                  car: dict[str, Any], stop: float, mode: str, poll_s: float, load: Load,
                  offset: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    n = offset
    while time.monotonic() < stop:
        model = MODELS[n % len(MODELS)]
        n += 1
        t0 = time.perf_counter()
        async with session.post(f"{submit}/predict", json={"model_name": model, "data": car},
                                headers=headers) as r:
            body = await r.json()
            if r.status != 200:
                load.errors.append(f"POST /predict {r.status} {str(body)[:100]}")
                await asyncio.sleep(0.1)
                continue
        load.submits.append((time.perf_counter() - t0) * 1000)
        url = f"{read}/predict/{body['job_id']}" + ("?wait=30" if mode == "long-poll" else "")
        while True:
            if mode == "poll":
                await asyncio.sleep(poll_s)
            async with session.get(url, headers=headers) as r:
                load.polls += 1
                job = await r.json()
                if r.status != 200:
                    load.errors.append(f"GET /predict {r.status} {str(job)[:100]}")
                    break
            if job.get("status") in ENDED:
                load.latencies.append((time.perf_counter() - t0) * 1000)
                break
            if time.perf_counter() - t0 > 60:
                load.errors.append("a job did not end within 60 s")
                break


async def _sign_up(session: aiohttp.ClientSession, base: str, i: int, run: str) -> str:
    email = f"bench-{run}-{i}@example.com"
    for path, body in (("sign_up", {"name": "Bench", "email": email, "password": "bench-pass-1"}),
                       ("sign_in", {"email": email, "password": "bench-pass-1"})):
        async with session.post(f"{base}/{path}", json=body) as r:
            answer = await r.json()
            if r.status != 200:
                raise RuntimeError(f"{path}: {r.status} {answer}")
    token = str(answer["token"])
    async with session.post(f"{base}/balance", json={"amount": 1_000_000},  # the most one deposit may be
                            headers={"Authorization": f"Bearer {token}"}) as r:
        if r.status != 200:
            raise RuntimeError(f"deposit: {r.status} {await r.text()}")
    return token


async def _load(submit: str, read: str, tokens: list[str], car: dict[str, Any], seconds: float,
                mode: str, poll_s: float) -> Load:
    import aiohttp

    load = Load()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=90)) as session:
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_client(session, submit, read, t, car, stop, mode, poll_s, load, i)
                               for i, t in enumerate(tokens)))
    return load


async def _tokens(base: str, clients: int) -> list[str]:
    import aiohttp

    run = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> str:
            async with sem:
                return await _sign_up(session, base, i, run)
        return list(await asyncio.gather(*(one(i) for i in range(clients))))


def _rss_mib(pids: dict[str, list[int]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, group in pids.items():
        total = 0
        for pid in group:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                continue
        out[name] = round(total / 2**20, 1)
    return out


def _stack_pids(stack: BenchStack, home: Path) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for name, pids in {**stack.pids(), **service_pids(home)}.items():
        groups.setdefault(_group(name), []).extend(pids)
    groups["load generator"] = [os.getpid()]
    return groups


def _group(name: str) -> str:
    """The group a stack process is reported in: the inference consumers together."""
    return "inference" if name.startswith("inference-") else name


def _steps(files: dict[str, Path], spent: dict[str, float], jobs: int) -> dict[str, dict[str, float]]:
    """Each process's CPU ms per job shared among the cost model's steps by its py-spy samples
    (the inference consumers' samples together, as their CPU is)."""
    project = Path(__file__).resolve().parents[1]
    samples: dict[str, Counter[str]] = {}
    for name, path in files.items():
        samples.setdefault(_group(name), Counter()).update(steps(path.read_text(), project))
    return {group: ms_per_job(found, 1000 * spent.get(group, 0.0) / jobs)
            for group, found in samples.items()}


def bench_api(settings: Settings, db: str, kafka: str, clients: int, seconds: float,
              workers: int = 2, mode: str = "poll", poll_ms: float = 50.0, profile: bool = False,
              runs: int = 1, inference: int = 2, baseline: bool = True,
              py_spy: Path | None = None) -> dict[str, Any]:
    """Jobs/s and POST -> ended latency through the API with `clients` concurrent clients;
    with `baseline`, then the same models behind a bare endpoint (bench.baseline), with the
    same clients, workers and seconds, and carprice's figures as a share of it. With `py_spy`
    (a directory), every Python process is sampled in the first run, and its CPU per job is
    shared among the steps of the cost model (bench.spy)."""
    if py_spy is not None:
        find_py_spy()  # before the stack starts
    figures = _bench_stack(settings, db, kafka, clients, seconds, workers, mode, poll_ms, profile,
                           runs, inference, py_spy)
    if baseline:
        bare = run_baseline(settings.registry_dir, sample_car(settings), clients, seconds, workers)
        figures["baseline"] = bare
        figures["of_baseline"] = of_baseline(figures, bare)
    return figures


def of_baseline(figures: dict[str, Any], bare: dict[str, Any]) -> dict[str, float | None]:
    """carprice's jobs/s as a share of the baseline's requests/s, and its CPU per job (every
    process of the stack, the load generator apart) as a multiple of the baseline's."""
    share = figures["jobs_per_s"] / bare["requests_per_s"] if bare["requests_per_s"] else None
    cpu, bare_cpu = figures.get("stack_cpu_ms_per_job"), bare.get("cpu_ms_per_request")
    return {"jobs_per_s_share": round(share, 3) if share is not None else None,
            "cpu_per_job_multiple": round(cpu / bare_cpu, 1) if cpu and bare_cpu else None}


def _bench_stack(settings: Settings, db: str, kafka: str, clients: int, seconds: float,
                 workers: int, mode: str, poll_ms: float, profile: bool, runs: int,
                 inference: int, py_spy: Path | None) -> dict[str, Any]:
    stack = BenchStack(settings, db, kafka, api_workers=max(1, workers // 2) if profile else workers,
                       split_reads=profile, inference=inference)
    app = write_side(settings, db)
    try:
        stack.up()
        with psycopg.connect(db, autocommit=True) as conn:
            wait_idle(conn, app.head_position, kafka, stack.theirs)
        car = sample_car(settings)
        tokens = asyncio.run(_tokens(stack.api, clients))
        read = stack.read_api if profile else stack.api
        load_before = [round(x, 2) for x in os.getloadavg()]
        results = []
        for run in range(runs):
            groups = _stack_pids(stack, settings.home)
            spies = None
            if py_spy is not None and run == 0:
                spies = Recorders({n: pids[0] for n, pids in stack.pids().items()}, seconds, py_spy)
                groups["py-spy"] = spies.pids  # its CPU is not the stack's nor the clients'
            hops = Hops(db)
            before = Reading.take(groups)
            started = time.monotonic()
            load = asyncio.run(_load(stack.api, read, tokens, car, seconds, mode, poll_ms / 1000))
            elapsed = time.monotonic() - started
            spent = Reading.take(groups).since(before)
            spent.pop("py-spy", None)
            jobs = len(load.latencies)
            result: dict[str, Any] = {
                "seconds": round(elapsed, 1), "jobs_finished": jobs,
                "jobs_per_s": round(jobs / elapsed, 1), "errors": len(load.errors),
                "error_samples": sorted(set(load.errors))[:5],
                "latency_ms": percentiles(load.latencies), "submit_ms": percentiles(load.submits),
                "reads_per_job": round(load.polls / jobs, 2) if jobs else None,
                "cpu_percent_of_machine": round(100 * sum(spent.values()) / (elapsed * cores()), 1),
                "stack_cpu_ms_per_job": round(1000 * sum(
                    v for n, v in spent.items() if n != "load generator") / jobs, 2) if jobs else None,
                "rss_mib": _rss_mib(_stack_pids(stack, settings.home))}
            if profile and jobs:
                cost = {n: round(1000 * s / jobs, 2) for n, s in spent.items()}
                cost["total"] = round(sum(cost.values()), 2)
                result["cpu_ms_per_job"] = cost
            if spies is not None and jobs:
                result["steps_ms_per_job"] = _steps(spies.wait(), spent, jobs)
            with psycopg.connect(db, autocommit=True) as conn:
                wait_idle(conn, app.head_position, kafka, stack.theirs)
            # after the jobs in flight have ended, and PostgreSQL's counters have been flushed
            result["round_trips_per_job"] = hops.per_job(max(1, jobs))
            results.append(result)
        return {"benchmark": "api", "mode": mode, "clients": clients, "poll_ms": poll_ms,
                "api_workers": workers, "inference_consumers": inference,
                "broker": settings.kafka_impl,
                "load_before": load_before, "runs": results,
                **results[-1], "logs": str(stack.logs)}
    finally:
        stack.stop()
        app.close()
