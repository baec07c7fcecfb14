"""Values as PostgreSQL accepts them: the read side must store anything the event store holds.

The event store keeps events as bytes, so it holds any text a client once got past the door:
NUL, lone surrogates. PostgreSQL refuses NUL in `text` and `\\u0000` in `jsonb`, and
UTF-8 has no lone surrogates. Such characters become U+FFFD in the read tables.
"""

from __future__ import annotations

import json
import re

from psycopg.types.json import Jsonb

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def pg_text(value: object) -> object:
    """A text value PostgreSQL can store (other values unchanged)."""
    if isinstance(value, str) and _UNSTORABLE.search(value):
        return _UNSTORABLE.sub("\ufffd", value)
    return value


def pg_safe(value: object) -> object:
    """`value` with every string in it (keys too) made storable."""
    if isinstance(value, str):
        return pg_text(value)
    if isinstance(value, dict):
        return {pg_text(str(k)): pg_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [pg_safe(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN: jsonb has none
        return None
    return value


def pg_json(value: object) -> Jsonb:
    """A jsonb parameter of any JSON-like value."""
    return Jsonb(pg_safe(value), dumps=_dumps)


def _dumps(value: object) -> str:
    # allow_nan=False: inf would be refused by PostgreSQL too; it becomes null above or here
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value))


def _finite(value: object) -> object:
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
