"""gunicorn settings and hooks for the web tier (also usable as
`gunicorn -c python:web.gunicorn_conf 'web.app:get_app()'`).

- `gthread` workers: webhook handling is short blocking I/O (Postgres, Redis); the
  subclass answers what gunicorn refuses itself (bad request line, oversized headers)
  as JSON with a request id, like every other error (web/gunicorn_worker.py).
- The control socket is disabled: gunicorn ≥ 25.1 shares one per user (NOTES).
- prometheus multiprocess: the directory is wiped when the master starts and a dead
  worker's files are marked so its gauges leave the aggregate.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

worker_class = "web.gunicorn_worker.JsonErrorThreadWorker"
workers = int(os.environ.get("ORCHESTRATOR_WEB_WORKERS", "2"))
threads = int(os.environ.get("ORCHESTRATOR_WEB_THREADS", "8"))
bind = [f"0.0.0.0:{os.environ.get('PORT', '8070')}"]
control_socket_disable = True
graceful_timeout = 30
timeout = 60
# Seconds an idle keep-alive connection stays open. A client (an ingress, a load
# balancer) that reuses an idle connection just as gunicorn closes it gets a reset or
# an empty answer — nginx answers its own client 502. That race cannot happen while
# gunicorn waits longer than the client keeps connections idle: ingress-nginx and AWS
# ALB keep them 60 s, hence 75 (gunicorn's own default is 2; behind a Google Cloud
# load balancer, 600 s, set 620).
keepalive = int(os.environ.get("ORCHESTRATOR_WEB_KEEPALIVE_SECONDS", "75"))
accesslog = None
# Limits on the request line and headers (SPEC: header limits); bodies are capped by
# the app's BodyLimit middleware.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
