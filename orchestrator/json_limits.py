"""What a JSON document taken from a request may hold beyond the grammar.

**Depth.** Every walk over a stored payload recurses — masking before the insert, redaction for
logs, psycopg's and the worker's JSON codecs — and Python's stack ends near 1,000
frames. `json.loads` accepts almost that depth, so a correctly signed body of 500
nested lists used to pass the parser and then fail the insert with a RecursionError: a
500 for bad input. Real payloads nest a dozen levels; anything deeper than
`MAX_JSON_DEPTH` is refused as malformed (400) where the body is parsed.

**Numbers.** Python reads `1e400` as `inf`, which JSON (and Postgres JSONB) cannot hold:
stored as received it passed, but a payload that needed masking was re-encoded as
`Infinity` and the insert failed (a 500). `finite_float` refuses such numbers while
parsing, as Python's `NaN` and `Infinity` literals already are.

**Characters.** JSON may escape U+0000 and lone surrogates; Postgres text and JSONB
hold neither. A webhook keeps them (replaced, `orchestrator.events.store.storable`);
an admin request naming them is refused (`unstorable_field`, 422) before any insert.
"""

from __future__ import annotations

import math
import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

MAX_JSON_DEPTH = 64


def finite_float(text: str) -> float:
    """`parse_float` for `json.loads`: a number too large for a float is an error
    (ValueError, which the callers answer as malformed JSON)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def too_deep(text: bytes | str, value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` (parsed from `text`) nests objects and arrays more than `limit`
    levels deep. Counting brackets first rules out almost every body cheaply: a text
    with fewer than `limit` of them cannot nest deeper. The walk is iterative, so any
    depth is measured without recursion."""
    if isinstance(text, bytes):
        brackets = text.count(b"{") + text.count(b"[")
    else:
        brackets = text.count("{") + text.count("[")
    if brackets <= limit:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def unstorable_field(value: Any) -> str | None:
    """The dotted path of the first key or string in `value` that Postgres cannot hold
    (`"routing.services.2"`), or None. Iterative, like `too_deep`."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return path or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return path or "body"
                stack.append((child, name))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(item))
    return None
