"""Text every store, table and log can hold: the rule applied to everything a client sends."""

from __future__ import annotations

import re

# C0 and C1 control characters (NUL included), DEL, and UTF-16 surrogates: a surrogate in a
# Python str is always a lone one (valid pairs decode to one code point) and cannot be encoded
# as UTF-8; PostgreSQL refuses NUL in text and \u0000 in jsonb.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be accepted as text, or None when it can."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    if _SURROGATE.match(found.group()):
        return "must be valid Unicode text (it contains a lone surrogate)"
    return f"must not contain control characters (found U+{ord(found.group()):04X})"


def printable(value: object, limit: int = 40) -> str:
    """A short rendering of any value that is safe to put in an error message."""
    if isinstance(value, str):
        text = repr(_FORBIDDEN.sub("\ufffd", value))
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        # str() of a huge int is slow (and refused past 4300 digits): describe it instead
        text = f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value)
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
