"""`carprice up`: the whole stack in one terminal (see devstack/up.py), until Ctrl-C."""

from __future__ import annotations

import typer

from cli.context import CLI, console, fail
from infra.settings import Settings


def up(
    kafka: str = typer.Option(None, "--kafka", help="tansu, apache or apache-cluster (default: "
                              "KAFKA_IMPL; KAFKA_BOOTSTRAP_SERVERS uses an external broker)"),
    demo: bool = typer.Option(False, "--demo", help="Create a demo user with credits; print it."),
    api_port: int = typer.Option(8000, envvar="CARPRICE_API_PORT", help="API port."),
    ui_port: int = typer.Option(8501, envvar="CARPRICE_UI_PORT", help="Dashboard port."),
) -> None:
    """Run the whole stack (database, broker, relay, reaper, consumers, projector, API, UI)
    until Ctrl-C: migrates the schema and trains the models first if none are registered."""
    try:
        from devstack import up as stack
    except ImportError as exc:  # the embedded services' wheels are an extra
        fail(f"`carprice up` needs the dev stack: pip install 'carprice[devstack]' ({exc.name} is "
             "missing)")
        return
    import migrations
    from cli.models import train_models

    if kafka not in (None, "tansu", "apache", "apache-cluster"):
        fail(f"--kafka must be tansu, apache or apache-cluster, not {kafka!r}", 2)
    settings = Settings(**({"KAFKA_IMPL": kafka} if kafka else {}))  # type: ignore[arg-type]
    if demo and settings.mode != "embedded":
        fail("--demo only in the embedded mode (CARPRICE_MODE=embedded)", 2)

    def prepare(database_url: str) -> None:
        migrations.upgrade(database_url)
        train_models(settings, if_missing=True)

    try:
        stack.run(settings, CLI, api_port, ui_port, demo, prepare, console.print)
    except stack.AlreadyRunning as exc:
        console.print(f"[yellow]{exc}[/]")
        raise typer.Exit(1) from None
    except stack.UpError as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C while training or starting the services
        console.print("interrupted before the stack was up")
        raise typer.Exit(130) from None
