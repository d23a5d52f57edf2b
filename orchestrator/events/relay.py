"""The relay and retention passes of the scheduler (SPEC §7).

Relay: an event left `received` (stored while Redis was down, or the web process died
between commit and enqueue) or `queued` (its message lost) for longer than
`ORCHESTRATOR_RELAY_AFTER_SECONDS` is enqueued again. Processing is idempotent, so a
message that was merely slow costs a redundant no-op, never a second dispatch.

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
    conn: Connection[Any], enqueue: Callable[[str], None], *, older_than_seconds: int
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
        store.set_status(conn, event_id, "queued", detail="relayed by the scheduler")
        relayed += 1
    return {"relayed": relayed, "enqueue_failures": failed}


def prune_bodies(conn: Connection[Any], *, retention_days: int) -> dict[str, int]:
    cursor = conn.execute(
        "UPDATE orchestrator_webhook_events SET payload = NULL WHERE id IN ("
        " SELECT id FROM orchestrator_webhook_events WHERE payload IS NOT NULL"
        " AND received_at < now() - make_interval(days => %s) LIMIT 5000)",
        (retention_days,),
    )
    return {"pruned": cursor.rowcount}
