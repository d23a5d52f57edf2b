"""Replay of a webhook event (SPEC §4.3 `POST …/events/{id}/replay`): re-dispatch it,
audited. Shared by the admin API and the dashboard's replay button, so both leave the
same trail."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from psycopg import Connection

from orchestrator import audit
from orchestrator.auth.admin import Admin
from orchestrator.events import store


def replay(
    conn: Connection[Any],
    event_id: uuid.UUID,
    *,
    admin: Admin,
    request_id: str | None,
    enqueue: Callable[[str], object],
) -> store.EventDetail | None:
    """Enqueue the event again and mark it `queued`, in one transaction with its audit
    row. None when there is no such event or it is another org's (as invisible as a
    missing one)."""
    with conn.transaction():
        event = store.get(conn, event_id)
        if event is None or not admin.may_act_in(event.org_id):
            return None
        enqueue(str(event.event_id))
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
    return event
