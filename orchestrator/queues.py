"""Names and Redis layout of the work queues (Dramatiq's Redis broker).

Web (to enqueue and to show queues) and workers (to consume) both need these facts;
keeping them here means the dashboard and the broker can never disagree on a key.
"""

from __future__ import annotations

QUEUES = ("webhooks", "agents", "provisioning", "default")


def queue_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}"


def delayed_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.DQ"


def dead_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.XQ"


def heartbeats_key(namespace: str) -> str:
    return f"{namespace}:__heartbeats__"


def acks_pattern(namespace: str) -> str:
    return f"{namespace}:__acks__.*"


def worker_key(namespace: str, worker: str) -> str:
    """Liveness key of one worker process (written by the worker heartbeat middleware)."""
    return f"{namespace}:__orchestrator_workers__:{worker}"


def workers_pattern(namespace: str) -> str:
    return f"{namespace}:__orchestrator_workers__:*"
