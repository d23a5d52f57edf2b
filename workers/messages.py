"""Messages other processes enqueue for actors they do not import (web, scheduler).

Built here, next to the actors, so the actor name and queue cannot drift apart."""

from __future__ import annotations

from typing import Any

from dramatiq import Message

PROCESS_WEBHOOK_EVENT = "process_webhook_event"


def webhook_event(event_id: str) -> Message[Any]:
    return Message(
        queue_name="webhooks",
        actor_name=PROCESS_WEBHOOK_EVENT,
        args=(event_id,),
        kwargs={},
        options={},
    )


# Actors of the provisioning capability; the scheduler's relay re-enqueues their runs.
RUN_PROVISIONING = "run_provisioning"
RUN_AGENT = "run_agent"


def provisioning_run(run_id: str) -> Message[Any]:
    return Message(
        queue_name="provisioning",
        actor_name=RUN_PROVISIONING,
        args=(run_id,),
        kwargs={},
        options={},
    )


def agent_run(run_id: str) -> Message[Any]:
    return Message(queue_name="agents", actor_name=RUN_AGENT, args=(run_id,), kwargs={}, options={})
