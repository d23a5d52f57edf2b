"""`run_provisioning(run_id)` on the `provisioning` queue: drives a provisioning or
deprovisioning run (orchestrator/provisioning/engine.py).

Transient failures raise, so the Retries middleware backs off and tries again (the
engine fails and compensates the run itself on the last attempt). A run whose team is
busy with another run is re-enqueued with a delay instead, which uses no attempt."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from orchestrator.provisioning import engine
from orchestrator.provisioning.steps import ProvisioningDeps
from workers.messages import RUN_PROVISIONING


def register(broker: dramatiq.Broker, deps: ProvisioningDeps) -> dramatiq.Actor[Any, Any]:
    max_attempts = deps.settings.orchestrator_max_attempts

    def run_provisioning(run_id: str) -> None:
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message else 0
        try:
            engine.drive(deps, run_id, is_last_attempt=retries + 1 >= max_attempts)
        except engine.Busy as exc:
            actor.send_with_options(args=(run_id,), delay=exc.delay_ms)

    actor: dramatiq.Actor[Any, Any] = dramatiq.actor(
        run_provisioning,
        actor_name=RUN_PROVISIONING,
        queue_name="provisioning",
        broker=broker,
        time_limit=15 * 60 * 1000,
    )
    return actor
