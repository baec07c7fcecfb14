"""Operator commands: audit by replay and benchmarks."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
import typer
from rich.table import Table

from cli.context import console, fail, migrated, settings
from cli.processes import topics, write_side

if TYPE_CHECKING:
    from commands.application import CarpriceApp
    from domain.catalog import ModelFingerprint

projections = typer.Typer(help="The read tables.")
log = logging.getLogger("carprice")


def migrate() -> None:
    """Bring the database's schema to the newest migration (idempotent): the only DDL."""
    import migrations
    from infra.logs import setup

    s = settings(kafka=False)
    setup("migrate", s)
    migrations.upgrade(s.database_url or "")
    console.print(f"schema at revision {migrations.head()}: " +
                  "; ".join(f"{rev} {doc.splitlines()[0]}" for rev, doc in migrations.history()))


def init() -> None:
    """Prepare a deployment (idempotent): migrate the schema, create the topics, train models
    if none are registered."""
    import migrations
    from cli.models import train_models
    from infra.logs import setup

    s = settings()
    setup("init", s)
    migrations.upgrade(s.database_url or "")
    log.info("init: schema at revision %s", migrations.head())
    topics(s)
    log.info("init: topics %s and %s have %d partitions or more", s.events_topic, s.dead_letter_topic,
             s.kafka_partitions)
    train_models(s, if_missing=True)
    log.info("init: done")


