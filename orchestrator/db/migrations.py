"""Versioned SQL migrations in `migrations/`, applied with yoyo.

`apply()` is what `orchestrator migrate` runs. Two replicas running it at once must
leave one correct schema, so the whole apply happens under a Postgres session advisory
lock (yoyo's own lock table is created lazily and could itself race); the second
replica waits, then finds nothing to apply. It waits by polling `pg_try_advisory_lock`
rather than blocking in `pg_advisory_lock`: a blocked statement holds a snapshot, and
`CREATE INDEX CONCURRENTLY` (in a non-transactional migration) waits for every
snapshot to end — the two migrators would wait for each other forever.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

from orchestrator.settings import InvalidSetting

_LOCK_KEY = "orchestrator:migrate"
_LOCK_POLL_SECONDS = 0.2


def migrations_dir() -> Path:
    """`ORCHESTRATOR_MIGRATIONS_DIR`, else `migrations/` beside the source tree."""
    override = os.environ.get("ORCHESTRATOR_MIGRATIONS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "migrations"


class MigrationsNotFound(InvalidSetting):
    """No migration files where they should be: applying or checking nothing would
    silently report a current schema, so this stops the process instead."""


def migration_ids(directory: Path | None = None) -> list[str]:
    """The ids (file names without `.sql`) of every migration, in apply order."""
    directory = directory or migrations_dir()
    ids = sorted(p.stem for p in directory.glob("*.sql"))
    if not ids:
        raise MigrationsNotFound(
            f"no migrations found in {directory}; set ORCHESTRATOR_MIGRATIONS_DIR to the "
            "folder holding the project's migrations/*.sql"
        )
    return ids


@dataclass(frozen=True)
class MigrateResult:
    applied: list[str]
    already: int


def _yoyo_uri(dsn: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def apply(dsn: str, directory: Path | None = None) -> MigrateResult:
    """Apply every pending migration; a no-op when the schema is current."""
    directory = directory or migrations_dir()
    migration_ids(directory)  # refuse to "apply" an empty or missing folder
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as lock_conn:
        while not _first(
            lock_conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (_LOCK_KEY,)
            ).fetchone()
        ):
            time.sleep(_LOCK_POLL_SECONDS)
        try:
            backend = get_backend(_yoyo_uri(dsn))
            try:
                migrations = read_migrations(str(directory))
                with backend.lock():
                    pending = backend.to_apply(migrations)
                    backend.apply_migrations(pending)
                applied = [m.id for m in pending]
                return MigrateResult(applied=applied, already=len(migrations) - len(applied))
            finally:
                backend.connection.close()
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (_LOCK_KEY,))


def pending(conn: psycopg.Connection, expected: list[str]) -> list[str]:
    """Migration ids on disk that the database has not applied (for `/ready`)."""
    exists = conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL AS ok").fetchone()
    if not exists or not _first(exists):
        return list(expected)
    rows = conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
    done = {_first(r) for r in rows}
    return [m for m in expected if m not in done]


def _first(row: object) -> object:
    if isinstance(row, dict):
        return next(iter(row.values()))
    return row[0]  # type: ignore[index]
