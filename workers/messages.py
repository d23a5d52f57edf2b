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
