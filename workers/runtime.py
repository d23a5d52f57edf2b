"""Build the worker's dependencies from settings: peer clients with the internal admin
token, the agent client, the per-team dispatch limit, the webhook sources."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from cryptography.fernet import Fernet
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.errors import PermanentError
from orchestrator.events.pipeline import PipelineDeps
from orchestrator.k8s.client import KubernetesApi
from orchestrator.peers.agent import AgentClient
from orchestrator.peers.ai_pipeline import AiPipelineClient
from orchestrator.peers.config_service import ConfigServiceClient, ConfigServiceWorkerCalls
from orchestrator.provisioning.steps import ProvisioningDeps
from orchestrator.schedules.cronjob import template_from_settings
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


def build_provisioning_deps(
    settings: Settings, pool: ConnectionPool[Connection[Any]]
) -> ProvisioningDeps:
    """What the provisioning actor needs. The Kubernetes client is built on first use,
    so a worker without cluster configuration still serves every other queue; a run
    that needs the cluster then fails with the reason."""
    assert settings.config_service_url and settings.orchestrator_internal_admin_token
    assert settings.ai_pipeline_api_url and settings.orchestrator_secret_key
    admin_token = settings.orchestrator_internal_admin_token.get_secret_value()
    client = ConfigServiceClient(
        settings.config_service_url, timeout=settings.orchestrator_peer_timeout_seconds
    )
    kube: list[KubernetesApi] = []
    lock = threading.Lock()

    def kubernetes() -> KubernetesApi:
        with lock:
            if not kube:
                try:
                    kube.append(
                        KubernetesApi.from_kubeconfig(
                            settings.kubeconfig,
                            settings.k8s_namespace,
                            timeout_seconds=max(settings.orchestrator_peer_timeout_seconds, 10),
                        )
                    )
                except Exception as exc:
                    raise PermanentError(
                        "no usable Kubernetes configuration (KUBECONFIG or in-cluster):"
                        f" {type(exc).__name__}",
                        reason="k8s_unavailable",
                    ) from None
            return kube[0]

    return ProvisioningDeps(
        settings=settings,
        pool=pool,
        config=ConfigServiceWorkerCalls(client, admin_token, cache_seconds=0),
        pipeline=AiPipelineClient(
            settings.ai_pipeline_api_url,
            admin_token,
            timeout=max(settings.orchestrator_peer_timeout_seconds, 10),
        ),
        kubernetes=kubernetes,
        fernet=Fernet(settings.orchestrator_secret_key.get_secret_value().encode()),
        template=template_from_settings(settings),
    )
