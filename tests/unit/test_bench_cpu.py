"""The cost model's CPU readings: each process is counted once, in its own group."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from bench.cpu import Reading

BURN = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"


def test_a_child_in_its_own_group_is_not_counted_again_in_its_parents() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN + "time.sleep(30)"])  # noqa: S603
    try:
        groups = {"worker": [child.pid], "load generator": [os.getpid()]}
        before = Reading.take(groups)
        deadline = time.monotonic() + 20
        while Reading.take(groups).since(before)["worker"] < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = Reading.take(groups).since(before)
    finally:
        child.kill()
        child.wait()
    assert spent["worker"] >= 0.5
    # this process only slept and read /proc: far less than the child's burn
    assert spent["load generator"] < 0.3


def test_a_child_listed_nowhere_counts_for_its_parent() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN + "time.sleep(30)"])  # noqa: S603
    try:
        groups = {"load generator": [os.getpid()]}
        before = Reading.take(groups)
        deadline = time.monotonic() + 20
        while Reading.take(groups).since(before)["load generator"] < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = Reading.take(groups).since(before)
    finally:
        child.kill()
        child.wait()
    assert spent["load generator"] >= 0.5  # like PostgreSQL's backends under its postmaster


def test_a_child_listed_with_its_parent_in_one_group_is_counted_once() -> None:
    # as the API's group lists uvicorn's process and its workers
    child = subprocess.Popen([sys.executable, "-c", BURN + "time.sleep(30)"])  # noqa: S603
    try:
        groups = {"api": [os.getpid(), child.pid]}
        before = Reading.take(groups)
        deadline = time.monotonic() + 20
        while sum(psutil.Process(child.pid).cpu_times()[:2]) < 0.6 and time.monotonic() < deadline:
            time.sleep(0.05)  # until its burn is over
        spent = Reading.take(groups).since(before)
        burnt = sum(psutil.Process(child.pid).cpu_times()[:2])
    finally:
        child.kill()
        child.wait()
    assert spent["api"] < burnt + 0.3  # the child's burn once (twice before), and this process's little
