"""`carprice bench`: benchmarks and the fault soak; figures, never pass/fail."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cli.context import console, migrated, settings
from infra.settings import Settings

bench = typer.Typer(help="Benchmarks (figures, never pass/fail).")


@bench.command("write")
def bench_write(
    threads: str = typer.Option("1,8", help="Comma-separated thread counts."),
    seconds: float = typer.Option(10.0, help="Seconds per thread count."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """request_prediction commands/s and p50/p99 latency against the real event store."""
    from bench.write import bench_write as run
    from cli.processes import write_side

    counts = [int(t) for t in threads.split(",")]
    app = write_side(migrated(settings(kafka=False, DB_POOL_SIZE=str(2 * max(counts) + 4))))
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


@bench.command("e2e")
def bench_e2e(
    clients: int = typer.Option(20, help="Concurrent closed-loop clients."),
    seconds: float = typer.Option(20.0, help="How long the clients submit."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Jobs finished/s and request->visible-result latency through relay, inference, projector."""
    from bench.e2e import bench_e2e as run
    s = migrated(settings())
    _report(run(s, s.database_url or "", s.kafka_bootstrap_servers or "", clients, seconds), as_json)


@bench.command("ledger")
def bench_ledger() -> None:
    """Not a benchmark: a statement with finished, failed and expired jobs, a receipt, and what
    erasing the account leaves (the projector should be running for the read tables)."""
    from bench.ledger_demo import ledger_demo

    ledger_demo(migrated(settings(kafka=False)))


