"""The audit trail: one row per admin action, provisioning step, replay, requeue and
final job failure (SPEC §6). Rows are append-only; details are redacted on the way in,
so the audit log can be shown to operators as it is."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from orchestrator.pagination import decode_cursor, encode_cursor
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
    conn: Connection[Any],
    *,
    org_id: str | None,
    action: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEntry], str | None]:
    """Newest first, keyset-paginated on (at, id)."""
    where: list[str] = []
    params: list[Any] = []
    if org_id is not None:
        where.append("org_id = %s")
        params.append(org_id)
    if action is not None:
        where.append("action = %s")
        params.append(action)
    if cursor:
        at, row_id = decode_cursor(cursor)
        where.append("(at, id) < (%s, %s)")
        params.extend([at, int(row_id)])
    sql = "SELECT * FROM orchestrator_audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY at DESC, id DESC LIMIT %s"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    entries = [AuditEntry.model_validate(r) for r in rows[:limit]]
    next_cursor = encode_cursor(entries[-1].at, entries[-1].id) if len(rows) > limit else None
    return entries, next_cursor
