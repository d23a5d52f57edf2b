"""Final failures of queued jobs (SPEC §6 `orchestrator_job_failures`).

Dead-lettered payloads in Redis carry no traceback (NOTES), so the failure is recorded
in Postgres at the moment a message exhausts its attempts: its actor, queue, masked
arguments, retries and traceback, plus an audit row.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from orchestrator import audit
from orchestrator.redaction import redact, redact_text


def record_final_failure(
    conn: Connection[Any],
    *,
    message_id: str,
    actor: str,
    queue: str,
    args: list[Any],
    kwargs: dict[str, Any],
    retries: int,
    error: str,
    traceback: str | None,
) -> None:
    arguments = redact({"args": list(args), "kwargs": dict(kwargs)})
    with conn.transaction():
        conn.execute(
            "INSERT INTO orchestrator_job_failures"
            " (message_id, actor, queue, arguments, retries, error, traceback)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (message_id) DO UPDATE SET retries = EXCLUDED.retries,"
            " error = EXCLUDED.error, traceback = EXCLUDED.traceback, failed_at = NOW(),"
            " arguments = EXCLUDED.arguments",
            (
                message_id,
                actor,
                queue,
                Jsonb(arguments),
                retries,
                redact_text(error),
                redact_text(traceback) if traceback else None,
            ),
        )
        audit.record(
            conn,
            actor="system:worker",
            action="job.failed",
            subject=message_id,
            detail={
                "actor": actor,
                "queue": queue,
                "retries": retries,
                "error": redact_text(error),
            },
        )


def failures_of(conn: Connection[Any], message_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The recorded final failure (error, traceback, time) of each of `message_ids` that
    has one, by message id: the part of a dead letter that Redis does not keep."""
    if not message_ids:
        return {}
    rows = conn.execute(
        "SELECT message_id, error, traceback, failed_at FROM orchestrator_job_failures"
        " WHERE message_id = ANY(%s)",
        (message_ids,),
    ).fetchall()
    return {r["message_id"]: r for r in rows}
