"""Operator commands: audit by replay and benchmarks."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from infra.settings import Settings

console = Console()
bench_app = typer.Typer(help="Benchmarks (figures, never pass/fail).")


def audit(
    email: str = typer.Argument(None, help="The user whose wallet to replay."),
    as_of: str = typer.Option(None, "--as-of", help="ISO time: the balance as of then."),
    all_wallets: bool = typer.Option(False, "--all", help="Replay every wallet."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Replay a wallet's events into its ledger (or check every wallet with --all)."""
    from commands.audit import replay_ledger
    from domain.ids import user_id_for
    from infra.bootstrap import build_app

    if not email and not all_wallets:
        console.print("give an EMAIL or --all")
        raise typer.Exit(2)
    when = datetime.fromisoformat(as_of) if as_of else None
    if when is not None and when.tzinfo is None:
        console.print("--as-of needs a time zone, e.g. 2026-12-01T10:00:00+00:00")
        raise typer.Exit(2)
    app = build_app(Settings())
    try:
        if all_wallets:
            _audit_all(app, when, as_json)
            return
        ledger = replay_ledger(app, user_id_for(email), when)
        if not ledger.entries:
            console.print(f"no wallet for {email}")
            raise typer.Exit(1)
        entries = [{"time": e.time.isoformat(), "type": e.type, "amount": e.amount,
                    "job_id": str(e.job_id) if e.job_id else None, "balance": e.balance,
                    "detail": e.detail} for e in ledger.entries]
        if as_json:
            sys.stdout.write(json.dumps({"email": email, "as_of": as_of, "balance": ledger.balance,
                                         "entries": entries}, indent=2) + "\n")
            return
        _emit(entries, False, ("time", "type", "amount", "job_id", "balance", "detail"))
        console.print(f"balance{' as of ' + as_of if as_of else ''}: [bold]{ledger.balance}[/]")
    finally:
        app.close()


def _audit_all(app: Any, when: datetime | None, as_json: bool) -> None:
    """Replay every wallet and compare with the balances read table; exit 1 on a difference."""
    import psycopg

    from commands.audit import all_wallet_users, replay_ledger
    from infra.bootstrap import database_url

    projected: dict[Any, int] = {}
    with psycopg.connect(database_url(Settings()), autocommit=True) as conn:
        try:
            projected = dict(conn.execute("SELECT user_id, balance FROM balances").fetchall())
        except psycopg.errors.UndefinedTable:
            pass  # no projector ever ran: every wallet differs
    rows = []
    for user in all_wallet_users(app):
        replayed = replay_ledger(app, user, when).balance
        shown = projected.get(user)
        rows.append({"user_id": str(user), "replayed_balance": replayed, "projected_balance": shown,
                     "consistent": when is not None or shown == replayed})
    _emit(rows, as_json, ("user_id", "replayed_balance", "projected_balance", "consistent"))
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


