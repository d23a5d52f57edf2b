"""Cron expressions as Kubernetes CronJobs accept them (SPEC §7).

The API server parses `spec.schedule` with robfig/cron's standard parser: five fields
(minute, hour, day of month, month, day of week), each a comma list of `*`, `?`, a
value or a range `a-b`, optionally stepped `/n`; months and weekdays also by
three-letter name; plus the `@yearly`-style macros. Validating here, with a message that
names the field and the value, turns what would be a CronJob the API server refuses
(found 30 seconds later by the reconciler) into a 422 the caller sees at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def value(self, text: str) -> int:
        lowered = text.lower()
        if lowered in self.names:
            return self.low + self.names.index(lowered)
        if not text.isdigit():
            raise ValueError(f"{self.name} field: {text!r} is not a number")
        number = int(text)
        if not self.low <= number <= self.high:
            raise ValueError(f"{self.name} field: {number} is out of range {self.low}-{self.high}")
        return number


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field(
        "month",
        1,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    _Field("day-of-week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_PART = re.compile(r"^(?P<range>[^/]+)(?:/(?P<step>.*))?$")


def _check_part(field: _Field, part: str) -> None:
    match = _PART.match(part)
    if not match:
        raise ValueError(f"{field.name} field: {part!r} is empty")
    span, step = match["range"], match["step"]
    if step is not None and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"{field.name} field: step {step!r} must be a positive number")
    if span in ("*", "?"):
        return
    low_text, dash, high_text = span.partition("-")
    low = field.value(low_text)
    if dash:
        high = field.value(high_text)
        if low > high:
            raise ValueError(f"{field.name} field: range {span!r} starts after it ends")


def validate_cron(expression: str) -> str:
    """The expression, stripped, when the Kubernetes API server would accept it;
    otherwise ValueError saying which field is wrong and why."""
    text = expression.strip()
    if not text:
        raise ValueError("the cron expression is empty")
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise ValueError("put the time zone in `timezone`, not in the cron expression")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ValueError(
                f"unknown macro {text!r}; use one of {', '.join(sorted(MACROS))} or five fields"
            )
        return text.lower()
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    for field, value in zip(_FIELDS, fields, strict=True):
        for part in value.split(","):
            _check_part(field, part)
    return " ".join(fields)
