"""Record a message's final failure, with its traceback, in Postgres.

Runs at `after_nack`: Dramatiq nacks a message only when it is dead-lettered (retries
exhausted or a permanent error), never for a retry, so this fires once per final
failure — unlike `Callbacks.on_failure`, which fires on every failed attempt (NOTES).
The dead-letter payload in Redis carries no traceback, hence this record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq import Middleware
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.job_failures import record_final_failure

log = logging.getLogger("orchestrator.workers.failures")


class FailureRecorder(Middleware):
    """Parameters: `pool` — a callable returning the process's open Postgres pool
    (opened after fork by `WorkerResources`)."""

    def __init__(self, pool: Callable[[], ConnectionPool[Connection[Any]]]) -> None:
        self._pool = pool

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
        options = message.options
        traceback = options.get("traceback")
        error = _last_line(traceback) if traceback else "failed"
        try:
            with self._pool().connection() as conn:
                record_final_failure(
                    conn,
                    message_id=message.message_id,
                    actor=message.actor_name,
                    queue=message.queue_name.removesuffix(".DQ"),
                    args=list(message.args),
                    kwargs=dict(message.kwargs),
                    retries=int(options.get("retries", 0)),
                    error=error,
                    traceback=traceback,
                )
        except Exception:
            # The dead letter itself is still in Redis; losing the record must not
            # crash the worker thread.
            log.exception("could not record the final failure of a message")
        log.warning(
            "message failed for good",
            extra={
                "actor": message.actor_name,
                "failed_message_id": message.message_id,
                "retries": options.get("retries", 0),
            },
        )


def _last_line(traceback: str) -> str:
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1][:1000] if lines else "failed"
