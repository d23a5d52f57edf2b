"""The Postgres connection pool.

Built closed (`open=False`) so that a process that forks (gunicorn, Dramatiq) opens
it in the child: a pool opened before a fork shares sockets between processes. Every
connection gets a `statement_timeout`, because a worker's time limit cannot interrupt
a blocked query (NOTES: TimeLimit cannot interrupt a blocking call).
"""

from __future__ import annotations

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from orchestrator.settings import Settings


def create_pool(
    settings: Settings, *, name: str, min_size: int = 1, wait_timeout: float = 5.0
) -> ConnectionPool[Connection]:
    """A closed pool; call `.open()` in the process (after any fork) that uses it.
    `wait_timeout` bounds the wait for a connection (the web tier must answer a webhook
    within seconds even while Postgres is down)."""
    timeout_ms = settings.orchestrator_statement_timeout_ms
    return ConnectionPool(
        settings.dsn,
        min_size=min_size,
        max_size=max(min_size, settings.orchestrator_db_pool_size),
        open=False,
        name=name,
        timeout=wait_timeout,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": 5,
            "application_name": f"orchestrator-{name}",
            # UTC sessions: TIMESTAMP columns filled by now() then hold UTC.
            "options": f"-c statement_timeout={timeout_ms} -c TimeZone=UTC",
        },
        reconnect_timeout=30.0,
    )