@bench.command("api")
def bench_api(
    clients: int = typer.Option(20, help="Concurrent HTTP clients."),
    seconds: float = typer.Option(20.0, help="How long the clients submit (per run)."),
    workers: int = typer.Option(2, help="API worker processes."),
    mode: str = typer.Option("poll", help="poll (GET every --poll-ms) or long-poll (?wait=30)."),
    poll_ms: float = typer.Option(50.0, help="The poll interval of poll clients."),
    profile: bool = typer.Option(False, "--profile", help=(
        "CPU ms per finished job of every process (submits and reads in two API processes).")),
    runs: int = typer.Option(1, help="Runs on the same stack (RSS after each: growth shows)."),
    inference: int = typer.Option(2, min=1, help="Inference consumers (`carprice up` runs 2)."),
    py_spy: str = typer.Option("", "--py-spy", metavar="DIR", help=(
        "Sample every Python process with py-spy into this directory (first run) and print where "
        "each one's CPU per job goes (implies --profile).")),
    baseline: bool = typer.Option(True, help=(
        "Then the same models behind a bare endpoint (`bench baseline`), and the ratios.")),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The SEED_API flow over HTTP: jobs/s, POST /predict -> ended latency, CPU per job; and
    (--baseline) the same against a bare model endpoint, measured in the same run."""
    from bench.api import bench_api as run

    if mode not in ("poll", "long-poll"):
        raise typer.BadParameter("poll or long-poll", param_hint="--mode")
    spy_dir = Path(py_spy) if py_spy else None
    profile = profile or spy_dir is not None
    s = migrated(settings())
    figures = run(s, s.database_url or "", s.kafka_bootstrap_servers or "", clients, seconds, workers,
                  mode, poll_ms, profile, runs, inference, baseline, spy_dir)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    console.print(f"api ({figures['mode']}, {clients} clients, {figures['broker']}, load before "
                  f"{figures['load_before']}): logs {figures['logs']}")
    table = Table("run", "jobs/s", "e2e p50", "e2e p99", "submit p50", "reads/job",
                  "relay batches/job", "PG xacts/job", "errors", "machine CPU %", "stack CPU ms/job")
    for i, r in enumerate(figures["runs"], 1):
        trips = r["round_trips_per_job"]
        table.add_row(str(i), str(r["jobs_per_s"]), str(r["latency_ms"]["p50"]),
                      str(r["latency_ms"]["p99"]), str(r["submit_ms"]["p50"]), str(r["reads_per_job"]),
                      str(trips["relay_batches"]), str(trips["postgres_transactions"]),
                      str(r["errors"]), str(r["cpu_percent_of_machine"]), str(r["stack_cpu_ms_per_job"]))
    if "baseline" in figures:
        b = figures["baseline"]
        table.add_row("baseline", str(b["requests_per_s"]), str(b["latency_ms"]["p50"]),
                      str(b["latency_ms"]["p99"]), "-", "-", "-", "-", str(b["errors"]),
                      str(b["cpu_percent_of_machine"]), str(b["cpu_ms_per_request"]))
    console.print(table)
    if "of_baseline" in figures:
        ratio = figures["of_baseline"]
        console.print(f"of the baseline: jobs/s x{ratio['jobs_per_s_share']}, "
                      f"CPU per job x{ratio['cpu_per_job_multiple']} (last run against the baseline "
                      "right after it, same clients and workers)")
    if profile:
        cost = Table("process", *(f"run {i} CPU ms/job" for i in range(1, runs + 1)))
        for name in figures["runs"][-1].get("cpu_ms_per_job", {}):
            cost.add_row(name, *(str(r.get("cpu_ms_per_job", {}).get(name, "")) for r in figures["runs"]))
        console.print(cost)
    spied = figures["runs"][0].get("steps_ms_per_job")
    if spied:
        where = Table("process", "step (py-spy samples, innermost known package)", "CPU ms/job")
        for name, found in spied.items():
            for step, ms in found.items():
                where.add_row(name, step, str(ms))
        console.print(where)
    rss = Table("process", *(f"run {i} RSS MiB" for i in range(1, runs + 1)))
    for name in figures["runs"][-1]["rss_mib"]:
        rss.add_row(name, *(str(r["rss_mib"].get(name, "")) for r in figures["runs"]))
    console.print(rss)



@bench.command("chaos")
def bench_chaos(
    clients: int = typer.Option(8, help="Concurrent HTTP clients submitting jobs."),
    seconds: float = typer.Option(120.0, help="How long the clients submit (the faults are spread over it)."),
    deadline: int = typer.Option(60, help="The jobs' deadline in seconds (the reaper expires them after)."),
    runs: int = typer.Option(1, min=1, help="Runs, each on a fresh stack (a database, topics and "
                                            "groups of its own)."),
    kill_broker: bool | None = typer.Option(
        None, "--kill-broker/--no-kill-broker",
        help="SIGKILL and restart the embedded broker too (default: on Apache Kafka; Tansu 0.6 "
             "keeps its records in memory, so a restart there loses them all and the relay "
             "publishes the whole store again: a data-loss drill, not a restart)."),
    restart_db: bool = typer.Option(True, "--restart-db/--no-restart-db",
                                    help="Restart the embedded PostgreSQL under load too."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """A fault soak: SIGKILL inference, projector, relay, an API worker and the broker in turn,
    restart PostgreSQL, pause the projector, send poison; then check every job ended and the
    money is exact, and how long each fault took to heal."""
    from bench.chaos import bench_chaos as run
    from bench.chaos import kill_and_restart_broker, restart_database
    s = migrated(settings())
    own = Settings()  # without the dev stack's addresses: services.up() starts only what has none
    embedded_broker = not own.kafka_bootstrap_servers
    if kill_broker is None:
        kill_broker = own.kafka_impl != "tansu"
    broker = kill_and_restart_broker(own) if kill_broker and embedded_broker else None
    database = restart_database(own) if restart_db and not own.database_url else None
    where = s.kafka_impl if embedded_broker else "an external broker"
    table = Table("run", "jobs", "finished", "failed+refunded", "expired", "not refunded",
                  "still open", "charged twice", "mismatches", "5xx (unexplained)", "slowest s",
                  "worst heal s", "converged s", "wedged")
    all_figures = []
    import migrations

    for n in range(1, runs + 1):
        # a database of its own per run: its relay publishes only this run's events (on the
        # shared store it published the whole history into each run's new topics first)
        with migrations.scratch_database(s.database_url or "", "chaos") as db:
            f = run(s, db, s.kafka_bootstrap_servers or "", clients, seconds, deadline, broker,
                    database)
        all_figures.append(f)
        worst = max(f["heal_s"].items(), key=lambda kv: kv[1], default=("-", 0.0))
        table.add_row(str(n), str(f["jobs_accepted"]), str(f["finished"]), str(f["failed_and_refunded"]),
                      str(f["expired"]), str(f["failed_not_refunded"]), str(f["still_open"]),
                      str(f["charged_twice"]), str(f["audit_mismatches"]),
                      f"{f['http_5xx']} ({f['http_5xx_unexplained']})", str(f["slowest_job_s"]),
                      f"{worst[1]} ({worst[0]})", str(f["converged_after_last_fault_s"]),
                      "WEDGED" if f["wedged"] else "no")
        if as_json:  # one line per run as it ends: a campaign stopped early keeps its runs
            sys.stderr.write(json.dumps(f) + "\n")
        else:
            console.print(f"run {n}: {f['jobs_accepted']} jobs, {f['still_open']} still open, "
                          f"{f['charged_twice']} charged twice, {f['audit_mismatches']} mismatches, "
                          f"slowest {f['slowest_job_s']} s, converged {f['converged_after_last_fault_s']} "
                          f"s, {'WEDGED' if f['wedged'] else 'not wedged'}; heal s per fault "
                          f"{f['heal_s']}; median job {f['median_latency_s']} s; logs {f['logs']}")
    if as_json:
        sys.stdout.write(json.dumps(all_figures, indent=2) + "\n")
        return
    console.print(f"chaos: {clients} clients for {seconds:.0f} s per run on {where}; job deadline "
                  f"{deadline} s; faults: " + "; ".join(line.split("  ", 1)[1]
                                                         for line in all_figures[0]["faults"]))
    console.print(table)
    wedges = sum(1 for f in all_figures if f["wedged"])
    console.print(f"{runs} runs: {wedges} wedged, {sum(f['still_open'] for f in all_figures)} jobs "
                  f"lost, {sum(f['charged_twice'] for f in all_figures)} charged twice, "
                  f"{sum(f['audit_mismatches'] for f in all_figures)} balance mismatches; slowest "
                  f"job {max(f['slowest_job_s'] for f in all_figures)} s")


@bench.command("abuse")
def bench_abuse(
    api_url: str = typer.Option("http://127.0.0.1:8000", help="The running API to probe."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The security probe's cases against a running stack, as an ordinary account: each case's
    answer, and the API's worst /healthz latency and RSS growth meanwhile."""
    from urllib.parse import urlsplit

    from bench.abuse import as_rows, run

    cases = run(api_url.rstrip("/"), urlsplit(api_url).port or 80)
    if as_json:
        sys.stdout.write(json.dumps(as_rows(cases), indent=2) + "\n")
        return
    table = Table("case", "answer", "expected", "closed", "worst /healthz ms", "API RSS growth MiB")
    for c in cases:
        table.add_row(c.name, c.answer, c.expected, "yes" if c.closed else "NO",
                      str(c.healthz_worst_ms), str(c.rss_growth_mib))
    console.print(table)


@bench.command("stall")
def bench_stall(
    clients: int = typer.Option(30, help="Concurrent HTTP clients."),
    seconds: float = typer.Option(15.0, help="How long, with the projector paused."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The API with the projector paused: latency of top-ups, reads, jobs and /healthz."""
    from bench.stall import bench_stall as run
    s = migrated(settings())
    figures = run(s, s.database_url or "", s.kafka_bootstrap_servers or "", clients, seconds)
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


@bench.command("batch")
def bench_batch(
    rows: int = typer.Option(10_000, min=1, max=10_000, help="Cars in the batch."),
    model: str = typer.Option("linear_regression", help="The model."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """One fleet batch through the pipeline: submit time, time to the last row, rows/s."""
    from bench.batch import bench_batch as run

    s = migrated(settings())
    figures = run(s, s.database_url or "", s.kafka_bootstrap_servers or "", rows, model)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    console.print(f"batch of {figures['rows']} cars ({figures['model']}, {figures['broker']}): "
                  f"submitted (validated, charged, recorded) in {figures['submit_s']} s; first row "
                  f"done at {figures['first_row_s']} s, last at {figures['total_s']} s: "
                  f"{figures['rows_per_s']} rows/s ({figures['pipeline_rows_per_s']} after the "
                  f"submit); {figures['done']} done, {figures['failed']} failed; charged exactly: "
                  f"{figures['charged_exactly']}")


@bench.command("floors")
def bench_floors(
    seconds: float = typer.Option(5.0, help="Seconds per primitive."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """CPU per round trip of each primitive the pipeline is made of (a SQL round trip, a
    commit, a Kafka produce and fetch), here and in PostgreSQL and the broker: the floors."""
    from bench.cpu import service_pids
    from bench.floors import bench_floors as run

    s = settings()
    figures = run(s.database_url or "", s.kafka_bootstrap_servers or "", service_pids(s.home), seconds)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    table = Table("primitive", "ops", "wall ms", "client CPU ms", "PostgreSQL CPU ms", "broker CPU ms")
    for name, r in figures["results"].items():
        table.add_row(name, str(r["ops"]), str(r["wall_ms"]), str(r["client_cpu_ms"]),
                      str(r.get("postgres_cpu_ms", "-")), str(r.get("broker_cpu_ms", "-")))
    console.print(table)


@bench.command("idle")
def bench_idle(
    seconds: float = typer.Option(30.0, help="How long to measure, once the pipeline is idle."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """CPU of every process (and PostgreSQL and the broker) with no traffic at all."""
    from bench.idle import bench_idle as run

    s = migrated(settings())
    figures = run(s, s.database_url or "", s.kafka_bootstrap_servers or "", seconds)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    table = Table("process", "% of one core")
    for name, pct in figures["cpu_percent_of_one_core"].items():
        table.add_row(name, f"{pct:.2f}")
    console.print(f"idle for {figures['seconds']} s on {figures['broker']} ({figures['cores']} cores)")
    console.print(table)
    console.print(f"all together: {figures['machine_percent']:.2f} % of the machine")


def _sizes(sizes: str) -> tuple[int, ...]:
    """`--sizes` as positive whole numbers (a clear error naming the option otherwise)."""
    try:
        wanted = tuple(int(n) for n in sizes.split(","))
        if min(wanted) < 1:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(f"not a list of positive whole numbers: {sizes!r}",
                                 param_hint="--sizes") from None
    return wanted


@bench.command("fetch")
def bench_fetch(
    sizes: str = typer.Option("1000,5000,20000", help="Partition sizes (batches), comma-separated."),
    fetches: int = typer.Option(200, min=1, help="Fetches of the partition's tail at each size."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The broker's CPU per fetch of a partition's tail, as the partition grows."""
    from bench.fetch import bench_fetch as run

    wanted = _sizes(sizes)  # before looking for the services
    s = settings()
    figures = run(s, s.kafka_bootstrap_servers or "", wanted, fetches)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    table = Table("batches in the partition", "broker CPU ms per fetch", "wall ms per fetch")
    for row in figures["sizes"]:
        table.add_row(str(row["batches"]), f"{row['broker_cpu_ms_per_fetch']:.3f}",
                      f"{row['wall_ms_per_fetch']:.2f}")
    console.print(f"tail fetches on {figures['broker']}")
    console.print(table)


@bench.command("baseline")
def bench_baseline(
    clients: int = typer.Option(20, help="Concurrent HTTP clients."),
    seconds: float = typer.Option(20.0, help="How long the clients send cars."),
    workers: int = typer.Option(2, help="uvicorn workers (as the API's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The same models and ranges behind a bare synchronous endpoint (no sign-in, ledger, store
    or broker): requests/s, latency, CPU per request. `bench api` runs it too, for its ratios."""
    from bench.baseline import run_baseline
    from bench.common import sample_car

    own = Settings()
    figures = run_baseline(own.registry_dir, sample_car(own), clients, seconds, workers)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    table = Table("req/s", "p50 ms", "p99 ms", "errors", "server CPU ms/req", "load gen. CPU ms/req",
                  "machine CPU %")
    table.add_row(str(figures["requests_per_s"]), str(figures["latency_ms"]["p50"]),
                  str(figures["latency_ms"]["p99"]), str(figures["errors"]),
                  str(figures["cpu_ms_per_request"]), str(figures["load_generator_cpu_ms_per_request"]),
                  str(figures["cpu_percent_of_machine"]))
    console.print(f"baseline ({clients} clients, {workers} workers)")
    console.print(table)


@bench.command("serve")
def bench_serve(
    sizes: str = typer.Option("1,3,20", help="Batch sizes (cars per call), comma-separated."),
    seconds: float = typer.Option(2.0, min=0.1, help="Seconds of calls per model, size and form."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """A price with its range, as trained (scikit-learn, MAPIE) and as served: ms per call."""
    from bench.serve import bench_serve as run
    from model_registry.store import Registry

    figures = run(Registry(Settings().registry_dir), _sizes(sizes), seconds)
    if as_json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    table = Table("model", "cars", "as trained ms", "served ms", "speedup", "max rel. difference")
    for r in figures["rows"]:
        table.add_row(f"{r['model']} v{r['version']}", str(r["cars"]), f"{r['trained_ms']:.3f}",
                      f"{r['served_ms']:.3f}", f"{r['speedup']}x", f"{r['max_relative_difference']:.1e}")
    console.print(table)
