"""Run carprice processes as a user would (`python -m cli.main ...`) and wait on results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests import REPO_ROOT

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.2,
             what: str = "condition") -> T:
    """Poll until check() returns something truthy; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class Proc:
    """One carprice child process with its log file (`crash_at`: hooks where it kills itself)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path,
                 crash_at: tuple[str, ...] = ()) -> None:
        self.args, self.log = args, log
        self.handle = open(log, "ab")  # noqa: SIM115 - closed in stop()
        hooks = [f"--crash-at={point}" for point in crash_at]
        self.popen = subprocess.Popen([sys.executable, "-m", "tests.launch", *hooks, "--", *args],
                                      env=env, stdout=self.handle, stderr=subprocess.STDOUT,
                                      cwd=REPO_ROOT, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def pause(self) -> None:
        """SIGSTOP, as a hung process would look."""
        os.kill(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        os.kill(self.popen.pid, signal.SIGCONT)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        if self.popen.poll() is None:
            self.resume()
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()
        return self.popen.returncode


class Processes:
    """Starts processes against the test stack with one topic prefix; stops them all."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: list[Proc] = []

    def start(self, *args: str, extra_env: dict[str, str] | None = None,
              crash_at: tuple[str, ...] = ()) -> Proc:
        name = "-".join(args).replace("/", "_")
        proc = Proc(list(args), {**self.env, **(extra_env or {})},
                    self.log_dir / f"{name}-{len(self.procs)}.log", crash_at)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def report_to(self, item: Any, lines: int = 40) -> None:
        """When the test failed, add the last lines of every child's log to its report."""
        report = getattr(item, "report_call", None)
        if report is None or not report.failed:
            return
        for proc in self.procs:
            tail = "\n".join(proc.text().splitlines()[-lines:])
            report.sections.append((f"log of {' '.join(proc.args)} ({proc.log.name})", tail))


def topic_messages(bootstrap: str, topic: str, wait_ms: int = 2000) -> list[Any]:
    """Every message now on the topic, from the beginning of each partition (no group)."""
    from kafka import KafkaConsumer, TopicPartition

    probe = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=wait_ms)
    try:
        probe.assign([TopicPartition(topic, p) for p in probe.partitions_for_topic(topic) or ()])
        probe.seek_to_beginning()
        return list(probe)
    finally:
        probe.close()
