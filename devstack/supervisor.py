"""A small process supervisor for `carprice up`: start, prefix logs, restart with backoff, stop.

Children run in their own session (a terminal's Ctrl-C reaches only the supervisor,
which then stops them in order) and die with the supervisor (PR_SET_PDEATHSIG), so
even a SIGKILLed supervisor leaves no process behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

COLOURS = ["36", "33", "35", "32", "34", "91", "96", "93"]
PR_SET_PDEATHSIG = 1


@dataclass
class ChildSpec:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Start only once another child printed this text (or after `after_timeout` seconds).
    after: tuple[str, str] | None = None
    after_timeout: float = 30.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class _Child:
    def __init__(self, spec: ChildSpec, colour: str) -> None:
        self.spec = spec
        self.colour = colour
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.marks: set[str] = set()  # `after` texts this child has printed
        self.reader: threading.Thread | None = None


class Supervisor:
    """Runs children, relays their output with a coloured prefix, restarts crashed ones."""

    def __init__(self, specs: list[ChildSpec], out: IO[str] | None = None, colour: bool | None = None,
                 backoff: tuple[float, float] = (1.0, 30.0), healthy_after: float = 60.0,
                 stop_timeout: float = 20.0) -> None:
        self.out = out or sys.stdout
        self.colour = (self.out.isatty() and "NO_COLOR" not in os.environ) if colour is None else colour
        self.children = [_Child(s, COLOURS[i % len(COLOURS)]) for i, s in enumerate(specs)]
        self.backoff, self.healthy_after, self.stop_timeout = backoff, healthy_after, stop_timeout
        self.width = max([len(s.name) for s in specs] + [len("carprice")])
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pending = list(self.children)  # not started yet, in order
        self.waited_for: dict[str, set[str]] = {}  # child name -> texts an `after` waits for
        for spec in specs:
            if spec.after:
                self.waited_for.setdefault(spec.after[0], set()).add(spec.after[1])
        self._pending_since = time.monotonic()

    # ------------------------------------------------------------ output

    def say(self, text: str, name: str = "carprice", colour: str = "1") -> None:
        """One line with the prefix of `name`."""
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        with self.lock:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()

    def _relay(self, child: _Child, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            for text in self.waited_for.get(child.spec.name, ()):
                if text in line:
                    child.marks.add(text)
            self.say(line, child.spec.name, child.colour)
        stream.close()

    # ------------------------------------------------------------ lifecycle

    def _start(self, child: _Child) -> None:
        env = {**os.environ, **child.spec.env, "PYTHONUNBUFFERED": "1"}
        child.proc = subprocess.Popen(  # noqa: S603 - argv built by the project
            child.spec.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        stdout = child.proc.stdout
        if stdout is None:  # never: stdout is a pipe
            raise RuntimeError("child without a stdout pipe")
        child.reader = threading.Thread(target=self._relay, args=(child, stdout), daemon=True)
        child.reader.start()

    def _ready_to_start(self, child: _Child, since: float) -> bool:
        if child.spec.after is None:
            return True
        name, text = child.spec.after
        other = next(c for c in self.children if c.spec.name == name)
        return text in other.marks or time.monotonic() - since > child.spec.after_timeout

    def step(self) -> None:
        """Start what is due, notice exits, schedule and perform restarts."""
        now = time.monotonic()
        while self.pending and self._ready_to_start(self.pending[0], self._pending_since):
            self._start(self.pending.pop(0))
            self._pending_since = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is None or self.stopping.is_set():
                continue
            if proc.poll() is None:
                if child.restarts and now - child.started_at > self.healthy_after:
                    child.restarts = 0  # ran long enough: the next crash starts the backoff again
                continue
            if child.restart_at is None:
                delay = min(self.backoff[1], self.backoff[0] * 2 ** child.restarts)
                child.restarts += 1
                child.restart_at = now + delay
                self.say(f"{child.spec.name} exited with code {proc.returncode}; "
                         f"restart #{child.restarts} in {delay:g} s", colour="1;31")
            elif now >= child.restart_at:
                self.say(f"restarting {child.spec.name} (restart #{child.restarts})", colour="1;31")
                self._start(child)

    def run(self, until: Callable[[], bool] | None = None, interval: float = 0.2) -> None:
        """Supervise until stop() is called (or `until()` is true)."""
        self._pending_since = time.monotonic()
        while not self.stopping.is_set() and not (until and until()):
            self.step()
            self.stopping.wait(interval)

    def stop(self) -> None:
        """SIGTERM every child, newest first; SIGKILL whatever lingers after stop_timeout."""
        self.stopping.set()
        self.pending.clear()
        live = [c for c in reversed(self.children) if c.proc is not None and c.proc.poll() is None]
        for child in live:
            self.say(f"stopping {child.spec.name} (pid {child.proc.pid})")  # type: ignore[union-attr]
            child.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + self.stop_timeout
        for child in live:
            proc = child.proc
            if proc is None:
                continue
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.spec.name} did not stop in {self.stop_timeout:.0f} s: killed",
                         colour="1;31")
                proc.kill()
                proc.wait(5)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(2)

    def kill(self) -> None:
        """SIGKILL every child at once (a second Ctrl-C)."""
        self.stopping.set()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.kill()
