"""Schedules across teams, for the dashboard's sync view (SPEC §9 "schedule sync
states"). The admin API lists one team's schedules; an operator at 3 a.m. needs the
other cut: every schedule that is not in sync, whatever team it belongs to.

Newest first, keyset-paginated on (created_at, id) — migration 0003_dashboard_indexes
gives that order an index — with optional filters.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection

from orchestrator.pagination import decode_cursor, encode_cursor
from orchestrator.schedules.model import Schedule

_COLUMNS = (
    "id AS schedule_id, org_id, team_node_id, schedule_type, cron_expression, timezone,"
    " enabled, k8s_cronjob_name, sync_status, sync_error, last_synced_at, last_run_at,"
    " created_at, updated_at"
)
FILTERS = ("org_id", "team_node_id", "schedule_type", "sync_status")


def page(
    conn: Connection[Any], *, filters: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[Schedule], str | None]:
    """Raises ValueError on a bad cursor."""
    where: list[str] = []
    params: list[Any] = []
    for column in FILTERS:
        if filters.get(column) is not None:
            where.append(f"{column} = %s")
            params.append(filters[column])
    if cursor:
        at, last_id = decode_cursor(cursor)
        where.append("(created_at, id) < (%s, %s)")
        params += [at.replace(tzinfo=None), uuid.UUID(last_id)]
    sql = f"SELECT {_COLUMNS} FROM orchestrator_pipeline_schedules"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, id DESC LIMIT %s"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    items = [Schedule.model_validate(r) for r in rows[:limit]]
    next_cursor = (
        encode_cursor(items[-1].created_at, items[-1].schedule_id) if len(rows) > limit else None
    )
    return items, next_cursor


def sync_counts(conn: Connection[Any], *, org_id: str | None) -> dict[str, int]:
    """How many schedules are `pending`, `synced` and in `error` (of one org, or all)."""
    sql = "SELECT sync_status, count(*) AS n FROM orchestrator_pipeline_schedules"
    params: list[Any] = []
    if org_id is not None:
        sql += " WHERE org_id = %s"
        params.append(org_id)
    sql += " GROUP BY sync_status"
    counts = {"pending": 0, "synced": 0, "error": 0}
    for row in conn.execute(sql, params).fetchall():
        counts[row["sync_status"]] = int(row["n"])
    return counts
