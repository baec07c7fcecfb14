"""Small process and port helpers shared by the embedded services."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import psutil

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A service could not be started or reached; the message says why."""


@dataclass
class Record:
    """What `up` started: enough to find and stop it again."""

    name: str
    kind: str
    pid: int | None
    port: int
    address: str



def _ephemeral_low() -> int:
    try:
        return int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])  # noqa: SIM115
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range.

    Not bind(0): that hands out ephemeral ports, and a client that keeps reconnecting to a
    dead local service on such a port can be given that very port as its own source port and
    connect to itself, after which the service cannot bind it again when it restarts.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randint(max(1024, low - 12000), low - 1)  # noqa: S311 - not a secret
        if port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until_free(port: int, timeout: float = 90.0) -> bool:
    """Wait for a port a crashed service held to be free to bind again (True if it is)."""
    deadline = time.monotonic() + timeout
    while not port_is_free(port, reuse_address=True):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def port_is_free(port: int, reuse_address: bool = False) -> bool:
    """True when nothing listens on 127.0.0.1:port.

    With reuse_address, connections left in TIME_WAIT do not count, as for servers that
    bind with SO_REUSEADDR (uvicorn, streamlit).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if reuse_address:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceError(f"nothing listens on {HOST}:{port} after {timeout:.0f}s")


def pid_alive(pid: int | None) -> bool:
    """True when the process exists and is not a zombie."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_pid(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM a process (and its children), then SIGKILL what is left after `timeout`."""
    stop_pids([pid], timeout)


def stop_pids(pids: list[int], timeout: float = 20.0) -> None:
    """SIGTERM processes (and their children) together, then SIGKILL what is left."""
    procs: list[psutil.Process] = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs += [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    if not procs:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
