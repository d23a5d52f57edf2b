"""Jobs finished per minute, kept in Redis for the dashboard's charts (SPEC §9).

Dramatiq counts nothing over time that several worker processes could share, and
Prometheus (per process, scraped elsewhere) is not something the dashboard can read on
an air-gapped box. So every worker process adds its counts to one Redis hash per
minute, `<namespace>:__orchestrator_throughput__:<minute>` (`minute` = Unix time // 60),
with fields `<queue>:<outcome>`:

- `ok`: an attempt finished without raising;
- `failed`: an attempt raised (a retry may follow);
- `dead`: the message was dead-lettered (retries exhausted or a permanent error).

HINCRBY is atomic, so any number of processes share a bucket. Each bucket expires two
hours after its last write: whatever the load, at most ~120 hashes of at most
`len(QUEUES) + 1` times 3 fields exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.queues import QUEUES

OUTCOMES = ("ok", "failed", "dead")
RETENTION_SECONDS = 2 * 3600
OTHER_QUEUE = "other"


def bucket_key(namespace: str, minute: int) -> str:
    return f"{namespace}:__orchestrator_throughput__:{minute}"


def queue_label(queue_name: str) -> str:
    """The queue a count is filed under: delay queues (`webhooks.DQ`) count for their
    queue; a name outside `QUEUES` becomes `other`, so the field set stays bounded."""
    name = queue_name.removesuffix(".DQ")
    return name if name in QUEUES else OTHER_QUEUE


# (minute, queue label, outcome) -> count
Counts = Mapping[tuple[int, str, str], int]


def record(client: Any, namespace: str, counts: Counts) -> None:
    """Add `counts` to their minute buckets in one round trip."""
    if not counts:
        return
    pipe = client.pipeline(transaction=False)
    minutes = set()
    for (minute, queue, outcome), n in counts.items():
        if n:
            pipe.hincrby(bucket_key(namespace, minute), f"{queue}:{outcome}", n)
            minutes.add(minute)
    for minute in minutes:
        pipe.expire(bucket_key(namespace, minute), RETENTION_SECONDS)
    pipe.execute()


@dataclass(frozen=True)
class Series:
    """One value per minute, oldest first; `minutes` are Unix times of minute starts."""

    minutes: list[int]
    ok: list[int]
    failed: list[int]
    dead: list[int]


def series(client: Any, namespace: str, *, now: float, minutes: int = 60) -> Series:
    """The last `minutes` minutes up to and including the current one, summed over
    queues: `minutes` HGETALLs in one pipelined round trip."""
    last = int(now) // 60
    buckets = list(range(last - minutes + 1, last + 1))
    pipe = client.pipeline(transaction=False)
    for minute in buckets:
        pipe.hgetall(bucket_key(namespace, minute))
    totals: dict[str, list[int]] = {o: [0] * minutes for o in OUTCOMES}
    for i, fields in enumerate(pipe.execute()):
        for field, value in fields.items():
            name = field.decode() if isinstance(field, bytes) else str(field)
            outcome = name.rpartition(":")[2]
            if outcome in totals:
                totals[outcome][i] += int(value)
    return Series(
        minutes=[m * 60 for m in buckets],
        ok=totals["ok"],
        failed=totals["failed"],
        dead=totals["dead"],
    )