@bench_app.command("write")
def bench_write(
    threads: str = typer.Option("1,8", help="Comma-separated thread counts."),
    seconds: float = typer.Option(10.0, help="Seconds per thread count."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """request_prediction commands/s and p50/p99 latency against the real event store."""
    from infra.bench import bench_write as run
    from infra.bootstrap import build_app

    counts = [int(t) for t in threads.split(",")]
    settings = Settings(DB_POOL_SIZE=2 * max(counts) + 4)  # type: ignore[call-arg]
    app = build_app(settings)
    try:
        figures = run(app, counts, seconds)
    finally:
        app.close()
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    table = Table("threads", "commands/s", "p50 ms", "p95 ms", "p99 ms")
    for r in figures["results"]:
        lat = r["latency_ms"]
        table.add_row(str(r["threads"]), str(r["commands_per_s"]), str(lat["p50"]),
                      str(lat["p95"]), str(lat["p99"]))
    console.print(table)


def _report(figures: dict[str, Any], as_json: bool) -> None:
    """Print pipeline benchmark figures as JSON or one readable line."""
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    lat = figures["latency_ms"]
    console.print(f"{figures['benchmark']}: {figures['clients']} clients, {figures['seconds']} s: "
                  f"{figures['jobs_per_s']} jobs/s; latency p50 {lat['p50']} ms, p95 {lat['p95']} "
                  f"ms, p99 {lat['p99']} ms; logs {figures['logs']}")


@bench_app.command("e2e")
def bench_e2e(
    clients: int = typer.Option(20, help="Concurrent closed-loop clients."),
    seconds: float = typer.Option(20.0, help="How long the clients submit."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Jobs finished/s and request->visible-result latency through relay, inference, projector."""
    from infra.bench_e2e import bench_e2e as run
    from infra.services import endpoints

    settings = Settings()
    _report(run(settings, *endpoints(settings), clients, seconds), as_json)


@bench_app.command("api")
def bench_api(
    clients: int = typer.Option(20, help="Concurrent HTTP clients."),
    seconds: float = typer.Option(20.0, help="How long the clients submit."),
    workers: int = typer.Option(2, help="API worker processes."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The SEED_API flow over HTTP: jobs/s and POST /predict -> finished latency."""
    from infra.bench_api import bench_api as run
    from infra.services import endpoints

    settings = Settings()
    _report(run(settings, *endpoints(settings), clients, seconds, workers), as_json)


@bench_app.command("chaos")
def bench_chaos(
    clients: int = typer.Option(8, help="Concurrent HTTP clients submitting jobs."),
    seconds: float = typer.Option(120.0, help="How long the clients submit (the faults are spread over it)."),
    deadline: int = typer.Option(60, help="The jobs' deadline in seconds (the reaper expires them after)."),
    kill_broker: bool = typer.Option(True, "--kill-broker/--no-kill-broker",
                                     help="SIGKILL and restart the embedded broker too."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """A fault soak: SIGKILL inference, projector, relay, an API worker and the broker in turn,
    pause the projector, send poison; then check every job ended and the money is exact."""
    from infra.bench_chaos import bench_chaos as run
    from infra.bench_chaos import kill_and_restart_broker
    from infra.services import endpoints

    settings = Settings()
    broker = kill_and_restart_broker(settings) if kill_broker and not settings.kafka_bootstrap_servers \
        else None
    figures = run(settings, *endpoints(settings), clients, seconds, deadline, broker)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    console.print(f"chaos: {figures['clients']} clients for {figures['seconds']} s on "
                  f"{settings.kafka_impl if not settings.kafka_bootstrap_servers else 'an external broker'}; "
                  f"job deadline {figures['job_deadline_s']} s")
    for line in figures["faults"]:
        console.print(f"  {line}")
    table = Table("jobs accepted", "finished", "failed + refunded", "failed, not refunded", "still open",
                  "charged twice", "audit mismatches", "5xx")
    table.add_row(*(str(figures[k]) for k in ("jobs_accepted", "finished", "failed_and_refunded",
                                                  "failed_not_refunded", "still_open", "charged_twice",
                                                  "audit_mismatches", "http_5xx")))
    console.print(table)
    console.print(f"connection errors (requests in flight on the killed API worker): "
                  f"{figures['connection_errors']}; poison requests answered {figures['poison_statuses']}; "
                  f"logs {figures['logs']}")


@bench_app.command("stall")
def bench_stall(
    clients: int = typer.Option(30, help="Concurrent HTTP clients."),
    seconds: float = typer.Option(15.0, help="How long, with the projector paused."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The API with the projector paused: latency of top-ups, reads, jobs and /healthz."""
    from infra.bench_stall import bench_stall as run
    from infra.services import endpoints

    settings = Settings()
    figures = run(settings, *endpoints(settings), clients, seconds)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    table = Table("request", "count", "p50 ms", "p95 ms", "p99 ms", "max ms")
    for kind, lat in figures["latency_ms"].items():
        table.add_row(kind, str(figures["requests"][kind]), str(lat["p50"]), str(lat["p95"]),
                      str(lat["p99"]), str(lat["max"]))
    console.print(f"stall: {figures['clients']} clients, {figures['seconds']} s, projector paused")
    console.print(table)
    console.print(f"{figures['deposits_per_s']} deposits/s; reads stale {figures['reads_stale']}, fresh "
                  f"{figures['reads_fresh']}; 5xx {figures['http_5xx']}")
