"""Replay of a webhook event (SPEC §4.3 `POST …/events/{id}/replay`): re-dispatch it,
audited. Shared by the admin API and the dashboard's replay button, so both leave the
same trail."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from psycopg import Connection

from orchestrator import audit
from orchestrator.auth.admin import Admin
from orchestrator.events import store

log = logging.getLogger("orchestrator.events")


def replay(
    conn: Connection[Any],
    event_id: uuid.UUID,
    *,
    admin: Admin,
    request_id: str | None,
    enqueue: Callable[[str], object],
) -> store.EventDetail | None:
    """Mark the event `queued` (with its audit row) and, once that is committed, enqueue
    it. Enqueuing inside the transaction let a fast worker read the event as it was —
    final, with its old run — and drop the message before the commit. If Redis refuses
    after the commit, the event is `queued` all the same and the scheduler's relay
    enqueues it. None when there is no such event or it is another org's (as invisible
    as a missing one)."""
    with conn.transaction():
        event = store.get(conn, event_id)
        if event is None or not admin.may_act_in(event.org_id):
            return None
        # A replay is a new dispatch: a new agent run, not the old one again.
        store.set_status(
            conn,
            event.event_id,
            "queued",
            detail=f"replayed by {admin.actor}",
            agent_run_id=None,
        )
        audit.record(
            conn,
            actor=admin.actor,
            action="event.replayed",
            org_id=event.org_id,
            team_node_id=event.team_node_id,
            subject=str(event.event_id),
            request_id=request_id,
            detail={"source": event.source, "previous_status": event.status},
        )
    try:
        enqueue(str(event.event_id))
    except Exception as exc:  # Redis down: stored as queued, the relay enqueues it
        log.warning(
            "replayed event stored but not enqueued; the relay will",
            extra={"event_id": str(event.event_id), "error": type(exc).__name__},
        )
    return event
