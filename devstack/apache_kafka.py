"""Apache Kafka 4.x (KRaft, no ZooKeeper) run by the machine's Java: one node, or a cluster.

Its jars come from Maven Central through `infra/kafka/pom.xml`
(`mvn dependency:copy-dependencies`), once, into `kafka_libs_dir`. Storage is
formatted on first start and kept under `<home>/kafka` (one node) or
`<home>/kafka-cluster/node-N` (a cluster of 3 combined broker+controller nodes, replication
factor 3, min.insync.replicas 2, no unclean leader election).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from devstack.proc import (
    HOST,
    Record,
    ServiceError,
    free_port,
    stop_pid,
    wait_for_port,
    wait_until_free,
)
from infra.settings import Settings

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
LOG4J = Path(__file__).resolve().parent / "kafka" / "log4j2.properties"


def _libs_dir() -> Path:
    # shared by every home: the jars depend only on the pom
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "carprice" / f"kafka-libs-{sha256(POM.read_bytes()).hexdigest()[:12]}"


def ensure_jars(libs: Path | None = None) -> Path:
    """Resolve the broker's jars with Maven unless they are already there."""
    libs = libs or _libs_dir()
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("KAFKA_IMPL=apache needs Maven (`mvn`) to fetch the Kafka jars")
    partial = libs.with_name(f"{libs.name}.{os.getpid()}.partial")  # whole, or not there at all
    partial.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(  # noqa: S603
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={partial}"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ServiceError(f"mvn could not resolve the Kafka jars:\n{proc.stdout[-3000:]}")
    try:
        os.replace(partial, libs)
    except OSError:  # another process got there first
        shutil.rmtree(partial, ignore_errors=True)
    return libs


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("KAFKA_IMPL=apache needs Java 17 (`java` on PATH)")
    return java


def _write_config(kdir: Path, node: int, port: int, controller_port: int, voters: str,
                  replicas: int) -> Path:
    config = kdir / "server.properties"
    min_isr = 2 if replicas >= 3 else 1
    config.write_text("\n".join([
        "process.roles=broker,controller",
        f"node.id={node}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={kdir / 'data'}",
        "num.partitions=12",
        "auto.create.topics.enable=false",
        f"default.replication.factor={replicas}",
        f"min.insync.replicas={min_isr}",
        "unclean.leader.election.enable=false",
        f"offsets.topic.replication.factor={replicas}",
        "offsets.topic.num.partitions=12",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min_isr}",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        "group.initial.rebalance.delay.ms=0",
        # a broker restarted after a crash waits out its previous registration's session
        # before it serves: 12 s from launch to its port with the default 9 s, 4 s with 2 s
        "broker.session.timeout.ms=2000",
        "broker.heartbeat.interval.ms=500",
        # a lone controller writes a no-op record to its metadata log every 500 ms by default,
        # which every idle minute pays for (`carprice bench idle`); a cluster keeps the default
        *(["metadata.max.idle.interval.ms=5000"] if replicas == 1 else []),
        "",
    ]))
    return config


def _command(libs: Path, heap: str) -> list[str]:
    return [_java(), f"-Xms{heap}", f"-Xmx{heap}", f"-Dlog4j2.configurationFile={LOG4J}", "-cp",
            f"{libs}/*"]


def _format(common: list[str], kdir: Path, config: Path, cluster_id: str) -> None:
    if (kdir / "data" / "meta.properties").exists():
        return
    fmt = subprocess.run(  # noqa: S603
        [*common, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)],
        capture_output=True, text=True,
    )
    if fmt.returncode != 0:
        raise ServiceError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")


