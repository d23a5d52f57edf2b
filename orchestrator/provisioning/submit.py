"""Accept a provisioning or deprovisioning request: one transaction stores the run,
its audit row and (when Redis answers) its message, so an acknowledged run is never
lost. With Redis down the run is stored `queued` all the same and the scheduler's
relay enqueues it later; the caller still gets its run id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from psycopg import Connection

from orchestrator import audit
from orchestrator.provisioning import runs
from orchestrator.provisioning.request import DeprovisionRequest, ProvisionRequest, request_hash

log = logging.getLogger("orchestrator.provisioning")


def submit(
    conn: Connection[Any],
    request: ProvisionRequest | DeprovisionRequest,
    *,
    actor: str,
    request_id: str | None,
    enqueue: Callable[[str], object],
) -> tuple[runs.Run, bool]:
    """(run, created). `IdempotencyConflict` when the key was used for another request."""
    kind: runs.RunKind = "provision" if isinstance(request, ProvisionRequest) else "deprovision"
    canonical = request.canonical()
    with conn.transaction():
        run, created = runs.create(
            conn,
            kind=kind,
            org_id=request.org_id,
            team_node_id=request.team_node_id,
            request=canonical,
            request_hash=request_hash(kind, canonical),
            idempotency_key=request.idempotency_key,
        )
        if not created:
            return run, False
        audit.record(
            conn,
            actor=actor,
            action=f"{kind}.requested",
            org_id=request.org_id,
            team_node_id=request.team_node_id,
            subject=str(run.provisioning_run_id),
            request_id=request_id,
            detail={"request": canonical, "idempotency_key": request.idempotency_key},
        )
        try:
            enqueue(str(run.provisioning_run_id))
        except Exception as exc:  # Redis down: stored, the relay enqueues it later
            log.warning(
                "provisioning run stored but not enqueued; the relay will",
                extra={"run_id": str(run.provisioning_run_id), "error": type(exc).__name__},
            )
    return run, True
