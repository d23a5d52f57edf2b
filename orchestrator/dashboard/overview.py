"""The dashboard's overview: is it healthy, and what failed (SPEC §9).

Everything comes from indexed, time-bounded reads, so the cost follows the last hour's
traffic, not the size of the tables: webhook events of the window grouped by source,
status and minute (one range scan of `received_at`), runs of the last day grouped by
status (one range scan of `created_at`), queue depths and live workers from Redis, and
jobs per minute from the throughput buckets the workers write.

Queues, workers and job counts span every organization, so an org admin's overview
leaves them out (as `GET /api/v1/admin/jobs/*` refuses them) and counts only its own
org's events and runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from psycopg import Connection
from pydantic import BaseModel

from orchestrator import dead_letters
from orchestrator.agent_runs import RunStatus as AgentRunStatus
from orchestrator.dashboard import schedules, throughput
from orchestrator.events.store import EventStatus
from orchestrator.provisioning.runs import RunStatus
from orchestrator.timestamps import UtcDateTime
from orchestrator.webhooks.model import SOURCE_NAMES

EVENT_STATUSES: tuple[str, ...] = get_args(EventStatus)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
AGENT_RUN_STATUSES: tuple[str, ...] = get_args(AgentRunStatus)
WINDOW_MINUTES = 60
RECENT_MINUTES = 5
RUNS_WINDOW_HOURS = 24

# Fixed table names only: never built from input.
_RUN_TABLES = {
    "provisioning": "orchestrator_provisioning_runs",
    "agent": "orchestrator_agent_runs",
}


class QueueCounts(BaseModel):
    name: str
    ready: int
    delayed: int
    in_progress: int
    dead: int


class JobsPerMinute(BaseModel):
    """Per minute of the window: attempts that finished, attempts that raised, and
    messages dead-lettered."""

    ok: list[int]
    failed: list[int]
    dead: list[int]


class Overview(BaseModel):
    """`queues`, `workers_alive` and `jobs` are null for an org admin: they span every
    organization. `problems` says in words what needs attention, most urgent first
    (empty: all clear)."""

    generated_at: UtcDateTime
    window_minutes: int
    minutes: list[int]
    queues: list[QueueCounts] | None
    workers_alive: int | None
    jobs: JobsPerMinute | None
    events_per_minute: dict[str, list[int]]
    events_by_status: dict[str, dict[str, int]]
    runs_window_hours: int
    provisioning_runs: dict[str, int]
    agent_runs: dict[str, int]
    schedules: dict[str, int]
    problems: list[str]


def build(
    conn: Connection[Any],
    redis_client: Any,
    namespace: str,
    *,
    org_id: str | None,
    include_jobs: bool,
    now: datetime,
) -> Overview:
    """The overview as `org_id` (None: a super-admin) may see it at `now`."""
    last_minute = int(now.timestamp()) // 60
    minutes = [(last_minute - WINDOW_MINUTES + 1 + i) * 60 for i in range(WINDOW_MINUTES)]
    since = datetime.fromtimestamp(minutes[0], UTC)
    per_minute, by_status = event_counts(conn, since=since, minutes=minutes, org_id=org_id)
    runs_since = now - timedelta(hours=RUNS_WINDOW_HOURS)
    queues: list[QueueCounts] | None = None
    workers: int | None = None
    jobs: JobsPerMinute | None = None
    if include_jobs:
        depths, workers = dead_letters.queue_depths(redis_client, namespace)
        queues = [QueueCounts(**d.__dict__) for d in depths]
        done = throughput.series(
            redis_client, namespace, now=now.timestamp(), minutes=WINDOW_MINUTES
        )
        jobs = JobsPerMinute(ok=done.ok, failed=done.failed, dead=done.dead)
    overview = Overview(
        generated_at=now,
        window_minutes=WINDOW_MINUTES,
        minutes=minutes,
        queues=queues,
        workers_alive=workers,
        jobs=jobs,
        events_per_minute=per_minute,
        events_by_status=by_status,
        runs_window_hours=RUNS_WINDOW_HOURS,
        provisioning_runs=run_counts(
            conn, "provisioning", since=runs_since, org_id=org_id, statuses=RUN_STATUSES
        ),
        agent_runs=run_counts(
            conn, "agent", since=runs_since, org_id=org_id, statuses=AGENT_RUN_STATUSES
        ),
        schedules=schedules.sync_counts(conn, org_id=org_id),
        problems=[],
    )
    overview.problems = problems(overview)
    return overview


def problems(o: Overview) -> list[str]:
    """What an operator woken at night should look at first, in words."""
    found: list[str] = []
    if o.workers_alive == 0:
        found.append("No worker process is alive: queued work is not being processed.")
    dead = sum(q.dead for q in o.queues or [])
    if dead:
        found.append(f"{dead} dead letter(s) wait for a requeue or a delete.")
    recent_failures = sum(o.jobs.failed[-RECENT_MINUTES:]) if o.jobs is not None else 0
    if recent_failures:
        found.append(
            f"{recent_failures} job attempt(s) failed in the last {RECENT_MINUTES} minutes."
        )
    failed_events = sum(by.get("failed", 0) for by in o.events_by_status.values())
    if failed_events:
        found.append(f"{failed_events} webhook event(s) failed in the last hour.")
    for name, counts in (("provisioning", o.provisioning_runs), ("agent", o.agent_runs)):
        if counts.get("failed"):
            found.append(
                f"{counts['failed']} {name} run(s) failed in the last {o.runs_window_hours} h."
            )
    if o.schedules.get("error"):
        found.append(f"{o.schedules['error']} schedule(s) failed to sync to Kubernetes.")
    return found


def event_counts(
    conn: Connection[Any], *, since: datetime, minutes: list[int], org_id: str | None
) -> tuple[dict[str, list[int]], dict[str, dict[str, int]]]:
    """Events received since `since`: per source and minute, and per source and status.
    Every known source and status is present (zeros included), so a chart's series and
    a table's cells never change shape between refreshes."""
    # date_trunc on the timestamp is far cheaper per row than numeric epoch arithmetic;
    # with migration 0003's covering index the whole count is an index-only scan.
    sql = (
        "SELECT source, status, date_trunc('minute', received_at) AS minute, count(*) AS n"
        " FROM orchestrator_webhook_events WHERE received_at >= %s"
    )
    params: list[Any] = [_naive_utc(since)]
    if org_id is not None:
        sql += " AND org_id = %s"
        params.append(org_id)
    sql += " GROUP BY 1, 2, 3"
    index = {m // 60: i for i, m in enumerate(minutes)}
    per_minute = {s: [0] * len(minutes) for s in SOURCE_NAMES}
    by_status = {s: dict.fromkeys(EVENT_STATUSES, 0) for s in SOURCE_NAMES}
    for row in conn.execute(sql, params).fetchall():
        source, status, n = row["source"], row["status"], int(row["n"])
        slot = index.get(int(row["minute"].replace(tzinfo=UTC).timestamp()) // 60)
        if source not in per_minute or slot is None:
            continue
        per_minute[source][slot] += n
        by_status[source][status] = by_status[source].get(status, 0) + n
    return per_minute, by_status


def run_counts(
    conn: Connection[Any],
    kind: str,
    *,
    since: datetime,
    org_id: str | None,
    statuses: tuple[str, ...],
) -> dict[str, int]:
    """Runs of `kind` (`provisioning` or `agent`) created since `since`, by status."""
    sql = f"SELECT status, count(*) AS n FROM {_RUN_TABLES[kind]} WHERE created_at >= %s"  # noqa: S608
    params: list[Any] = [_naive_utc(since)]
    if org_id is not None:
        sql += " AND org_id = %s"
        params.append(org_id)
    sql += " GROUP BY status"
    counts = dict.fromkeys(statuses, 0)
    for row in conn.execute(sql, params).fetchall():
        counts[row["status"]] = int(row["n"])
    return counts


def _naive_utc(value: datetime) -> datetime:
    """Columns are `TIMESTAMP` holding UTC (see `db.pool`): compare like with like, so
    the range scan uses the column's index as is."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
