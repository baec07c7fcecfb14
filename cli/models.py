"""`carprice train` and `carprice models`: the registry and the price list."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.context import console, fail
from infra.settings import Settings

if TYPE_CHECKING:
    from commands.application import CarpriceApp
    from model_registry.store import Registry

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

    registry = Registry(settings.registry_dir)
    if data is not None:
        try:
            training_data(data)  # checked whole before any fold runs: every bad row, at once
        except CsvProblem as exc:
            fail(f"--data: {exc}")
    if if_missing and registry.names():
        console.print(f"models already registered in {registry.root}: {', '.join(registry.names())}")
        return
    if not registry.names():  # the first training: no champion to rank against yet
        _train(settings, registry, names, data)
        return
    with _following(settings) as (followed, _):  # ranked against the champions promoted
        _train(settings, followed, names, data)


def _train(settings: Settings, registry: Registry, names: list[str] | None, data: Path | None) -> None:
    from model_registry.training import train_all

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
    for card in cards:
        if card.challenger:
            console.print(f"{card.name} v{card.version} entered as a challenger: it prices a share of "
                          f"the jobs in the shadow until `carprice models promote {card.name} "
                          f"{card.version} --why ...`")
    _print(registry)


@contextmanager
def _following(settings: Settings) -> Iterator[tuple[Registry, CarpriceApp | None]]:
    """The registry, following the promotions recorded in the event store while the block runs;
    when the store does not answer, the registry's own rule (no promotion) and None."""
    from cli.processes import write_side
    from model_registry.store import Registry

    registry = Registry(settings.registry_dir)
    app: CarpriceApp | None = None
    try:
        app = write_side(settings, registry)
        app.promoted_champion("-")  # reach the store now, not halfway through a command
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - said plainly (NoDatabase exits)
        if app is not None:
            with suppress(Exception):
                app.close()
        Console(stderr=True).print(
            f"[yellow]note:[/] the event store does not answer ({type(exc).__name__}); champions "
            "as the registry has them, without promotions")
        registry.follow(lambda name: None)
        yield registry, None
        return
    try:
        yield registry, app
    finally:
        app.close()


@contextmanager
def _store(settings: Settings) -> Iterator[tuple[Registry, CarpriceApp]]:
    """The registry and the event store, which must answer: promotions are recorded there."""
    with _following(settings) as (registry, app):
        if app is None:
            fail("start the services (`carprice services up`) or set DATABASE_URL: promotions and "
                 "rollbacks are events in the store")
        assert app is not None  # noqa: S101 - fail() exits
        yield registry, app


