"""`Prefer: wait=N` (RFC 7240), which admin agent runs honour (SPEC §10).

A preference is a hint: one the server does not understand is ignored (RFC 7240 §2),
so a malformed `wait` (not a whole number of seconds) means no wait — the ordinary 202
— rather than a 400. Larger values are capped at `cap`. Only the first `wait` counts.
"""

from __future__ import annotations


def wait_seconds(header: str | None, *, cap: int) -> int:
    """Seconds to wait, 0 for none."""
    if not header:
        return 0
    for preference in header.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not value.isascii() or not value.isdigit():
            return 0
        digits = value.lstrip("0") or "0"
        # Lengths first: int() of a 5,000-digit string raises in Python 3.11.
        return cap if len(digits) > len(str(cap)) else min(int(digits), cap)
    return 0