def audit(
    email: str = typer.Argument(None, help="The user whose wallet to replay, or `receipt`."),
    receipt_args: list[str] = typer.Argument(None, metavar="[JOB_ID [FILE]]", help=(  # noqa: B008
        "After `receipt`: the job, and its receipt to check (a JSON file, or - for stdin; "
        "without one the store's receipt is printed).")),
    as_of: str = typer.Option(None, "--as-of", help="ISO time: the balance as of then."),
    all_wallets: bool = typer.Option(False, "--all", help="Replay every wallet."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Replay a wallet's events into its ledger (or check every wallet with --all); `audit
    receipt JOB_ID FILE` checks a receipt against the event store and says what differs."""
    from commands.audit import replay_ledger
    from domain.errors import InvalidCredentials

    if email == "receipt":
        _audit_receipt(receipt_args or [])
        return
    if receipt_args:
        fail(f"unexpected arguments {' '.join(receipt_args)!r} (a receipt: audit receipt JOB_ID FILE)", 2)
    if not email and not all_wallets:
        fail("give an EMAIL, `receipt JOB_ID [FILE]` or --all", 2)
    when = datetime.fromisoformat(as_of) if as_of else None
    if when is not None and when.tzinfo is None:
        fail("--as-of needs a time zone, e.g. 2026-12-01T10:00:00+00:00", 2)
    s = migrated(settings(kafka=False))
    app = write_side(s)
    try:
        if all_wallets:
            _audit_all(app, s.database_url or "", when, as_json)
            return
        try:
            ledger = replay_ledger(app, app.user_id_of(email), when)
        except InvalidCredentials:
            ledger = None
        if ledger is None or not ledger.entries:
            console.print(f"no wallet for {email}")
            raise typer.Exit(1)
        entries = [{"time": e.time.isoformat(), "type": e.type, "amount": e.amount,
                    "job_id": str(e.job_id) if e.job_id else None, "balance": e.balance,
                    "reserved": e.reserved, "detail": e.detail} for e in ledger.entries]
        if as_json:
            sys.stdout.write(json.dumps({"email": email, "as_of": as_of, "balance": ledger.balance,
                                         "entries": entries}, indent=2) + "\n")
            return
        _emit(entries, False, ("time", "type", "amount", "job_id", "balance", "reserved", "detail"))
        console.print(f"balance{' as of ' + as_of if as_of else ''}: [bold]{ledger.balance}[/] "
                      f"available, {ledger.reserved} reserved, {ledger.promotional} promotional")
    finally:
        app.close()


def _read_receipt(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()  # noqa: SIM115
        found = json.loads(text)
    except OSError as exc:
        fail(f"cannot read the receipt {source}: {exc.strerror or exc}", 2)
    except (ValueError, RecursionError) as exc:
        fail(f"the receipt {source} is not JSON: {exc}", 2)
    if not isinstance(found, dict):
        fail(f"the receipt {source} is not a JSON object", 2)
    return found


def _audit_receipt(args: list[str]) -> None:
    """Rebuild a job's receipt from the store; with a receipt, exit 1 on any difference."""
    from commands.receipts import differences, receipt
    from domain.errors import JobNotFound
    from model_registry.store import Registry

    if not 1 <= len(args) <= 2:
        fail("usage: carprice audit receipt JOB_ID [FILE|-]", 2)
    try:
        job_id = UUID(args[0])
    except ValueError:
        fail(f"{args[0][:64]!r} is not a job id", 2)
    claimed = _read_receipt(args[1]) if len(args) == 2 else None
    s = migrated(settings(kafka=False))
    registry = Registry(s.registry_dir)
    checked: list[ModelFingerprint | None] = []

    def fingerprint(name: str, version: str) -> ModelFingerprint | None:
        checked.append(registry.fingerprint(name, version, check=True))
        return checked[-1]

    app = write_side(s, registry)
    try:
        try:
            truth = receipt(app, app.job(job_id), fingerprint)
        except JobNotFound:
            fail(f"no job {job_id} in the event store", 1)
    finally:
        app.close()
    if claimed is None:
        sys.stdout.write(json.dumps(truth, indent=2) + "\n")
        return
    found = differences(claimed, truth)
    model = checked[0] if checked else None
    if model is None:
        console.print(f"[yellow]note:[/] {truth['model']['name']} v{truth['model']['version']} is "
                      "not in this registry: its sha256s are not checked")
    elif model.artifact_ok is False:
        found.append(f"model: the artifact of {model.name} v{model.version} on disk no longer "
                     "matches the sha256 its card and this receipt record")
    if found:
        console.print(f"[red]receipt of job {job_id} differs from the event store[/] "
                      f"({len(found)} {'field' if len(found) == 1 else 'fields'}):", soft_wrap=True)
        for line in found:
            console.print(f"  {line}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    c = truth["credits"]
    console.print(f"receipt of job {job_id} verified against the event store: {truth['status']}, "
                  f"{c['paid']} paid of {c['held'] or c['price']} held, {c['released']} given back; "
                  f"{len(truth['events'])} events at positions "
                  f"{', '.join(str(e['position']) for e in truth['events'])}", soft_wrap=True)


def _audit_all(app: CarpriceApp, db: str, when: datetime | None, as_json: bool) -> None:
    """Replay every wallet and compare with the balances read table; exit 1 on a difference."""
    from commands.audit import all_wallet_users, replay_ledger

    projected: dict[UUID, tuple[int, int, int]] = {}
    with psycopg.connect(db, autocommit=True) as conn:
        try:
            projected = {u: (int(b), int(r), int(p)) for u, b, r, p in conn.execute(
                "SELECT user_id, balance, reserved, promotional FROM balances").fetchall()}
        except psycopg.errors.UndefinedTable:
            pass  # no projector ever ran: every wallet differs
    rows = []
    for user in all_wallet_users(app):
        ledger = replay_ledger(app, user, when)
        shown = projected.get(user)
        rows.append({"user_id": str(user), "replayed_balance": ledger.balance,
                     "projected_balance": shown[0] if shown else None,
                     "reserved": ledger.reserved, "promotional": ledger.promotional,
                     "consistent": when is not None or shown == (ledger.balance, ledger.reserved,
                                                                 ledger.promotional)})
    _emit(rows, as_json, ("user_id", "replayed_balance", "projected_balance", "reserved",
                          "promotional", "consistent"))
    differ = [r for r in rows if not r["consistent"]]
    if not as_json:
        console.print(f"{len(rows)} wallets replayed; {len(differ)} differ from the balances table"
                      + (" (a projection still catching up, or one to rebuild)" if differ else ""))
    if differ:
        raise typer.Exit(1)


def _emit(rows: Sequence[Mapping[str, object]], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row[c] if row[c] is not None else "") for c in columns))
    console.print(table)




@projections.command("rebuild")
def projections_rebuild(name: str = typer.Argument(None, help="balances or jobs; all if omitted")) -> None:
    """Rebuild from the event store into fresh tables and swap them in atomically."""
    from projections.rebuild import rebuild
    from projections.registry import NAMES

    names = [name] if name else list(NAMES)
    if any(n not in NAMES for n in names):
        fail(f"unknown projection {name!r}; known: {', '.join(NAMES)}", 2)
    s = migrated(settings(kafka=False))
    app = write_side(s)

    def progress(seen: int, position: int, rate: float) -> None:
        console.print(f"  {seen} events read, position {position}, {rate:,.0f} events/s")

    try:
        with psycopg.connect(s.database_url or "", autocommit=True) as conn:
            for n in names:
                console.print(f"rebuilding {n} ...")
                total = rebuild(conn, n, app.published_after, progress)
                console.print(f"rebuilt {n} from {total} events and swapped it in")
    finally:
        app.close()


@projections.command("status")
def projections_status() -> None:
    """Each projection's lag per partition, and its unrepaired faults."""
    from infra import positions
    from infra.kafka_client import EndOffsets
    from projections.state import fault_counts, idle_seconds, lag, offsets, stalled

    s = migrated(settings())
    app = write_side(s)
    ends = EndOffsets(s.kafka_bootstrap_servers or "", s.events_topic)
    try:
        head = app.head_position()
        with psycopg.connect(s.database_url or "", autocommit=True) as conn:
            relay = positions.position(conn, s.events_topic)
            end = ends()
            behind = lag(conn, s.events_topic, end, head - relay)
            faults = fault_counts(conn)
            known = offsets(conn, s.events_topic)
            stuck = stalled(lag(conn, s.events_topic, end, 0), idle_seconds(conn, s.events_topic),
                            s.projection_stall_seconds)
        console.print(f"store head {head}; relay at {relay} ({head - relay} unpublished)")
        for name, events in behind.items():
            mine = {o.partition: o.kafka_offset + 1 for o in known if o.projection == name}
            worst = max(end, key=lambda p: end[p] - mine.get(p, 0), default=None)
            where = (f"; furthest behind: partition {worst} ({end[worst] - mine.get(worst, 0)} "
                     "messages)") if worst is not None and events else ""
            console.print(f"{name:<10} lag {events:>6} events{where}; unrepaired faults {faults[name]}"
                          + (f"; STALLED (no progress for "
                             f"{'ever' if stuck[name] is None else f'{stuck[name]:.0f} s'})"
                             if name in stuck else ""))
    finally:
        ends.close()
        app.close()
