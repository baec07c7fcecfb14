"""What every command starts from: its settings (with the dev stack's addresses in the embedded
mode when none are given), a console, and the schema check."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from infra.settings import Settings

console = Console()
CLI = [sys.executable, "-m", "cli.main"]  # how the dev stack runs this command


def settings(kafka: bool = True, **overrides: str) -> Settings:
    """This process's settings; in the embedded mode, addresses not given are the dev stack's."""
    found = Settings(**overrides)  # type: ignore[arg-type]
    if found.database_url and (found.kafka_bootstrap_servers or not kafka):
        return found
    if found.mode != "embedded":
        fail("DATABASE_URL" + (" and KAFKA_BOOTSTRAP_SERVERS must" if kafka else " must") +
             " be set outside the embedded mode")
    from devstack import services

    try:
        db, broker = services.endpoints(found, kafka=kafka)
    except services.ServiceError as exc:
        fail(str(exc))
    return found.model_copy(update={"database_url": found.database_url or db,
                                    "kafka_bootstrap_servers": found.kafka_bootstrap_servers or broker})


def migrated(s: Settings) -> Settings:
    """Stop with "run carprice migrate" unless the schema is the one this code needs."""
    from infra.pg import database_url
    from infra.schema import check_url

    check_url(database_url(s))
    return s


def fail(message: str, code: int = 1) -> None:
    """Print an error and exit."""
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)
