"""Agent runs (`orchestrator_agent_runs`): one row per run, whatever started it
(webhook, internal Slack trigger, admin). Its id is the `X-Correlation-ID` the agent
sees, stable across retries. Statuses: queued → running → succeeded | failed."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from orchestrator.redaction import redact
from orchestrator.timestamps import UtcDateTime


class AgentRun(BaseModel):
    agent_run_id: uuid.UUID
    status: str
    org_id: str
    team_node_id: str
    agent_name: str
    trigger_source: str
    event_id: uuid.UUID | None
    request: dict[str, Any]
    result: Any
    error: str | None
    attempts: int
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None


def create(
    conn: Connection[Any],
    *,
    org_id: str,
    team_node_id: str,
    agent_name: str,
    trigger_source: str,
    request: dict[str, Any],
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    run_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO orchestrator_agent_runs (id, org_id, team_node_id, agent_name,"
        " trigger_source, event_id, status, request) VALUES (%s,%s,%s,%s,%s,%s,'queued',%s)",
        (
            run_id,
            org_id,
            team_node_id,
            agent_name,
            trigger_source,
            event_id,
            Jsonb(redact(request)),
        ),
    )
    return run_id


def start_attempt(conn: Connection[Any], run_id: uuid.UUID) -> None:
    conn.execute(
        "UPDATE orchestrator_agent_runs SET status = 'running', attempts = attempts + 1,"
        " started_at = COALESCE(started_at, now()), updated_at = now() WHERE id = %s",
        (run_id,),
    )


def finish(
    conn: Connection[Any],
    run_id: uuid.UUID,
    *,
    succeeded: bool,
    result: Any = None,
    error: str | None = None,
) -> None:
    conn.execute(
        "UPDATE orchestrator_agent_runs SET status = %s, result = %s, error = %s,"
        " finished_at = now(), updated_at = now() WHERE id = %s",
        (
            "succeeded" if succeeded else "failed",
            Jsonb(result) if result is not None else None,
            error,
            run_id,
        ),
    )


def get(conn: Connection[Any], run_id: uuid.UUID | str) -> AgentRun | None:
    row = conn.execute("SELECT * FROM orchestrator_agent_runs WHERE id = %s", (run_id,)).fetchone()
    return AgentRun.model_validate({**row, "agent_run_id": row["id"]}) if row else None
