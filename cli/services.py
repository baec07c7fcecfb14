"""`carprice services`: PostgreSQL and the broker of the dev stack, in the background."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.context import console, fail
from infra.settings import Settings

services = typer.Typer(help="Start, stop and inspect PostgreSQL and the Kafka broker.")
KINDS = ("tansu", "apache", "apache-cluster")


@services.command("up")
def services_up(
    kafka: str = typer.Option(None, "--kafka", help="tansu, apache or apache-cluster (3 nodes; "
                              "default: KAFKA_IMPL)"),
) -> None:
    """Start PostgreSQL and the broker (unless external) and print their addresses."""
    from devstack import services as stack

    if kafka not in (None, *KINDS):
        fail(f"--kafka must be tansu, apache or apache-cluster, not {kafka!r}", 2)
    try:
        result = stack.up(Settings(**({"KAFKA_IMPL": kafka} if kafka else {})))  # type: ignore[arg-type]
    except stack.ServiceError as exc:
        fail(str(exc))
    _print(result)


@services.command("down")
def services_down() -> None:
    """Stop what `services up` started, by pid."""
    from devstack import services as stack

    for line in stack.down(Settings()):
        console.print(line)


@services.command("status")
def services_status() -> None:
    """Print each service's address and whether it runs."""
    from devstack import services as stack

    result = stack.status(Settings())
    _print(result)
    if not all(s.running for s in result):
        raise typer.Exit(3)


def _print(result: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "address", "pid", "state", "note")
    for s in result:
        state = "[green]running[/]" if s.running else "[red]down[/]"
        table.add_row(s.name, s.address, str(s.pid or "-"), state, s.note)
    console.print(table)
