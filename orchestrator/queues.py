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


def acks_key(namespace: str, consumer: str, queue: str) -> str:
    """The set of messages `consumer` (a Dramatiq broker id, a member of the heartbeats
    set) has fetched from `queue` (or `<queue>.DQ`) and not yet acknowledged."""
    return f"{namespace}:__acks__.{consumer}.{queue}"


def worker_key(namespace: str, worker: str) -> str:
    """Liveness key of one worker process (written by the worker heartbeat middleware)."""
    return f"{namespace}:__orchestrator_workers__:{worker}"


def workers_key(namespace: str) -> str:
    """Sorted set of the worker processes that beat lately (name → time of the last
    beat), so their liveness keys can be read by name instead of found by a SCAN."""
    return f"{namespace}:__orchestrator_workers__"
