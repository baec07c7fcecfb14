"""Run a carprice command with test hooks installed: fault injection lives here, not in the product.

    python -m tests.launch --crash-at inference.before_commit -- consume inference
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def _kill_self(point: str) -> None:
    sys.stderr.write(f"crash point {point} reached: killing this process\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crash-at", action="append", default=[],
                        help="a loop hook name (consumers.loop.HOOKS) at which to SIGKILL itself")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    from consumers import loop

    for point in args.crash_at:
        loop.HOOKS[point] = lambda p=point: _kill_self(p)
    command = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
    from cli.main import cli

    sys.argv = ["carprice", *command]
    cli()


if __name__ == "__main__":
    main()
