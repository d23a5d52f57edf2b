"""Build the worker's dependencies from settings: peer clients with the internal admin
token, the agent client, the per-team dispatch limit, the webhook sources."""

from __future__ import annotations

import math
import time
from typing import Any

from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.events.pipeline import PipelineDeps
from orchestrator.peers.agent import AgentClient
from orchestrator.peers.config_service import ConfigServiceClient, ConfigServiceWorkerCalls
from orchestrator.settings import Settings
from orchestrator.webhooks.registry import source_by_name


def team_dispatch_limit(settings: Settings, namespace: str) -> Any:
    item = parse(settings.orchestrator_team_dispatch_limit)
    limiter = MovingWindowRateLimiter(
        RedisStorage(settings.redis_dsn, key_prefix=f"{namespace}:dispatch")
    )

    def admit(org_id: str, team_node_id: str) -> int | None:
        if limiter.hit(item, org_id, team_node_id):
            return None
        reset = limiter.get_window_stats(item, org_id, team_node_id).reset_time
        return max(1000, math.ceil((reset - time.time()) * 1000))

    return admit


def build_deps(
    settings: Settings, pool: ConnectionPool[Connection[Any]], *, namespace: str | None = None
) -> PipelineDeps:
    assert settings.config_service_url and settings.orchestrator_internal_admin_token
    client = ConfigServiceClient(
        settings.config_service_url, timeout=settings.orchestrator_peer_timeout_seconds
    )
    return PipelineDeps(
        settings=settings,
        pool=pool,
        config=ConfigServiceWorkerCalls(
            client,
            settings.orchestrator_internal_admin_token.get_secret_value(),
            cache_seconds=settings.orchestrator_config_cache_seconds,
        ),
        agent=AgentClient(),
        sources=lambda name: source_by_name(settings, name),
        dispatch_limit=team_dispatch_limit(
            settings, namespace or settings.orchestrator_redis_namespace
        ),
    )
