"""What the web app needs from the outside world, gathered in one object that
`create_app` receives. Tests build it from their own Postgres, Redis and stand-ins;
`get_app()` builds it from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis
from cryptography.fernet import Fernet
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

    @cached_property
    def fernet(self) -> Fernet:
        """Decrypts a run's new team token for its one delivering read."""
        key = self.settings.orchestrator_secret_key
        if key is None:
            raise RuntimeError("ORCHESTRATOR_SECRET_KEY is required by the web tier")
        return Fernet(key.get_secret_value().encode())

    def close(self) -> None:
        self.pool.close()
        self.config_service.close()
        self.redis.close()
