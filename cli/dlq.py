"""`carprice dlq`: inspect and re-drive the messages consumers dead-lettered."""

from __future__ import annotations

import json
import sys

import psycopg
import typer
from rich.table import Table

from cli.context import console, fail, migrated, settings

dlq = typer.Typer(help="Dead letters: messages a consumer gave up on, and why.")


@dlq.command("list")
def dlq_list(
    consumer: str = typer.Option(None, help="Only this consumer's (inference, projector)."),
    limit: int = typer.Option(50, min=1, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The newest dead letters: when, which consumer, why, and where they came from."""
    from infra.dead_letters import listing

    s = migrated(settings(kafka=False))
    with psycopg.connect(s.database_url or "", autocommit=True) as conn:
        rows = listing(conn, consumer, limit)
    if as_json:
        sys.stdout.write(json.dumps([{**r.__dict__, "source": r.source} for r in rows],
                                    default=str, indent=2) + "\n")
        return
    table = Table("id", "time", "consumer", "reason", "exception", "source", "event", "replayed")
    for r in rows:
        table.add_row(str(r.id), r.created_at.isoformat(timespec="seconds"), r.consumer, r.reason,
                      r.exception, r.source, f"{r.event_type or '-'} {r.aggregate_id or ''}",
                      r.replayed_at.isoformat(timespec="seconds") if r.replayed_at else "")
    console.print(table)
    if not rows:
        console.print("no dead letters")


@dlq.command("show")
def dlq_show(letter_id: int = typer.Argument(..., help="The id `dlq list` shows.")) -> None:
    """One dead letter: why it was given up on, its headers and its message."""
    from infra.dead_letters import one
    from infra.kafka_client import read_one

    s = migrated(settings())
    bootstrap = s.kafka_bootstrap_servers or ""
    with psycopg.connect(s.database_url or "", autocommit=True) as conn:
        letter = one(conn, letter_id)
    if letter is None:
        fail(f"no dead letter {letter_id}")
        return
    out = {**letter.__dict__, "source": letter.source}
    if letter.dlq_partition is not None and letter.dlq_offset is not None:
        rec = read_one(bootstrap, letter.dlq_topic, letter.dlq_partition, letter.dlq_offset)
        if rec is not None:
            out["headers"] = {k: v.decode(errors="replace") for k, v in rec.headers or []}
            out["value"] = (rec.value or b"").decode(errors="replace")
        else:
            out["value"] = None
            out["note"] = "the broker no longer holds this message"
    sys.stdout.write(json.dumps(out, default=str, indent=2) + "\n")


@dlq.command("replay")
def dlq_replay(
    letter_ids: list[int] = typer.Argument(None, help="Ids to replay (see `dlq list`)."),  # noqa: B008
    every: bool = typer.Option(False, "--all", help="Every dead letter not replayed yet."),
    consumer: str = typer.Option(None, help="With --all: only this consumer's."),
) -> None:
    """Send dead letters back to their source topic, for the consumers to handle again.

    Consumers are idempotent: what was settled when the message was dead-lettered (a job
    failed and refunded) stays as it is; a projection applies what it had missed.
    """
    from infra.dead_letters import listing, mark_replayed, one
    from infra.kafka_client import producer, read_one

    s = migrated(settings())
    bootstrap = s.kafka_bootstrap_servers or ""
    with psycopg.connect(s.database_url or "", autocommit=True) as conn:
        if every:
            letters = [r for r in listing(conn, consumer, 100_000) if r.replayed_at is None]
        else:
            letters = [x for i in letter_ids or [] if (x := one(conn, i)) is not None]
        if not letters:
            console.print("nothing to replay")
            return
        prod = producer(bootstrap)
        replayed = 0
        try:
            for letter in letters:
                if letter.dlq_partition is None or letter.dlq_offset is None:
                    console.print(f"{letter.id}: its place in {letter.dlq_topic} is unknown; skipped")
                    continue
                rec = read_one(bootstrap, letter.dlq_topic, letter.dlq_partition, letter.dlq_offset)
                if rec is None:
                    console.print(f"{letter.id}: the broker no longer holds it; skipped")
                    continue
                headers = [(k, v) for k, v in rec.headers or [] if not k.startswith("dlq_")]
                prod.send(letter.source_topic, key=rec.key, value=rec.value,
                          headers=headers).get(timeout=30)
                mark_replayed(conn, letter.id)
                replayed += 1
                console.print(f"{letter.id}: sent back to {letter.source_topic}")
            conn.execute("SELECT pg_notify('carprice_published', %s)", (s.events_topic,))
        finally:
            prod.close(timeout=10)
    console.print(f"{replayed} dead letter(s) replayed")
