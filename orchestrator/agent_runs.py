"""Agent runs (`orchestrator_agent_runs`): one row per run, whatever started it
(webhook, internal Slack trigger, admin). Its id is the `X-Correlation-ID` the agent
sees, stable across retries. Statuses: queued → running → succeeded | failed."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel, computed_field

from orchestrator.pagination import newest_first
from orchestrator.redaction import redact
from orchestrator.timestamps import UtcDateTime

RunStatus = Literal["queued", "running", "succeeded", "failed"]
FINISHED: tuple[RunStatus, ...] = ("succeeded", "failed")
TriggerSource = Literal["slack", "github", "pagerduty", "incidentio", "coralogix", "generic", "api"]

_SUMMARY_COLUMNS = (
    "id, status, org_id, team_node_id, agent_name, trigger_source, event_id, error,"
    " attempts, created_at, started_at, finished_at"
)


class AgentRunSummary(BaseModel):
    """A run as lists show it: everything but the request and the agent's answer, which
    may be large."""

    agent_run_id: uuid.UUID
    status: str
    org_id: str
    team_node_id: str
    agent_name: str
    trigger_source: str
    event_id: uuid.UUID | None
    error: str | None
    attempts: int
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        """From `running` to the end, as provisioning runs measure it (queueing time is
        the gap between `created_at` and `started_at`)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


class AgentRun(AgentRunSummary):
    request: dict[str, Any]
    result: Any


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


def start_attempt(conn: Connection[Any], run_id: uuid.UUID) -> int:
    """Mark the run `running` and count the attempt; returns this attempt's number."""
    row = conn.execute(
        "UPDATE orchestrator_agent_runs SET status = 'running', attempts = attempts + 1,"
        " started_at = COALESCE(started_at, now()), updated_at = now() WHERE id = %s"
        " RETURNING attempts",
        (run_id,),
    ).fetchone()
    return int(row["attempts"]) if row else 0


def set_agent_name(conn: Connection[Any], run_id: uuid.UUID, agent_name: str) -> None:
    conn.execute(
        "UPDATE orchestrator_agent_runs SET agent_name = %s WHERE id = %s", (agent_name, run_id)
    )


def note_error(conn: Connection[Any], run_id: uuid.UUID, error: str) -> None:
    """Record why the current attempt failed while the run stays `running` for a retry,
    so an operator reading the run sees what it is waiting out."""
    conn.execute(
        "UPDATE orchestrator_agent_runs SET error = %s, updated_at = now() WHERE id = %s",
        (error[:1000], run_id),
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


def status_of(conn: Connection[Any], run_id: uuid.UUID) -> str | None:
    """Only the status: the cheap read a waiting request repeats."""
    row = conn.execute(
        "SELECT status FROM orchestrator_agent_runs WHERE id = %s", (run_id,)
    ).fetchone()
    return str(row["status"]) if row else None


def page(
    conn: Connection[Any],
    *,
    filters: dict[str, str | None],
    limit: int,
    cursor: str | None,
) -> tuple[list[AgentRunSummary], str | None]:
    """Newest first, keyset-paginated on (created_at, id); filters on `org_id`,
    `team_node_id`, `status`, `trigger_source`. Raises ValueError on a bad cursor."""
    rows, next_cursor = newest_first(
        conn,
        f"SELECT {_SUMMARY_COLUMNS} FROM orchestrator_agent_runs",  # noqa: S608
        sort_column="created_at",
        filter_columns=("org_id", "team_node_id", "status", "trigger_source"),
        filters=filters,
        limit=limit,
        cursor=cursor,
    )
    items = [AgentRunSummary.model_validate({**r, "agent_run_id": r["id"]}) for r in rows]
    return items, next_cursor
