"""The audit trail: one row per admin action, provisioning step, replay, requeue and
final job failure (SPEC §6). Rows are append-only; details are redacted on the way in,
so the audit log can be shown to operators as it is."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from orchestrator.pagination import newest_first
from orchestrator.redaction import redact
from orchestrator.timestamps import UtcDateTime


class AuditEntry(BaseModel):
    id: int
    at: UtcDateTime
    actor: str
    action: str
    org_id: str | None
    team_node_id: str | None
    subject: str | None
    request_id: str | None
    detail: dict[str, Any]


def record(
    conn: Connection[Any],
    *,
    actor: str,
    action: str,
    org_id: str | None = None,
    team_node_id: str | None = None,
    subject: str | None = None,
    request_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO orchestrator_audit_log"
        " (actor, action, org_id, team_node_id, subject, request_id, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (actor, action, org_id, team_node_id, subject, request_id, Jsonb(redact(detail or {}))),
    )


def page(
    conn: Connection[Any], *, filters: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[AuditEntry], str | None]:
    """Newest first, keyset-paginated on (at, id); filters on `org_id` and `action`.
    Raises ValueError on a bad cursor."""
    rows, next_cursor = newest_first(
        conn,
        "SELECT * FROM orchestrator_audit_log",
        sort_column="at",
        filter_columns=("org_id", "action"),
        filters=filters,
        limit=limit,
        cursor=cursor,
        row_id=int,
    )
    return [AuditEntry.model_validate(r) for r in rows], next_cursor
