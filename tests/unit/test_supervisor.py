"""The supervisor of `carprice up` with tiny children: prefixes, backoff, ordered stop."""

from __future__ import annotations

import io
import re
import sys
import time
from collections.abc import Callable

from devstack.supervisor import ChildSpec, Supervisor

PY = sys.executable


def _run_until(sup: Supervisor, done: Callable[[], bool], timeout: float = 60) -> None:
    """Supervise until `done` holds (a condition, not a duration); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    sup.run(until=lambda: done() or time.monotonic() > deadline, interval=0.02)
    assert done(), "the condition did not hold in time"


def test_a_crashing_child_is_restarted_with_growing_delays() -> None:
    out = io.StringIO()
    sup = Supervisor([ChildSpec("flaky", [PY, "-c", "print('hello'); raise SystemExit(3)"])],
                     out=out, colour=False, backoff=(0.1, 0.4))
    _run_until(sup, lambda: len(re.findall(r"restart #\d+ in", out.getvalue())) >= 4)
    sup.stop()
    text = out.getvalue()
    assert "flaky    | hello" in text
    delays = [float(d) for d in re.findall(r"flaky exited with code 3; restart #\d+ in ([\d.]+) s", text)]
    assert len(delays) >= 3 and delays[:3] == [0.1, 0.2, 0.4]
    assert max(delays) == 0.4  # capped


def test_stop_terminates_children_newest_first_and_kills_one_that_ignores_sigterm() -> None:
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('up'); time.sleep(60)")
    out = io.StringIO()
    sup = Supervisor([ChildSpec("calm", [PY, "-c", "import time; print('up'); time.sleep(60)"]),
                      ChildSpec("stubborn", [PY, "-u", "-c", stubborn], after=("calm", "up"))],
                     out=out, colour=False, stop_timeout=1.0)
    _run_until(sup, lambda: "stubborn | up" in out.getvalue())
    assert {c.spec.name for c in sup.children if c.proc and c.proc.poll() is None} == {"calm", "stubborn"}
    sup.stop()  # returns once both ended: the stubborn one killed after its 1 s
    text = out.getvalue()
    assert text.index("stopping stubborn") < text.index("stopping calm")
    assert "stubborn did not stop in 1 s: killed" in text
    assert all(c.proc and c.proc.poll() is not None for c in sup.children)


def test_a_port_a_server_just_closed_counts_as_free_for_the_next_up() -> None:
    import socket

    from devstack.proc import port_is_free

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    assert not port_is_free(port, reuse_address=True)  # listening
    accepted.close()  # the server closes first: its side of the connection sits in TIME_WAIT
    server.close()
    time.sleep(0.1)
    client.close()
    assert port_is_free(port, reuse_address=True)  # as uvicorn would bind it again (SO_REUSEADDR)
