"""py-spy under `bench api --py-spy DIR`: where each process's milliseconds per job go.

Every Python process of the stack is sampled by `py-spy record --format raw` (collapsed
stacks) for the measured window: `--gil`, only the thread holding the GIL, so that a thread
blocked in C (a queue, a socket, libpq) is not counted as work, which py-spy's idle check
misses; `--nonblocking`, the process is never paused. Time in system calls and in C that
releases the GIL is thus spread over the steps in proportion. Each stack is
put in one step of the cost model by its innermost frame that belongs to a known package
(psycopg under eventsourcing under a route is a SQL round trip; json under our codec is
encoding); the step's share of the samples times the process's measured CPU per job is its
milliseconds per job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

# The first segment of a frame's module path -> the step of the cost model it stands for.
STEPS: dict[str, str] = {
    **dict.fromkeys(("jwt", "cryptography"), "JWT"),
    **dict.fromkeys(("argon2", "passlib"), "password hashing"),
    **dict.fromkeys(("kafka",), "Kafka client (produce, fetch)"),
    **dict.fromkeys(("psycopg", "psycopg_pool", "psycopg_binary"), "PostgreSQL client (SQL round trips)"),
    **dict.fromkeys(("eventsourcing",), "event store (eventsourcing: mapper, recorder)"),
    **dict.fromkeys(("json", "orjson", "uuid", "datetime", "decimal", "zlib", "base64"),
                    "encoding (JSON, UUIDs, times)"),
    **dict.fromkeys(("sklearn", "numpy", "numba", "scipy", "pandas", "model_registry", "joblib",
                     "mapie"), "model"),
    **dict.fromkeys(("pydantic", "pydantic_core", "fastapi", "starlette", "uvicorn", "h11",
                     "httptools", "anyio", "annotated_types", "email_validator", "typing",
                     "multipart", "sse_starlette"), "HTTP and validation"),
    **dict.fromkeys(("opentelemetry", "prometheus_client", "logging", "structlog", "traceback",
                     "linecache"), "telemetry and logs"),
    **dict.fromkeys(("asyncio", "selectors", "threading", "queue", "concurrent", "socket", "ssl",
                     "contextvars"), "event loop, threads, sockets"),
    **dict.fromkeys(("domain", "commands", "projections", "consumers", "infra", "api"),
                    "carprice's own code"),
}
OTHER = "other"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")
_ROOTS = ("site-packages/", "dist-packages/", sysconfig.get_paths()["stdlib"].rstrip("/") + "/")


def module_root(filename: str, project: Path) -> str:
    """The first segment of a frame's file below site-packages, the standard library or the
    project ('fastapi', 'json', 'commands'); a lone file gives its stem ('selectors')."""
    name = filename
    for root in _ROOTS:
        if root in name:
            name = name.rsplit(root, 1)[1]
            break
    else:
        prefix = str(project).rstrip("/") + "/"
        if name.startswith(prefix):
            name = name[len(prefix):]
    first = name.lstrip("/").split("/", 1)[0]
    return first.removesuffix(".py")


def step_of(stack: list[str], project: Path) -> str:
    """The step of one sampled stack: that of its innermost frame in a known package."""
    for frame in reversed(stack):
        found = _FRAME.match(frame)
        if found is None:
            continue
        step = STEPS.get(module_root(found["file"], project))
        if step is not None:
            return step
    return OTHER


def steps(raw: str, project: Path) -> Counter[str]:
    """Samples per step of one py-spy raw (collapsed) file."""
    out: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        out[step_of(stack.split(";"), project)] += int(count)
    return out


def ms_per_job(samples: Counter[str], cpu_ms_per_job: float) -> dict[str, float]:
    """A process's CPU per job shared among its steps by their samples."""
    total = sum(samples.values())
    if not total:
        return {}
    return {step: round(cpu_ms_per_job * n / total, 2) for step, n in samples.most_common()}


def py_spy() -> str:
    """py-spy's executable: beside this Python (a virtualenv's bin) or on PATH."""
    here = str(Path(sys.executable).parent)
    found = shutil.which("py-spy", path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if found is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


class Recorders:
    """One `py-spy record` per named process (with its worker subprocesses) for `seconds`."""

    def __init__(self, pids: Mapping[str, int], seconds: float, out: Path, rate: int = 100) -> None:
        spy = py_spy()
        out.mkdir(parents=True, exist_ok=True)
        self.files = {name: out / f"{name}.txt" for name in pids}
        self.popens = [subprocess.Popen(  # noqa: S603 - py-spy on our own processes
            [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
             "--rate", str(rate), "--format", "raw", "--nonblocking", "--gil", "--subprocesses",
             "--output", str(self.files[name])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name, pid in pids.items()]

    @property
    def pids(self) -> list[int]:
        """The recorders' own processes (their CPU is not the stack's)."""
        return [p.pid for p in self.popens]

    def wait(self) -> dict[str, Path]:
        """Wait for every recorder; the files they wrote."""
        for p in self.popens:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        return {name: f for name, f in self.files.items() if f.exists()}
