"""Provisioning runs in `orchestrator_provisioning_runs` (SPEC §5, §6, §10).

A run is created `queued` with every step `pending`; the engine writes each step as it
starts and ends. The idempotency key is unique per (org, team): the same key with the
same request finds the existing run, with another request it is refused. A freshly
issued team token is stored Fernet-encrypted and handed out exactly once: `deliver_token`
clears it in the same statement that reads it.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from orchestrator.pagination import newest_first
from orchestrator.timestamps import UtcDateTime

RunKind = Literal["provision", "deprovision"]
RunStatus = Literal["queued", "running", "succeeded", "failed"]
StepStatus = Literal["pending", "running", "succeeded", "skipped", "failed", "compensated"]

PROVISION_STEPS = (
    "team_node",
    "routing",
    "team_token",
    "pipeline_schedule",
    "dedicated_agent",
    "bootstrap",
    "record",
)
DEPROVISION_STEPS = ("team_tokens", "routing", "schedules", "dedicated_agent", "record")
STEPS: dict[str, tuple[str, ...]] = {
    "provision": PROVISION_STEPS,
    "deprovision": DEPROVISION_STEPS,
}

_COLUMNS = (
    "id, kind, org_id, team_node_id, idempotency_key, status, request, request_hash, steps,"
    " error, attempts, created_at, updated_at, started_at, finished_at,"
    " team_token_encrypted IS NOT NULL AS token_pending"
)


class Step(BaseModel):
    name: str
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    error: str | None = None
    detail: dict[str, Any] = {}


class Run(BaseModel):
    """The SPEC §10 shape (`team_token` only on the one delivering read)."""

    provisioning_run_id: uuid.UUID
    kind: RunKind
    org_id: str
    team_node_id: str
    status: RunStatus
    steps: list[Step]
    error: str | None
    attempts: int
    created_at: UtcDateTime
    updated_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    duration_seconds: float | None = None
    idempotency_key: str | None = None
    request: dict[str, Any] = {}
    request_hash: str | None = None
    token_pending: bool = False

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def public(self, *, team_token: str | None = None) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"request_hash", "token_pending"})
        if team_token is not None:
            data["team_token"] = team_token
        return data


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


def _run(row: dict[str, Any]) -> Run:
    data = dict(row)
    data["provisioning_run_id"] = data.pop("id")
    started, finished = data.get("started_at"), data.get("finished_at")
    if started and finished:
        data["duration_seconds"] = round((finished - started).total_seconds(), 3)
    return Run.model_validate(data)


def create(
    conn: Connection[Any],
    *,
    kind: RunKind,
    org_id: str,
    team_node_id: str,
    request: dict[str, Any],
    request_hash: str,
    idempotency_key: str | None,
) -> tuple[Run, bool]:
    """(run, created). An existing run with this key is returned when it was for the
    same request; `IdempotencyConflict` otherwise."""
    steps = [Step(name=name).model_dump(mode="json") for name in STEPS[kind]]
    row = conn.execute(
        "INSERT INTO orchestrator_provisioning_runs (id, kind, org_id, team_node_id,"  # noqa: S608
        " idempotency_key, status, request, request_hash, steps)"
        " VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s)"
        " ON CONFLICT (org_id, team_node_id, idempotency_key) DO NOTHING"
        f" RETURNING {_COLUMNS}",
        (
            uuid.uuid4(),
            kind,
            org_id,
            team_node_id,
            idempotency_key,
            Jsonb(request),
            request_hash,
            Jsonb(steps),
        ),
    ).fetchone()
    if row is not None:
        return _run(row), True
    existing = conn.execute(
        f"SELECT {_COLUMNS} FROM orchestrator_provisioning_runs"  # noqa: S608
        " WHERE org_id = %s AND team_node_id = %s AND idempotency_key = %s",
        (org_id, team_node_id, idempotency_key),
    ).fetchone()
    if existing is None:  # deleted in between: cannot happen, runs are never deleted
        raise IdempotencyConflict("the idempotency key's run vanished; retry")
    run = _run(existing)
    if run.request_hash != request_hash or run.kind != kind:
        raise IdempotencyConflict(
            f"idempotency key {idempotency_key!r} was used for a different request"
            f" (run {run.provisioning_run_id})"
        )
    return run, False


def get(conn: Connection[Any], run_id: uuid.UUID) -> Run | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM orchestrator_provisioning_runs WHERE id = %s",  # noqa: S608
        (run_id,),
    ).fetchone()
    return _run(row) if row else None


def page(
    conn: Connection[Any], *, filters: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[Run], str | None]:
    """Newest first, keyset-paginated on (created_at, id). Raises ValueError on a bad
    cursor."""
    rows, next_cursor = newest_first(
        conn,
        f"SELECT {_COLUMNS} FROM orchestrator_provisioning_runs",  # noqa: S608
        sort_column="created_at",
        filter_columns=("org_id", "team_node_id", "status", "kind"),
        filters=filters,
        limit=limit,
        cursor=cursor,
    )
    return [_run(r) for r in rows], next_cursor


def save_steps(
    conn: Connection[Any],
    run_id: uuid.UUID,
    steps: list[Step],
    *,
    status: RunStatus | None = None,
    error: str | None = None,
) -> None:
    """Write the steps (and optionally the run's status and error) as one update."""
    ending = status in ("succeeded", "failed")
    conn.execute(
        "UPDATE orchestrator_provisioning_runs SET steps = %s,"
        " status = COALESCE(%s, status), error = COALESCE(%s, error), updated_at = now(),"
        " finished_at = CASE WHEN %s THEN now() ELSE finished_at END WHERE id = %s",
        (Jsonb([s.model_dump(mode="json") for s in steps]), status, error, ending, run_id),
    )


def start_attempt(conn: Connection[Any], run_id: uuid.UUID) -> None:
    conn.execute(
        "UPDATE orchestrator_provisioning_runs SET status = 'running',"
        " attempts = attempts + 1, started_at = COALESCE(started_at, now()),"
        " updated_at = now() WHERE id = %s",
        (run_id,),
    )


def store_token(conn: Connection[Any], run_id: uuid.UUID, encrypted: str) -> None:
    conn.execute(
        "UPDATE orchestrator_provisioning_runs SET team_token_encrypted = %s,"
        " updated_at = now() WHERE id = %s",
        (encrypted, run_id),
    )


def drop_token(conn: Connection[Any], run_id: uuid.UUID) -> None:
    """A token that was revoked (compensation) must never be delivered."""
    conn.execute(
        "UPDATE orchestrator_provisioning_runs SET team_token_encrypted = NULL WHERE id = %s",
        (run_id,),
    )


def deliver_token(conn: Connection[Any], run_id: uuid.UUID) -> str | None:
    """The encrypted token of a succeeded run, cleared in the same statement, so two
    concurrent reads can never both receive it."""
    row = conn.execute(
        "UPDATE orchestrator_provisioning_runs r SET team_token_encrypted = NULL,"
        " team_token_delivered_at = now()"
        " FROM (SELECT id, team_token_encrypted FROM orchestrator_provisioning_runs"
        "       WHERE id = %s AND status = 'succeeded' AND team_token_encrypted IS NOT NULL"
        "       FOR UPDATE) old"
        " WHERE r.id = old.id RETURNING old.team_token_encrypted AS token",
        (run_id,),
    ).fetchone()
    if not row:
        return None
    token = row["token"] if isinstance(row, dict) else row[0]
    return str(token)
