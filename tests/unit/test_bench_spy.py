"""The cost model's steps from py-spy's collapsed stacks: each stack goes to the step of its
innermost frame in a known package, and a process's CPU per job is shared by samples."""

from __future__ import annotations

import sysconfig
from pathlib import Path

from bench.spy import OTHER, module_root, ms_per_job, steps

PROJECT = Path("/work/main")
STDLIB = sysconfig.get_paths()["stdlib"]  # where py-spy shows this Python's own modules
SITE = "/srv/.venv/lib/python3.11/site-packages"
RAW = "\n".join([
    # a route that writes to the store: the SQL round trip is where the time is
    f"run (uvicorn/server.py:60);app ({SITE}/fastapi/routing.py:300);"
    f"submit (/work/main/api/routes.py:40);save ({SITE}/eventsourcing/application.py:900);"
    f"execute ({SITE}/psycopg/cursor.py:97) 30",
    # the same route encoding the event: our codec calling json
    f"app ({SITE}/fastapi/routing.py:300);encode (/work/main/infra/codec.py:12);"
    "dumps (json/__init__.py:231) 10",
    # the model, under the consumer loop
    f"loop (/work/main/consumers/loop.py:80);predict ({SITE}/sklearn/pipeline.py:600) 50",
    "select (selectors.py:468) 5",
    "<module> (<string>:1) 5",
])


def test_each_stack_goes_to_its_innermost_known_package() -> None:
    found = steps(RAW, PROJECT)
    assert found["PostgreSQL client (SQL round trips)"] == 30
    assert found["encoding (JSON, UUIDs, times)"] == 10
    assert found["model"] == 50
    assert found["event loop, threads, sockets"] == 5
    assert found[OTHER] == 5


def test_a_process_cpu_is_shared_by_its_samples() -> None:
    shares = ms_per_job(steps(RAW, PROJECT), cpu_ms_per_job=10.0)
    assert shares["model"] == 5.0
    assert shares["PostgreSQL client (SQL round trips)"] == 3.0
    assert round(sum(shares.values()), 2) == 10.0


def test_module_roots() -> None:
    assert module_root(f"{SITE}/fastapi/routing.py", PROJECT) == "fastapi"
    assert module_root("/work/main/commands/application.py", PROJECT) == "commands"
    assert module_root(f"{STDLIB}/json/encoder.py", PROJECT) == "json"
    assert module_root("selectors.py", PROJECT) == "selectors"
    assert module_root("psycopg/cursor.py", PROJECT) == "psycopg"