def _launch(common: list[str], config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603
            [*common, "kafka.Kafka", str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )


def _cluster_id() -> str:
    # Kafka's own Uuid.randomUuid() never starts with "-": the storage tool would read
    # "-t -dV8N..." as a missing argument (a clean-clone CI hit it, one run in 64)
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


def _port(wanted: int | None) -> int:
    # a restart keeps its port (the caller waited for it to be free)
    return wanted if wanted is not None else free_port()


def start(settings: Settings, port: int | None) -> Record:
    """Format storage on first start, then run the broker; return its Record."""
    libs = ensure_jars()
    kdir = settings.home / "kafka"
    kdir.mkdir(parents=True, exist_ok=True)
    port, controller_port = _port(port), free_port()
    config = _write_config(kdir, 1, port, controller_port, f"1@{HOST}:{controller_port}", 1)
    common = _command(libs, "1g")
    _format(common, kdir, config, _cluster_id())
    log_path = settings.home / "logs" / "kafka.log"
    proc = _launch(common, config, log_path)
    try:
        wait_for_port(port, timeout=90, proc=proc)
    except ServiceError as exc:
        stop_pid(proc.pid)
        raise ServiceError(f"Apache Kafka: {exc}; see {log_path}") from exc
    return Record("kafka", "apache", proc.pid, port, f"{HOST}:{port}")


@dataclass(frozen=True)
class Node:
    """One node of a cluster: its id, client port and controller port."""

    node: int
    port: int
    controller_port: int


def cluster_nodes(home: Path) -> list[Node]:
    """The nodes of the cluster of this home (ports fixed at its first start)."""
    path = home / "kafka-cluster" / "nodes.json"
    return [Node(**n) for n in json.loads(path.read_text())] if path.exists() else []


def start_cluster(settings: Settings, nodes: int = 3, only: int | None = None) -> list[Record]:
    """A KRaft cluster of `nodes` combined broker+controller nodes, replication factor 3 and
    min.insync.replicas 2; `only` (re)starts just that node of an existing cluster."""
    libs = ensure_jars()
    base = settings.home / "kafka-cluster"
    base.mkdir(parents=True, exist_ok=True)
    known = cluster_nodes(settings.home)
    if not known:
        known = [Node(i, free_port(), free_port()) for i in range(1, nodes + 1)]
        (base / "nodes.json").write_text(json.dumps([n.__dict__ for n in known]))
        (base / "cluster.id").write_text(_cluster_id())
    elif only is not None:
        node = next(n for n in known if n.node == only)
        for port in (node.port, node.controller_port):
            if not wait_until_free(port):
                raise ServiceError(f"port {port} of Kafka node {only} is still in use")
    cluster_id = (base / "cluster.id").read_text().strip()
    voters = ",".join(f"{n.node}@{HOST}:{n.controller_port}" for n in known)
    common = _command(libs, "512m")
    launched: list[tuple[Node, subprocess.Popen[bytes]]] = []
    for n in known:
        if only is not None and n.node != only:
            continue
        kdir = base / f"node-{n.node}"
        kdir.mkdir(parents=True, exist_ok=True)
        config = _write_config(kdir, n.node, n.port, n.controller_port, voters, len(known))
        _format(common, kdir, config, cluster_id)
        launched.append((n, _launch(common, config, settings.home / "logs" / f"kafka-{n.node}.log")))
    records = []
    for n, proc in launched:
        try:
            wait_for_port(n.port, timeout=120, proc=proc)
        except ServiceError as exc:
            for _, p in launched:
                stop_pid(p.pid)
            raise ServiceError(f"Apache Kafka node {n.node}: {exc}; see "
                               f"{settings.home / 'logs' / f'kafka-{n.node}.log'}") from exc
        records.append(Record(node_record_name(n.node), "apache-cluster", proc.pid, n.port,
                              f"{HOST}:{n.port}"))
    return records


def node_record_name(node: int) -> str:
    """The services record of a cluster node: `kafka` for node 1 (it carries the bootstrap
    list of every node), `kafka-N` for the others."""
    return "kafka" if node == 1 else f"kafka-{node}"


def bootstrap(home: Path) -> str:
    """Every node's address: what clients of the cluster bootstrap from."""
    return ",".join(f"{HOST}:{n.port}" for n in cluster_nodes(home))
