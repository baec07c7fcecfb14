"""The `carprice` command: one entrypoint per process and per operator task."""

from __future__ import annotations

import typer

from cli import bench, credits, dlq, models, ops, processes, services, up

cli = typer.Typer(help="carprice: car price predictions billed in credits.", no_args_is_help=True)
cli.command()(up.up)
cli.add_typer(services.services, name="services")
cli.command()(ops.migrate)
cli.command()(ops.init)
cli.command()(models.train)
cli.add_typer(models.models, name="models")
cli.command()(processes.relay)
cli.command()(processes.reaper)
cli.command()(processes.webhooks)
cli.add_typer(processes.consume, name="consume")
cli.command()(processes.api)
cli.command()(processes.ui)
cli.command()(ops.audit)
cli.add_typer(credits.credits, name="credits")
cli.add_typer(ops.projections, name="projections")
cli.add_typer(dlq.dlq, name="dlq")
cli.add_typer(bench.bench, name="bench")

if __name__ == "__main__":
    cli()
