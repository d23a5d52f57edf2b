"""The checks behind `GET /ready`: Postgres answers, Redis answers, and every
migration on disk is applied. Each check has its own short timeout, so `/ready` itself
never hangs a probe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.db.migrations import pending

Check = Callable[[], str]


def postgres_and_migrations(
    pool: ConnectionPool[Connection[Any]], expected: list[str]
) -> tuple[str, str]:
    """(postgres, migrations) results; 'ok' or a short reason."""
    try:
        with pool.connection(timeout=2.0) as conn:
            conn.execute("SELECT 1")
            missing = pending(conn, expected)
    except Exception as exc:
        return f"error: {type(exc).__name__}", "unknown"
    if missing:
        return "ok", f"pending: {', '.join(missing)}"
    return "ok", "ok"


def redis_ping(client: redis.Redis) -> str:
    try:
        client.ping()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
