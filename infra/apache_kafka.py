"""A single-node Apache Kafka 4.x broker (KRaft, no ZooKeeper) run by the machine's Java.

Its jars come from Maven Central through `infra/kafka/pom.xml`
(`mvn dependency:copy-dependencies`), once, into `kafka_libs_dir`. Storage is
formatted on first start and kept under `<home>/kafka`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from infra.proc import HOST, Record, ServiceError, free_port, port_is_free, stop_pid, wait_for_port
from infra.settings import REPO_ROOT, Settings

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
LOG4J = Path(__file__).resolve().parent / "kafka" / "log4j2.properties"
LIBS_DIR = REPO_ROOT / ".carprice" / "kafka-libs"


def ensure_jars(libs: Path = LIBS_DIR) -> Path:
    """Resolve the broker's jars with Maven unless they are already there."""
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("KAFKA_IMPL=apache needs Maven (`mvn`) to fetch the Kafka jars")
    libs.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(  # noqa: S603
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={libs}"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise ServiceError(f"mvn could not resolve the Kafka jars:\n{proc.stdout[-3000:]}")
    return libs


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("KAFKA_IMPL=apache needs Java 17 (`java` on PATH)")
    return java


def _write_config(kdir: Path, port: int, controller_port: int) -> Path:
    config = kdir / "server.properties"
    config.write_text("\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{HOST}:{controller_port}",
        f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={kdir / 'data'}",
        "num.partitions=12",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=12",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "",
    ]))
    return config


def start(settings: Settings, port: int | None) -> Record:
    """Format storage on first start, then run the broker; return its Record."""
    libs = ensure_jars()
    java = _java()
    kdir = settings.home / "kafka"
    kdir.mkdir(parents=True, exist_ok=True)
    if port is None or not port_is_free(port, reuse_address=True):  # a restart keeps its port
        port = free_port()
    controller_port = free_port()
    config = _write_config(kdir, port, controller_port)
    classpath = f"{libs}/*"
    common = [java, "-Xms256m", "-Xmx1g", f"-Dlog4j2.configurationFile={LOG4J}", "-cp", classpath]
    if not (kdir / "data" / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = subprocess.run(  # noqa: S603
            [*common, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)],
            capture_output=True, text=True,
        )
        if fmt.returncode != 0:
            raise ServiceError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "kafka.log", "ab") as log:
        proc = subprocess.Popen(  # noqa: S603
            [*common, "kafka.Kafka", str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for_port(port, timeout=90, proc=proc)
    except ServiceError as exc:
        stop_pid(proc.pid)
        raise ServiceError(f"Apache Kafka: {exc}; see {log_dir / 'kafka.log'}") from exc
    return Record("kafka", "apache", proc.pid, port, f"{HOST}:{port}")
