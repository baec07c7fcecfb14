"""The `carprice` command line: the composition root of every process."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infra import cli_dlq, cli_ops, cli_run, cli_up
from infra.settings import Settings

app = typer.Typer(help="carprice: car price predictions billed in credits.", no_args_is_help=True)
services_app = typer.Typer(help="Start, stop and inspect PostgreSQL and the Kafka broker.")
models_app = typer.Typer(help="The model registry.")
app.add_typer(services_app, name="services")
app.add_typer(models_app, name="models")
app.command()(cli_up.up)
app.command()(cli_ops.audit)
app.add_typer(cli_ops.bench_app, name="bench")
app.command()(cli_run.init)
app.command()(cli_run.relay)
app.command()(cli_run.reaper)
app.add_typer(cli_dlq.dlq_app, name="dlq")
app.command()(cli_run.api)
app.command()(cli_run.ui)
app.add_typer(cli_run.consume_app, name="consume")
app.add_typer(cli_run.projections_app, name="projections")
console = Console()


@services_app.command("up")
def services_up(
    kafka: str = typer.Option(None, "--kafka", help="tansu, apache or apache-cluster (3 nodes; "
                              "default: KAFKA_IMPL)"),
) -> None:
    """Start PostgreSQL and the broker (unless external) and print their addresses."""
    from infra import services

    if kafka not in (None, "tansu", "apache", "apache-cluster"):
        console.print(f"[red]error:[/] --kafka must be tansu, apache or apache-cluster, not {kafka!r}")
        raise typer.Exit(2)
    try:
        result = services.up(Settings(**({"KAFKA_IMPL": kafka} if kafka else {})))  # type: ignore[arg-type]
    except services.ServiceError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    _print_services(result)


@services_app.command("down")
def services_down() -> None:
    """Stop what `services up` started, by pid."""
    from infra import services

    for line in services.down(Settings()):
        console.print(line)


@services_app.command("status")
def services_status() -> None:
    """Print each service's address and whether it runs."""
    from infra import services

    result = services.status(Settings())
    _print_services(result)
    if not all(s.running for s in result):
        raise typer.Exit(3)


def _print_services(result: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "address", "pid", "state", "note")
    for s in result:
        state = "[green]running[/]" if s.running else "[red]down[/]"
        table.add_row(s.name, s.address, str(s.pid or "-"), state, s.note)
    console.print(table)


@app.command()
def train(
    model: list[str] = typer.Option(None, "--model", "-m", help="Train only these models."),  # noqa: B008
    if_missing: bool = typer.Option(False, "--if-missing", help="Only when none is registered."),
) -> None:
    """Cross-validate, fit and register the models; print the CV table."""
    from model_registry.store import Registry
    from model_registry.training import N_REPEATS, N_SPLITS, train_all

    settings = Settings()
    registry = Registry(settings.registry_dir)
    if if_missing and registry.names():
        console.print(f"models already registered in {registry.root}: {', '.join(registry.names())}")
        return
    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("folds"), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, object] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)  # type: ignore[arg-type]

        cards = train_all(settings.data_dir, registry, names=model or None, progress=progress)
    console.print(f"CV: {N_SPLITS} folds x {N_REPEATS} repeats; registered in {registry.root}")
    _print_cards(cards)


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The latest version of every model: price and CV R2 / RMSE / MAE."""
    from model_registry.store import Registry

    cards = Registry(Settings().registry_dir).latest_cards()
    if as_json:
        rows = [{"name": c.name, "version": c.version, "price": c.price, "metrics": c.metrics,
                 "cv": c.cv, "sha256": c.sha256, "created_at": c.created_at} for c in cards]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not cards:
        console.print("no models registered: run `carprice train`")
        raise typer.Exit(1)
    _print_cards(cards)


def _print_cards(cards: list) -> None:  # type: ignore[type-arg]
    table = Table("model", "version", "price", "R2", "RMSE", "MAE")
    for c in cards:
        m = c.metrics
        table.add_row(
            c.name, c.version, str(c.price),
            f"{m['r2']['mean']:.3f} ± {m['r2']['std']:.3f}",
            f"{m['rmse']['mean']:.0f} ± {m['rmse']['std']:.0f}",
            f"{m['mae']['mean']:.0f} ± {m['mae']['std']:.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    app()