@models.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The champion of every model (price, CV R2 / RMSE / MAE, range coverage and width) and
    its challengers."""
    with _following(Settings()) as (registry, _):
        _list(registry, as_json)


def _list(registry: Registry, as_json: bool) -> None:
    cards = registry.champion_cards()
    if as_json:
        rows = [{"name": c.name, "version": c.version, "price": registry.price(c.name),
                 "metrics": c.metrics, "cv": c.cv, "sha256": c.sha256, "created_at": c.created_at,
                 "interval": c.interval, "explain_price": c.explain_price,
                 "challengers": registry.challengers(c.name)}
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

    with _following(Settings()) as (registry, _):
        if name not in registry.names():
            fail(f"unknown model {name!r}; registered: {', '.join(registry.names()) or 'none'}")
        prices = {c.name: registry.price(c.name) for c in registry.champion_cards()} | {name: credits}
        try:
            check_order(prices, {c.name: c.metrics["r2"]["mean"] for c in registry.champion_cards()})
        except PriceOrderError as exc:
            fail(str(exc))
        registry.prices.put(prices)
        _print(registry)


@models.command("promote")
def models_promote(
    name: str = typer.Argument(..., help="The model."),
    version: str = typer.Argument(..., help="The version to serve paid jobs from now on."),
    why: str = typer.Option(..., "--why", help="Why (recorded with the promotion)."),
    by: str = typer.Option(None, "--by", help="Who (default: user@host)."),
    force: bool = typer.Option(False, "--force", help="Promote a version worse on CV beyond noise."),
) -> None:
    """Make VERSION the champion of NAME: new paid jobs use it (accepted ones keep theirs), the
    former champion can be rolled back to, and prices are handed out again by rank."""
    from domain.release import worse_beyond_noise

    with _store(Settings()) as (registry, app):
        if version not in registry.versions(name):
            fail(f"{name} has no version {version!r}; registered: "
                 f"{', '.join(registry.versions(name)) or 'none'}")
        current = registry.champion(name)
        worse = worse_beyond_noise(registry.card(name, version).metrics,
                                   registry.card(name, current).metrics)
        if worse and not force:
            fail(f"{name} v{version} was not promoted: {worse} (champion v{current}). "
                 "Promote it anyway with --force.")
        if not app.promote_model(name, version, current, by or _who(), why, forced=bool(worse)):
            console.print(f"{name} v{version} is already the champion")
            return
        console.print(f"{name}: v{version} promoted (was v{current})"
                      + (" with --force" if worse else ""))
        _rerank(registry)


@models.command("rollback")
def models_rollback(
    name: str = typer.Argument(..., help="The model."),
    why: str = typer.Option(..., "--why", help="Why (recorded with the rollback)."),
    by: str = typer.Option(None, "--by", help="Who (default: user@host)."),
) -> None:
    """Return NAME to the champion before the current one (the current one becomes a
    challenger again if it is newer); prices follow the rank."""
    from domain.errors import DomainError

    with _store(Settings()) as (registry, app):
        if name not in registry.names():
            fail(f"unknown model {name!r}; registered: {', '.join(registry.names()) or 'none'}")
        was = registry.champion(name)
        try:
            now = app.roll_back_model(name, by or _who(), why)
        except DomainError as exc:
            fail(str(exc))
        console.print(f"{name}: rolled back to v{now} (was v{was})")
        _rerank(registry)


@models.command("history")
def models_history(name: str = typer.Argument(..., help="The model."),
                   as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every promotion and rollback of NAME: when, who, why, from which version to which."""
    with _store(Settings()) as (registry, app):
        if as_json:
            sys.stdout.write(json.dumps([{
                "at": r.at.isoformat(), "what": r.kind, "version": r.version, "from": r.previous,
                "by": r.by, "why": r.why, "forced": r.forced} for r in app.release_history(name)],
                indent=2) + "\n")
            return
        table = Table("when (UTC)", "what", "version", "from", "by", "why", "forced")
        for r in app.release_history(name):
            table.add_row(r.at.strftime("%Y-%m-%d %H:%M:%S"), r.kind, r.version, r.previous or "-",
                          r.by, r.why, "yes" if r.forced else "")
        console.print(table)
        console.print(f"champion: v{registry.champion(name)}" if name in registry.names()
                      else f"unknown model {name!r}")


def _who() -> str:
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


def _rerank(registry: Registry) -> None:
    """Hand the price points out again by the champions' CV rank (unchanged when the rank is)."""
    from model_registry.prices import by_rank

    registry.refresh()
    before = registry.prices.get()
    prices = by_rank({c.name: c.metrics["r2"]["mean"] for c in registry.champion_cards()},
                     list(before.values()))
    if prices != before:
        registry.prices.put(prices)
        console.print("prices follow the new rank: " + ", ".join(
            f"{n} {before.get(n, '-')} -> {p}" for n, p in prices.items() if before.get(n) != p))
    _print(registry)


def _print(registry: Registry) -> None:
    table = Table("model", "version", "price", "explain +", "R2", "RMSE", "MAE",
                  "80 % range coverage", "range width ($)")
    rows = [(card, challenger) for c in registry.champion_cards()
            for card, challenger in [(c, False), *((registry.card(c.name, v), True)
                                                   for v in registry.challengers(c.name))]]
    for c, challenger in rows:
        m = c.metrics

        def cell(name: str, digits: int, m: dict = m) -> str:  # type: ignore[type-arg]
            if name not in m:
                return "-"
            return f"{m[name]['mean']:.{digits}f} ± {m[name]['std']:.{digits}f}"

        table.add_row(
            c.name, f"{c.version} (challenger)" if challenger else c.version,
            "shadow" if challenger else str(registry.price(c.name)),
            str(c.explain_price or "-"), cell("r2", 3), cell("rmse", 0), cell("mae", 0),
            cell("coverage", 3), cell("width", 0),
        )
    console.print(table)
