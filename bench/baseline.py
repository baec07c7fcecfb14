"""`carprice bench baseline`: the same models behind a bare endpoint, the limit carprice is
measured against.

The baseline serves the latest version of every registered model, in its serving form
(`Registry.load`) and with its 80 % range, from one plain synchronous FastAPI route on uvicorn
with the API's worker count: the same server stack as `carprice api`, the same request body
(`PredictCreate`) and the same check of the car's features, and nothing else: no sign-in, no
ledger, no event store, no broker. Its answer is the price and its range, at once.

It is driven by the same aiohttp clients as `bench api` (the three models in turn, one car of
the dataset); each client waits for its answer before it sends the next car. Its CPU is read
from /proc for the server's processes, as `bench api` reads the stack's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from fastapi import FastAPI, HTTPException

from api.schemas import PredictCreate
from bench.common import MODELS, percentiles
from bench.cpu import Reading, cores
from devstack.proc import free_port
from domain.errors import InvalidFeatures
from domain.features import validate_features
from model_registry.features import columns_of
from model_registry.store import Registry


def create_baseline() -> FastAPI:
    """The bare endpoint (a uvicorn factory): POST /predict answers the price and its range."""
    served: dict[str, tuple[Any, Any]] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        registry = Registry(Path(os.environ["MODEL_REGISTRY_DIR"]))
        for card in registry.champion_cards():
            served[card.name] = (card, registry.load(card.name, card.version))
        yield

    app = FastAPI(title="carprice baseline", lifespan=lifespan)

    @app.post("/predict")
    def predict(body: PredictCreate) -> dict[str, Any]:
        if body.model_name not in served:
            raise HTTPException(404, f"no model named {body.model_name!r}")
        card, model = served[body.model_name]
        try:
            car = validate_features(card.input_schema, body.data)
        except InvalidFeatures as exc:
            raise HTTPException(422, exc.errors) from exc
        priced = model.price(columns_of([car]))[0]
        return {"model_name": card.name, "model_version": card.version,
                "result": round(priced.price, 2),
                "interval": {"low": round(priced.low, 2), "high": round(priced.high, 2),
                             "level": model.level}}

    return app


@dataclass
class Served:
    """What the baseline's clients saw in one run."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _client(session: Any, url: str, car: dict[str, Any], stop: float, offset: int,
                  seen: Served) -> None:
    n = offset
    while time.monotonic() < stop:
        model = MODELS[n % len(MODELS)]
        n += 1
        t0 = time.perf_counter()
        async with session.post(url, json={"model_name": model, "data": car}) as r:
            body = await r.json()
        if r.status != 200 or "result" not in body:
            seen.errors.append(f"POST /predict {r.status} {str(body)[:100]}")
            await asyncio.sleep(0.1)
            continue
        seen.latencies.append((time.perf_counter() - t0) * 1000)


async def _load(url: str, car: dict[str, Any], clients: int, seconds: float) -> Served:
    import aiohttp

    seen = Served()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_client(session, url, car, stop, i, seen) for i in range(clients)))
    return seen


class Baseline:
    """The bare endpoint as a child process (uvicorn with `workers` workers)."""

    def __init__(self, registry_dir: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/predict"
        self.log = Path(tempfile.mkdtemp(prefix="carprice-baseline-")) / "baseline.log"
        self._args = [sys.executable, "-m", "uvicorn", "bench.baseline:create_baseline", "--factory",
                      "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
                      "--log-level", "warning", "--no-access-log"]
        self._env = {**os.environ, "MODEL_REGISTRY_DIR": str(registry_dir)}
        self._popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Baseline:
        with open(self.log, "ab") as out:
            self._popen = subprocess.Popen(self._args, env=self._env, stdout=out,  # noqa: S603
                                           stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                raise RuntimeError(f"the baseline exited: see {self.log}")
            try:
                if requests.post(self.url, json={}, timeout=2).status_code == 422:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the baseline did not answer within 120 s: see {self.log}")

    @property
    def pid(self) -> int:
        """The server's process (its workers are its children)."""
        if self._popen is None:
            raise RuntimeError("the baseline is not started")
        return self._popen.pid

    def __exit__(self, *_: object) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(20)
            except subprocess.TimeoutExpired:
                self._popen.kill()


def run_baseline(registry_dir: Path, car: dict[str, Any], clients: int, seconds: float,
                 workers: int) -> dict[str, Any]:
    """Requests/s, latency and the server's CPU per request of the bare endpoint."""
    with Baseline(registry_dir, workers) as server:
        asyncio.run(_load(server.url, car, clients, 1.0))  # warm every worker and model
        groups = {"baseline": [server.pid], "load generator": [os.getpid()]}
        before = Reading.take(groups)
        started = time.monotonic()
        seen = asyncio.run(_load(server.url, car, clients, seconds))
        elapsed = time.monotonic() - started
        used = Reading.take(groups).since(before)
    spent, done = used["baseline"], len(seen.latencies)
    return {"seconds": round(elapsed, 1), "requests": done,
            "requests_per_s": round(done / elapsed, 1), "errors": len(seen.errors),
            "error_samples": sorted(set(seen.errors))[:5], "latency_ms": percentiles(seen.latencies),
            "cpu_ms_per_request": round(1000 * spent / done, 2) if done else None,
            "load_generator_cpu_ms_per_request": (
                round(1000 * used["load generator"] / done, 2) if done else None),
            "cpu_percent_of_machine": round(100 * sum(used.values()) / (elapsed * cores()), 1),
            "workers": workers, "clients": clients}
