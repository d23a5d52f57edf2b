"""Run the Falcon app under gunicorn from Python (what `orchestrator web` does).

The app is loaded in each worker after the fork (no preload), so every worker opens
its own Postgres pool and Redis connections.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from orchestrator.settings import Settings, secret_masker


def prepare_metrics_dir(port: int) -> str:
    """Set `PROMETHEUS_MULTIPROC_DIR` before `prometheus_client` is imported anywhere."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = os.path.join(tempfile.gettempdir(), f"orchestrator-web-metrics-{port}")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.makedirs(directory, exist_ok=True)
    return directory


class WebServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, *, bind: str | None, workers: int, threads: int):
        self._settings = settings
        self._overrides = {"workers": workers, "threads": threads}
        if bind:
            self._overrides["bind"] = [bind]  # type: ignore[assignment]
        super().__init__()

    def load_config(self) -> None:
        from web import gunicorn_conf

        for key in dir(gunicorn_conf):
            if key.startswith("_") or key not in self.cfg.settings:
                continue
            self.cfg.set(key, getattr(gunicorn_conf, key))
        self.cfg.set("bind", [f"0.0.0.0:{self._settings.port}"])
        self.cfg.set("keepalive", self._settings.orchestrator_web_keepalive_seconds)
        for key, value in self._overrides.items():
            self.cfg.set(key, value)
        self.cfg.set("logconfig_dict", _logconfig(self._settings))

    def load(self) -> Any:
        from web.app import build_services, create_app

        # The app sizes its `Prefer: wait` budget from the threads really in use, which
        # `--threads` may have set apart from `ORCHESTRATOR_WEB_THREADS`.
        settings = self._settings.model_copy(
            update={"orchestrator_web_threads": self._overrides["threads"]}
        )
        return create_app(settings, build_services(settings))


def _logconfig(settings: Settings) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "orchestrator.logs.JsonFormatter",
                "process": "web",
                "secrets": secret_masker(settings),
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": os.environ.get("ORCHESTRATOR_LOG_LEVEL", "INFO")},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
