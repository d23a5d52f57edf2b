"""Open the process's Postgres pool after Dramatiq forks its worker processes, and close
it at shutdown. A pool opened before a fork would share sockets across processes."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq import Middleware
from psycopg import Connection
from psycopg_pool import ConnectionPool


class WorkerResources(Middleware):
    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self.pool = pool

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        self.open()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        pass

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.pool.close()

    def open(self) -> ConnectionPool[Connection[Any]]:
        if self.pool.closed:
            self.pool.open(wait=False)
        return self.pool
