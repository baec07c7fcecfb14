"""`carprice up`: the whole stack in one terminal, supervised, stopped by Ctrl-C.

The dev stack starts PostgreSQL and the broker, then the carprice processes as supervised
children, handing each its addresses through the environment (DATABASE_URL,
KAFKA_BOOTSTRAP_SERVERS, CARPRICE_HOME). The `carprice` command it runs is given by the
caller, so nothing here depends on the product's packages.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from devstack import services
from devstack.proc import ServiceError, port_is_free
from devstack.supervisor import ChildSpec, Supervisor
from infra.settings import Settings

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "carprice-demo"  # noqa: S105 - the embedded mode's demo account, printed on purpose
DEMO_CREDITS = 1000
INFERENCE_REPLICAS = 2


class AlreadyRunning(RuntimeError):
    """Another `carprice up` holds this home."""


class UpLock:
    """`<home>/up.lock`, held (flock) for as long as `carprice up` runs; `up.json` says where."""

    def __init__(self, home: Path) -> None:
        self.lock_path, self.info_path = home / "up.lock", home / "up.json"
        self.handle: IO[str] | None = None

    def acquire(self, info: dict[str, Any]) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(self.describe()) from None
        self.handle = handle
        self.info_path.write_text(json.dumps({"pid": os.getpid(), **info}))

    def describe(self) -> str:
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return f"carprice is already running for {self.lock_path.parent}"
        return (f"carprice is already running (pid {info['pid']}): API {info['api']}, dashboard "
                f"{info['ui']}. Stop it with Ctrl-C in its terminal or `kill {info['pid']}`.")

    def release(self) -> None:
        if self.handle is not None:
            self.info_path.unlink(missing_ok=True)
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def plan(cli: list[str], db: str, kafka: str, api_port: int, ui_port: int, replicas: int = 1,
         home: Path | None = None, kind: str = "apache") -> list[ChildSpec]:
    """The processes of the stack, in start order (see docker-compose.yml for the same set);
    `cli` is the argv that runs the `carprice` command."""
    env = {"DATABASE_URL": db, "KAFKA_BOOTSTRAP_SERVERS": kafka, "LOG_FORMAT": "console",
           "KAFKA_REPLICATION_FACTOR": str(replicas), "KAFKA_IMPL": kind}
    if home is not None:
        env["CARPRICE_HOME"] = str(home.resolve())
    specs = [ChildSpec("relay", [*cli, "relay"], env),
             ChildSpec("reaper", [*cli, "reaper"], env),
             ChildSpec("webhooks", [*cli, "webhooks"], env),
             ChildSpec("projector", [*cli, "consume", "projections"], env)]
    for i in range(1, INFERENCE_REPLICAS + 1):
        # the members share the partitions by leases in PostgreSQL (infra/leases.py)
        specs.append(ChildSpec(f"inference-{i}", [*cli, "consume", "inference"], env))
    # the dashboard vouches for the browser addresses it passes on with a secret of this run
    front = {**env, "CARPRICE_PROXY_TOKEN": secrets.token_urlsafe(32)}
    specs.append(ChildSpec("api", [*cli, "api", "--port", str(api_port)], front))
    specs.append(ChildSpec("ui", [*cli, "ui", "--port", str(ui_port), "--api-url",
                                  f"http://127.0.0.1:{api_port}"], front))
    return specs


def _wait_ready(api: str, timeout: float, stopping: threading.Event) -> str | None:
    """None once /readyz answers 200; else the last reason."""
    import requests

    reason = "the API did not answer"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping.is_set():
        try:
            r = requests.get(f"{api}/readyz", timeout=2)
            if r.status_code == 200:
                return None
            reason = r.json().get("detail", reason)
        except (requests.RequestException, ValueError):
            pass
        stopping.wait(0.5)
    return reason


def demo_user(api: str) -> str:
    """Sign up (or in) the demo user and top it up to DEMO_CREDITS; return a line to print."""
    import requests

    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    r = requests.post(f"{api}/api/v1/sign_in", json=creds, timeout=30)
    if r.status_code == 401:
        requests.post(f"{api}/api/v1/sign_up", json={"name": "Demo", **creds},
                      timeout=30).raise_for_status()
        r = requests.post(f"{api}/api/v1/sign_in", json=creds, timeout=30)
    r.raise_for_status()
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    balance = requests.get(f"{api}/api/v1/balance", headers=auth, timeout=30).json()["amount"]
    if balance < DEMO_CREDITS:
        balance = requests.post(f"{api}/api/v1/balance", json={"new_amount": DEMO_CREDITS},
                                headers=auth, timeout=30).json()["amount"]
    return f"demo user   {DEMO_EMAIL} / {DEMO_PASSWORD}  ({balance} credits)"




class UpError(RuntimeError):
    """`carprice up` cannot start; the message says why and what to change."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(settings: Settings, cli: list[str], api_port: int, ui_port: int, demo: bool,
        prepare: Callable[[str], None], say: Callable[[str], None]) -> None:
    """Start the services, `prepare(database_url)` (migrate, train), then supervise the stack
    until Ctrl-C / SIGTERM; stop the services it started. UpError / AlreadyRunning say why not."""
    api, ui = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    # until the supervisor takes over the signals: SIGTERM unwinds like Ctrl-C (and cleans up)
    signal.signal(signal.SIGTERM, _interrupt)
    lock = UpLock(settings.home)
    lock.acquire({"api": api, "ui": ui})
    try:
        for port, flag in ((api_port, "--api-port"), (ui_port, "--ui-port")):
            if not port_is_free(port, reuse_address=True):  # uvicorn and streamlit reuse
                raise UpError(f"port {port} is in use by another program; choose another with {flag}")
        before = {s.name: s.running for s in services.status(settings) if s.managed}
        try:
            started = services.up(settings)
            db, bootstrap = services.endpoints(settings)
            prepare(db)
            replicas = 3 if settings.kafka_impl == "apache-cluster" else settings.kafka_replication_factor
            _supervise(plan(cli, db, bootstrap, api_port, ui_port, replicas, settings.home,
                            settings.kafka_impl), api, ui, demo, started)
        except ServiceError as exc:
            raise UpError(str(exc)) from exc
        finally:
            if any(before.values()):
                say("PostgreSQL / the broker ran before `carprice up`: left running "
                    "(`carprice services down` stops them)")
            else:
                for line in services.down(settings):
                    say(line)
    finally:
        lock.release()


def _supervise(specs: list[ChildSpec], api: str, ui: str, demo: bool, started: list[Any]) -> None:
    sup = Supervisor(specs)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            sup.say("second signal: killing every child now", colour="1;31")
            sup.kill()
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def announce() -> None:
        reason = _wait_ready(api, 180, stop)
        if stop.is_set():
            return
        lines = ["", "carprice is up" if reason is None else f"carprice started, not ready yet: {reason}",
                 f"  API         {api}   (docs {api}/docs, metrics {api}/metrics)",
                 f"  dashboard   {ui}"]
        lines += [f"  {s.name:<11} {s.address}" for s in started]
        if demo:
            try:
                lines.append("  " + demo_user(api))
            except Exception as exc:  # noqa: BLE001 - reported; the stack keeps running
                lines.append(f"  demo user could not be created: {exc}")
        lines.append("Ctrl-C stops everything.")
        for line in lines:
            sup.say(line)

    threading.Thread(target=announce, daemon=True).start()
    try:
        sup.run(until=stop.is_set)
    finally:
        sup.stop()
        sup.say("every process stopped")
