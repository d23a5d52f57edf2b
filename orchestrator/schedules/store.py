"""Schedule rows in `orchestrator_pipeline_schedules` (SPEC §6).

Every change of what a CronJob is built from leaves the row `pending` and, through the
table's trigger (migration 0002), sends `NOTIFY orchestrator_schedules` at commit, which
wakes the scheduler's reconciler. The reconciler's own writes go through
`record_sync`, which only touches a row that has not changed since the pass read it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection

from orchestrator.k8s.naming import cronjob_name
from orchestrator.schedules.model import Schedule, ScheduleCreate, ScheduleUpdate

CHANNEL = "orchestrator_schedules"

_COLUMNS = (
    "id AS schedule_id, org_id, team_node_id, schedule_type, cron_expression, timezone,"
    " enabled, k8s_cronjob_name, sync_status, sync_error, last_synced_at, last_run_at,"
    " created_at, updated_at"
)


class ScheduleExists(Exception):
    """The team already has a schedule of that type."""


def create(conn: Connection[Any], org_id: str, team_node_id: str, body: ScheduleCreate) -> Schedule:
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO orchestrator_pipeline_schedules"  # noqa: S608
                " (id, org_id, team_node_id, schedule_type, cron_expression, timezone,"
                "  enabled, k8s_cronjob_name)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                (
                    uuid.uuid4(),
                    org_id,
                    team_node_id,
                    body.schedule_type,
                    body.cron_expression,
                    body.timezone,
                    body.enabled,
                    cronjob_name(org_id, team_node_id, body.schedule_type),
                ),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        existing = conn.execute(
            "SELECT id FROM orchestrator_pipeline_schedules"
            " WHERE org_id = %s AND team_node_id = %s AND schedule_type = %s",
            (org_id, team_node_id, body.schedule_type),
        ).fetchone()
        where = (
            f" ({existing['id'] if isinstance(existing, dict) else existing[0]})"
            if existing
            else ""
        )
        raise ScheduleExists(
            f"team {team_node_id!r} already has its {body.schedule_type} schedule{where};"
            " change it with PATCH"
        ) from None
    return Schedule.model_validate(row)


def list_for_team(conn: Connection[Any], org_id: str, team_node_id: str) -> list[Schedule]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM orchestrator_pipeline_schedules"  # noqa: S608
        " WHERE org_id = %s AND team_node_id = %s ORDER BY created_at, id",
        (org_id, team_node_id),
    ).fetchall()
    return [Schedule.model_validate(r) for r in rows]


def get(
    conn: Connection[Any], org_id: str, team_node_id: str, schedule_id: uuid.UUID
) -> Schedule | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM orchestrator_pipeline_schedules"  # noqa: S608
        " WHERE id = %s AND org_id = %s AND team_node_id = %s",
        (schedule_id, org_id, team_node_id),
    ).fetchone()
    return Schedule.model_validate(row) if row else None


def update(
    conn: Connection[Any],
    org_id: str,
    team_node_id: str,
    schedule_id: uuid.UUID,
    changes: ScheduleUpdate,
) -> Schedule | None:
    values = changes.model_dump(exclude_unset=True)
    assignments = ", ".join(f"{name} = %s" for name in values)
    row = conn.execute(
        f"UPDATE orchestrator_pipeline_schedules SET {assignments},"  # noqa: S608
        " sync_status = 'pending', updated_at = now()"
        f" WHERE id = %s AND org_id = %s AND team_node_id = %s RETURNING {_COLUMNS}",
        (*values.values(), schedule_id, org_id, team_node_id),
    ).fetchone()
    return Schedule.model_validate(row) if row else None


def delete(
    conn: Connection[Any], org_id: str, team_node_id: str, schedule_id: uuid.UUID
) -> Schedule | None:
    row = conn.execute(
        "DELETE FROM orchestrator_pipeline_schedules"  # noqa: S608
        f" WHERE id = %s AND org_id = %s AND team_node_id = %s RETURNING {_COLUMNS}",
        (schedule_id, org_id, team_node_id),
    ).fetchone()
    return Schedule.model_validate(row) if row else None


# -- the reconciler's view ---------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleRow:
    """The columns a reconcile pass reads, as cheaply as rows can be held (tens of
    thousands at once)."""

    id: uuid.UUID
    org_id: str
    team_node_id: str
    schedule_type: str
    cron_expression: str
    timezone: str
    enabled: bool
    k8s_cronjob_name: str | None
    k8s_generation: int | None
    sync_status: str
    sync_error: str | None
    last_run_at: datetime | None
    updated_at: datetime


def all_rows(conn: Connection[Any], batch: int = 5000) -> Iterator[ScheduleRow]:
    """Every row, streamed with a server-side cursor so memory stays flat."""
    with conn.cursor(name="reconcile_rows") as cur:
        cur.itersize = batch
        cur.execute(
            "SELECT id, org_id, team_node_id, schedule_type, cron_expression, timezone,"
            " enabled, k8s_cronjob_name, k8s_generation, sync_status, sync_error,"
            " last_run_at, updated_at FROM orchestrator_pipeline_schedules"
        )
        for row in cur:
            values = row.values() if isinstance(row, dict) else row
            yield ScheduleRow(*values)


@dataclass(frozen=True)
class SyncResult:
    """What a pass learnt about one row."""

    id: uuid.UUID
    read_updated_at: datetime
    sync_status: str
    sync_error: str | None
    k8s_cronjob_name: str
    k8s_generation: int | None
    last_run_at: datetime | None
    wrote: bool


def record_sync(conn: Connection[Any], results: Iterable[SyncResult]) -> int:
    """Store the outcome of a pass. A row changed since the pass read it is left alone:
    its change woke another pass, which will record the truth."""
    params = [
        (
            r.sync_status,
            r.sync_error,
            r.k8s_cronjob_name,
            r.k8s_generation,
            r.last_run_at,
            r.wrote or r.sync_status == "synced",
            r.id,
            r.read_updated_at,
        )
        for r in results
    ]
    if not params:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE orchestrator_pipeline_schedules SET sync_status = %s, sync_error = %s,"
            " k8s_cronjob_name = %s, k8s_generation = %s,"
            " last_run_at = COALESCE(%s, last_run_at),"
            " last_synced_at = CASE WHEN %s THEN now() ELSE last_synced_at END"
            " WHERE id = %s AND updated_at = %s",
            params,
        )
    return len(params)
