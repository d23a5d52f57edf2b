"""`run_agent(run_id)` on the `agents` queue: calls the agent for an admin agent run.

The web tier enqueues it after storing the run, and the scheduler's relay enqueues it
again for a run left `queued` (its message lost). Transient failures raise, so the
Retries middleware backs off and tries again; the run is marked `failed` by the domain
on the last attempt or at once for a permanent failure, and the message is then
dead-lettered like any other final failure."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from orchestrator import admin_agent_runs
from orchestrator.agent_dispatch import AgentDispatchDeps
from workers.messages import RUN_AGENT

# The longest agent timeout an admin may ask for, plus the client's socket margin and
# the Config Service calls: TimeLimit cannot interrupt the blocking call anyway (NOTES),
# but it must not fire before the HTTP timeout does.
TIME_LIMIT_MS = (admin_agent_runs.MAX_TIMEOUT_SECONDS + 120) * 1000


def register(broker: dramatiq.Broker, deps: AgentDispatchDeps) -> dramatiq.Actor[Any, Any]:
    max_attempts = deps.settings.orchestrator_max_attempts

    def run_agent(run_id: str) -> None:
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message else 0
        admin_agent_runs.execute(deps, run_id, is_last_attempt=retries + 1 >= max_attempts)

    actor: dramatiq.Actor[Any, Any] = dramatiq.actor(
        run_agent,
        actor_name=RUN_AGENT,
        queue_name="agents",
        broker=broker,
        time_limit=TIME_LIMIT_MS,
    )
    return actor
