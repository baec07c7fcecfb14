"""Operator commands on credits: promotional grants."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

from cli.context import console, fail, migrated, settings
from cli.processes import write_side

credits = typer.Typer(help="Credits: promotional grants that expire.")

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `90m`, `45s`, `2w` from now, or an ISO-8601 time with a zone."""
    now = now or datetime.now(UTC)
    found = re.fullmatch(r"\s*(\d{1,6})\s*([smhdw])\s*", text)
    if found:
        return now + timedelta(**{_UNITS[found[2]]: int(found[1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--expires {text!r}: give a duration such as 30d, 12h, 90m, 45s, or an "
                         "ISO-8601 time with a zone") from None
    if when.tzinfo is None:
        raise ValueError(f"--expires {text!r}: an ISO-8601 time needs a zone, e.g. +00:00")
    return when


@credits.command()
def grant(
    email: str = typer.Argument(..., help="The user's email."),
    amount: int = typer.Argument(..., help="Promotional credits to add (spent before paid ones)."),
    expires: str = typer.Option(..., "--expires", help="When what is left expires: 30d, 12h, "
                                "90m, 45s, or an ISO-8601 time with a zone."),
    reason: str = typer.Option(..., "--reason", help="Why (shown on the user's statement)."),
    grant_id: str = typer.Option(None, "--id", help="A grant id: granting it again does nothing "
                                 "(default: a new one)."),
) -> None:
    """Add promotional credits to a user's wallet; what is left expires at its time, once."""
    from domain.errors import DomainError, InvalidCredentials

    try:
        expires_at = parse_expiry(expires)
    except ValueError as exc:
        fail(str(exc), 2)
    app = write_side(migrated(settings(kafka=False)))
    try:
        state = app.grant_credits(app.user_id_of(email), amount, expires_at, reason, grant_id)
    except InvalidCredentials:
        fail(f"no account for {email}", 1)
    except DomainError as exc:
        fail(f"{email}: {exc}", 1)
    finally:
        app.close()
    what = "granted" if state.changed else "already granted (same --id): nothing changed"
    console.print(f"{email}: {amount} promotional credits {what}, expiring "
                  f"{expires_at.isoformat(timespec='seconds')}; balance {state.balance} "
                  f"({state.promotional} promotional)")
