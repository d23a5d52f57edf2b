"""The relay and retention passes of the scheduler (SPEC §7).

Relay: an event left `received` (stored while Redis was down, or the web process died
between commit and enqueue) or `queued` (its message lost) for longer than
`ORCHESTRATOR_RELAY_AFTER_SECONDS` is enqueued again. Processing is idempotent, so a
message that was merely slow costs a redundant no-op, never a second dispatch.

The same holds for provisioning runs and admin agent runs left `queued`: their message
was lost (Redis down at enqueue, or flushed). An agent run created by a webhook event
is not relayed on its own: its event is, and the event's processing drives the run.
The relayed row's `updated_at` is bumped, so a run is relayed once per period, not once
per tick.

Retention: webhook bodies older than `ORCHESTRATOR_EVENT_RETENTION_DAYS` are dropped;
the event row (status, routing, history) stays for the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from psycopg import Connection

from orchestrator.events import store

log = logging.getLogger("orchestrator.relay")

BATCH = 500


def relay_events(
    conn: Connection[Any], enqueue: Callable[[str], object], *, older_than_seconds: int
) -> dict[str, int]:
    relayed = failed = 0
    for event_id in store.stale(conn, older_than_seconds=older_than_seconds, limit=BATCH):
        try:
            enqueue(str(event_id))
        except Exception as exc:  # Redis still down: try again next tick
            failed += 1
            log.warning(
                "relay could not enqueue",
                extra={"event_id": str(event_id), "error": type(exc).__name__},
            )
            break
        # Only while still waiting: a worker may have dispatched it since `stale` read it,
        # and "queued" written over "dispatched" would have it relayed again forever.
        if store.set_status(
            conn,
            event_id,
            "queued",
            detail="relayed by the scheduler",
            only_from=("received", "queued"),
        ):
            relayed += 1
    return {"relayed": relayed, "enqueue_failures": failed}


_STALE_RUNS = {
    "provisioning": (
        "UPDATE orchestrator_provisioning_runs SET updated_at = now() WHERE id IN ("
        " SELECT id FROM orchestrator_provisioning_runs WHERE status = 'queued'"
        " AND updated_at < now() - make_interval(secs => %s)"
        " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
    ),
    "agent": (
        "UPDATE orchestrator_agent_runs SET updated_at = now() WHERE id IN ("
        " SELECT id FROM orchestrator_agent_runs WHERE status = 'queued'"
        " AND event_id IS NULL AND updated_at < now() - make_interval(secs => %s)"
        " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
    ),
}


def relay_runs(
    conn: Connection[Any],
    *,
    provisioning: Callable[[str], object],
    agent: Callable[[str], object],
    older_than_seconds: int,
) -> dict[str, int]:
    """Re-enqueue provisioning and admin agent runs stuck in `queued`. If Redis refuses,
    the transaction (the scheduler's task savepoint) rolls the `updated_at` bump back,
    so the rows stay due for the next tick."""
    counts: dict[str, int] = {}
    for kind, enqueue in (("provisioning", provisioning), ("agent", agent)):
        rows = conn.execute(_STALE_RUNS[kind], (older_than_seconds, BATCH)).fetchall()
        for row in rows:
            run_id = row["id"] if isinstance(row, dict) else row[0]
            enqueue(str(run_id))
        counts[f"{kind}_runs_relayed"] = len(rows)
    return counts


def prune_bodies(conn: Connection[Any], *, retention_days: int) -> dict[str, int]:
    cursor = conn.execute(
        "UPDATE orchestrator_webhook_events SET payload = NULL WHERE id IN ("
        " SELECT id FROM orchestrator_webhook_events WHERE payload IS NOT NULL"
        " AND received_at < now() - make_interval(days => %s) LIMIT 5000)",
        (retention_days,),
    )
    return {"pruned": cursor.rowcount}
