"""Reads that connect one record to the next on the dashboard (event → agent runs →
team), where no store offers that direction."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection

from orchestrator.agent_runs import AgentRunSummary

_SUMMARY_COLUMNS = (
    "id, status, org_id, team_node_id, agent_name, trigger_source, event_id, error,"
    " attempts, created_at, started_at, finished_at"
)


def agent_runs_of_event(
    conn: Connection[Any], event_id: uuid.UUID, *, limit: int = 20
) -> list[AgentRunSummary]:
    """The agent runs an event started, newest first: one per dispatch, so a replayed
    event shows each (the event row keeps only the latest). Uses `ix_agent_runs_event`."""
    rows = conn.execute(
        f"SELECT {_SUMMARY_COLUMNS} FROM orchestrator_agent_runs"  # noqa: S608
        " WHERE event_id = %s ORDER BY created_at DESC, id DESC LIMIT %s",
        (event_id, limit),
    ).fetchall()
    return [AgentRunSummary.model_validate({**r, "agent_run_id": r["id"]}) for r in rows]
