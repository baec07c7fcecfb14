"""Every long-running process stops the same way (infra.signals.stop_on_signals)."""

from __future__ import annotations

import os
import signal

from infra.signals import stop_on_signals


def test_the_first_sigterm_asks_the_process_to_stop_and_a_second_ctrl_c_would_exit_at_once() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stopped: list[int] = []
    try:
        stop_on_signals("relay", lambda: stopped.append(1))
        graceful = signal.getsignal(signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread, before kill returns
        assert stopped == [1]
        assert signal.getsignal(signal.SIGINT) is not graceful  # the next Ctrl-C: exit now
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # a second SIGTERM is harmless
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
