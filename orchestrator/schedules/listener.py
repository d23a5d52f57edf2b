"""Hear schedule changes as they commit (`LISTEN orchestrator_schedules`).

The table's trigger notifies at commit; this listener, on its own connection and
thread, calls `on_change` for each notification, so a new or edited schedule reaches
the cluster within seconds rather than at the next reconcile interval. After losing
its connection it reconnects with backoff and calls `on_change` once, since a change
may have committed while nobody listened. The periodic pass remains the safety net.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from orchestrator.schedules.store import CHANNEL

log = logging.getLogger("orchestrator.schedules.listener")


class ChangeListener:
    """Parameters: `dsn` (its own connection, outside any pool: LISTEN is per session),
    `on_change` (called from the listener's thread), `poll_seconds` (how often it checks
    whether to stop)."""

    def __init__(
        self, dsn: str, on_change: Callable[[], None], *, poll_seconds: float = 1.0
    ) -> None:
        self._dsn = dsn
        self._on_change = on_change
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> ChangeListener:
        self._thread = threading.Thread(target=self._run, name="schedule-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._poll + 5)

    def _run(self) -> None:
        backoff = 0.5
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if not first:
                        self._on_change()  # changes may have committed while we were away
                    first = False
                    backoff = 0.5
                    while not self._stop.is_set():
                        for _notify in conn.notifies(timeout=self._poll, stop_after=1):
                            self._on_change()
            except psycopg.Error as exc:
                self.connected.clear()
                log.warning(
                    "schedule listener lost Postgres; reconnecting",
                    extra={"error": type(exc).__name__, "retry_in_seconds": backoff},
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                first = False
