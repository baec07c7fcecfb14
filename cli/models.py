"""`carprice train` and `carprice models`: the registry and the price list."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.context import console, fail
from infra.settings import Settings

models = typer.Typer(help="The model registry and the price list.")


def train(
    model: list[str] = typer.Option(None, "--model", "-m", help="Train only these models."),  # noqa: B008
    if_missing: bool = typer.Option(False, "--if-missing", help="Only when none is registered."),
    data: Path = typer.Option(None, "--data", help="Train on this CSV (the dataset's columns) "  # noqa: B008
                              "instead of the shipped dataset; checked whole first."),
) -> None:
    """Cross-validate, fit and register the models; hand the prices out by rank; print the table."""
    if data is not None and not data.is_file():
        fail(f"--data: no file {data}")
    train_models(Settings(), model or None, if_missing, data)


def train_models(settings: Settings, names: list[str] | None = None, if_missing: bool = False,
                 data: Path | None = None) -> None:
    """What `carprice train` does (also run by `init` and `up`)."""
    from model_registry.features import CsvProblem, training_data
    from model_registry.store import Registry
    from model_registry.training import train_all

    registry = Registry(settings.registry_dir)
    if data is not None:
        try:
            training_data(data)  # checked whole before any fold runs: every bad row, at once
        except CsvProblem as exc:
            fail(f"--data: {exc}")
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

        folds, repeats = settings.cv
        cards = train_all(settings.data_dir, registry, names=names, progress=progress, n_splits=folds,
                          n_repeats=repeats, data_file=data)
    console.print(f"CV: {folds} folds x {repeats} repeats; registered in {registry.root}")
    if cards:
        console.print(f"data: {cards[0].data_file}, {cards[0].training_rows} cars, "
                      f"sha256 {cards[0].data_sha256}")
    _print(registry)


@models.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The latest version of every model: price, CV R2 / RMSE / MAE, range coverage and width."""
    from model_registry.store import Registry

    registry = Registry(Settings().registry_dir)
    cards = registry.latest_cards()
    if as_json:
        rows = [{"name": c.name, "version": c.version, "price": registry.price(c.name),
                 "metrics": c.metrics, "cv": c.cv, "sha256": c.sha256, "created_at": c.created_at,
                 "interval": c.interval, "explain_price": c.explain_price}
                for c in cards]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not cards:
        fail("no models registered: run `carprice train`")
    _print(registry)


@models.command("price")
def models_price(
    name: str = typer.Argument(..., help="The model."),
    credits: int = typer.Argument(..., min=1, help="Its new price in credits."),
) -> None:
    """Set a model's price (no training; jobs already accepted keep what they were charged).
    Refused if a better model would no longer cost more."""
    from model_registry.prices import PriceOrderError, check_order
    from model_registry.store import Registry

    registry = Registry(Settings().registry_dir)
    if name not in registry.names():
        fail(f"unknown model {name!r}; registered: {', '.join(registry.names()) or 'none'}")
    prices = {c.name: registry.price(c.name) for c in registry.latest_cards()} | {name: credits}
    try:
        check_order(prices, {c.name: c.metrics["r2"]["mean"] for c in registry.latest_cards()})
    except PriceOrderError as exc:
        fail(str(exc))
    registry.prices.put(prices)
    _print(registry)


def _print(registry: object) -> None:
    table = Table("model", "version", "price", "explain +", "R2", "RMSE", "MAE",
                  "80 % range coverage", "range width ($)")
    for c in registry.latest_cards():  # type: ignore[attr-defined]
        m = c.metrics

        def cell(name: str, digits: int, m: dict = m) -> str:  # type: ignore[type-arg]
            if name not in m:
                return "-"
            return f"{m[name]['mean']:.{digits}f} ± {m[name]['std']:.{digits}f}"

        table.add_row(
            c.name, c.version, str(registry.price(c.name)),  # type: ignore[attr-defined]
            str(c.explain_price or "-"), cell("r2", 3), cell("rmse", 0), cell("mae", 0),
            cell("coverage", 3), cell("width", 0),
        )
    console.print(table)
