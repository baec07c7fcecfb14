"""CSV as carprice writes it: every cell a spreadsheet could run as a formula is neutralised.

OWASP's rule for CSV injection: a text cell that begins with `=`, `+`, `-`, `@`, a tab or a
carriage return is prefixed with a single quote, so a spreadsheet shows it as text instead of
evaluating it. Numbers carprice itself wrote (a negative amount) are left as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """The value as a CSV cell that no spreadsheet evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A whole CSV document: the header, then each row with its cells neutralised."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()
