"""What the web app needs from the outside world, gathered in one object that
`create_app` receives. Tests build it from their own Postgres, Redis and stand-ins;
`get_app()` builds it from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.peers.config_service import ConfigServiceClient
from orchestrator.settings import Settings


@dataclass
class Services:
    settings: Settings
    pool: ConnectionPool[Connection[Any]]
    redis: redis.Redis
    broker: RedisBroker
    config_service: ConfigServiceClient
    namespace: str

    def close(self) -> None:
        self.pool.close()
        self.config_service.close()
        self.redis.close()
