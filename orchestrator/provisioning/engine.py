"""Drive one provisioning run to its end (SPEC §5).

- **One at a time per team**: the run holds a Postgres session advisory lock on
  (org, team) for as long as it works, across all replicas; a run that finds the lock
  taken raises `Busy` and its actor re-enqueues it with a delay (which costs no attempt).
- **Resumable**: each step is written as it starts and ends, on an autocommit connection,
  so a redelivered message (a worker died) skips finished steps and re-runs the one that
  was in flight — steps are written to be safe to re-run (see `steps`).
- **Retries**: a transient error leaves the step `running` with the error and re-raises,
  so the broker retries with backoff; on the last attempt it counts as permanent.
- **Compensation**: a step that fails for good makes the engine undo, newest first, what
  this run changed (the failed step's partial work included); each undone step shows
  `compensated`, and the run ends `failed` with the cause (`routing_conflict`,
  `peer_unavailable`, `k8s_forbidden`, …). Deprovisioning has nothing to restore: it
  only ever removes, so it stops where it failed and says so.
- **Audit**: the end of every step and of the run is an audit row.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg import Connection

from orchestrator import audit
from orchestrator.errors import OrchestratorError, TransientError, is_transient
from orchestrator.provisioning import runs
from orchestrator.provisioning.steps import PLAYBOOKS, ProvisioningDeps, StepContext

log = logging.getLogger("orchestrator.provisioning")

UNDO_ATTEMPTS = 3


class Busy(Exception):
    """Another run of the same team holds the lock; try again after `delay_ms`."""

    def __init__(self, delay_ms: int = 500) -> None:
        super().__init__(f"another run of this team is in progress; retry in {delay_ms} ms")
        self.delay_ms = delay_ms


def lock_key(org_id: str, team_node_id: str) -> str:
    return f"provisioning:{org_id}/{team_node_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) if isinstance(exc, OrchestratorError) else None
    if reason is None:
        reason = "peer_unavailable" if is_transient(exc) else "internal_error"
    return f"{reason}: {exc}"[:2000]


def drive(deps: ProvisioningDeps, run_id: str, *, is_last_attempt: bool) -> None:
    """Run (or resume) the run to `succeeded` or `failed`. Raises a transient error to
    be retried, `Busy` to be re-enqueued later."""
    try:
        rid = uuid.UUID(run_id)
    except ValueError:
        log.error("provisioning message with a malformed run id", extra={"run_id": run_id})
        return
    with deps.pool.connection() as conn:
        run = _load(conn, rid)
        if run.status in ("succeeded", "failed"):
            return  # a redelivery of a finished run changes nothing
        key = lock_key(run.org_id, run.team_node_id)
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked", (key,)
        ).fetchone()
        if not row or not row["locked"]:
            raise Busy()
        try:
            _drive_locked(deps, conn, rid, is_last_attempt)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def _load(conn: Connection[Any], rid: uuid.UUID) -> runs.Run:
    # The web tier enqueues inside the transaction that stores the run: a fast worker
    # may look before the commit. Give it a moment, then let the broker retry.
    for _ in range(20):
        run = runs.get(conn, rid)
        if run is not None:
            return run
        time.sleep(0.05)
    raise TransientError(f"provisioning run {rid} is not (yet) stored")


def _drive_locked(
    deps: ProvisioningDeps, conn: Connection[Any], rid: uuid.UUID, is_last_attempt: bool
) -> None:
    run = runs.get(conn, rid)
    if run is None or run.status in ("succeeded", "failed"):
        return
    runs.start_attempt(conn, rid)
    playbook = PLAYBOOKS[run.kind]

    def save() -> None:
        runs.save_steps(conn, rid, run.steps)

    if any(s.status == "failed" for s in run.steps):
        # Died while compensating: finish the job.
        _fail(deps, conn, run, save, next(s for s in run.steps if s.status == "failed"))
        return
    for step in run.steps:
        if step.status in ("succeeded", "skipped"):
            continue
        spec = playbook[step.name]
        step.status = "running"
        step.attempts += 1
        step.started_at = step.started_at or _now()
        step.error = None
        save()
        ctx = StepContext(deps, conn, run, step, save)
        started = time.perf_counter()
        try:
            outcome = spec.run(ctx)
        except Exception as exc:
            step.error = describe(exc)
            if is_transient(exc) and not is_last_attempt:
                step.error = f"attempt {step.attempts} failed, will retry: {step.error}"
                save()
                log.warning(
                    "provisioning step will be retried",
                    extra=_extra(run, step.name, error=step.error),
                )
                raise
            step.status = "failed"
            step.finished_at = _now()
            save()
            _audit_step(conn, run, step)
            _fail(deps, conn, run, save, step)
            return
        step.status = "succeeded" if outcome == "succeeded" else "skipped"
        step.finished_at = _now()
        save()
        _audit_step(conn, run, step)
        log.info(
            "provisioning step finished",
            extra=_extra(
                run,
                step.name,
                status=step.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            ),
        )
    runs.save_steps(conn, rid, run.steps, status="succeeded")
    _audit_run(conn, run, "succeeded", None)


def _fail(
    deps: ProvisioningDeps,
    conn: Connection[Any],
    run: runs.Run,
    save: Any,
    failed: runs.Step,
) -> None:
    playbook = PLAYBOOKS[run.kind]
    incomplete: list[str] = []
    done = [s for s in run.steps if s.status in ("succeeded", "failed")]
    for step in reversed(done):
        spec = playbook[step.name]
        if spec.undo is None or step.detail.get("undone"):
            continue
        ctx = StepContext(deps, conn, run, step, save)
        error: BaseException | None = None
        for attempt in range(UNDO_ATTEMPTS):
            try:
                spec.undo(ctx)
                error = None
                break
            except Exception as exc:
                error = exc
                if not is_transient(exc):
                    break
                time.sleep(0.2 * 2**attempt)
        if error is not None:
            incomplete.append(step.name)
            step.error = (step.error + "; " if step.error else "") + (
                f"compensation failed: {describe(error)}"
            )
        else:
            step.detail["undone"] = True
            if step.status == "succeeded":
                step.status = "compensated"
        save()
        _audit_step(conn, run, step)
    error_text = failed.error or "failed"
    if incomplete:
        error_text += f" (compensation incomplete: {', '.join(incomplete)})"
    runs.save_steps(conn, run.provisioning_run_id, run.steps, status="failed", error=error_text)
    _audit_run(conn, run, "failed", error_text)
    log.warning("provisioning run failed", extra=_extra(run, failed.name, error=error_text))


def _extra(run: runs.Run, step: str, **more: Any) -> dict[str, Any]:
    return {
        "run_id": str(run.provisioning_run_id),
        "kind": run.kind,
        "org_id": run.org_id,
        "team_node_id": run.team_node_id,
        "step": step,
        **more,
    }


def _audit_step(conn: Connection[Any], run: runs.Run, step: runs.Step) -> None:
    audit.record(
        conn,
        actor="orchestrator",
        action=f"{run.kind}.step",
        org_id=run.org_id,
        team_node_id=run.team_node_id,
        subject=str(run.provisioning_run_id),
        detail={
            "step": step.name,
            "status": step.status,
            "attempts": step.attempts,
            "error": step.error,
        },
    )


def _audit_run(conn: Connection[Any], run: runs.Run, status: str, error: str | None) -> None:
    audit.record(
        conn,
        actor="orchestrator",
        action=f"{run.kind}.{status}",
        org_id=run.org_id,
        team_node_id=run.team_node_id,
        subject=str(run.provisioning_run_id),
        detail={"error": error} if error else {},
    )
