"""Run a piece of work on one replica at a time.

`pg_try_advisory_xact_lock` is taken inside a transaction and released at its end, so
a crashed holder never leaves the lock behind and it works through PgBouncer in
transaction mode (NOTES). "Try" means another replica that is already working is
skipped, not waited for: the next tick comes soon enough.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from psycopg import Connection
from psycopg_pool import ConnectionPool

T = TypeVar("T")


def run_exclusively(
    pool: ConnectionPool[Connection[Any]], key: str, work: Callable[[Connection[Any]], T]
) -> tuple[bool, T | None]:
    """(True, result) when this replica held the lock and ran `work`; (False, None) when
    another replica holds it. `work` receives the lock-holding connection."""
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0)) AS locked", (key,)
        ).fetchone()
        if not row or not _locked(row):
            return False, None
        return True, work(conn)


def _locked(row: Any) -> bool:
    return bool(row["locked"] if isinstance(row, dict) else row[0])
