"""`process_webhook_event(event_id)` on the `webhooks` queue: runs the event pipeline.

Transient failures raise, so the Retries middleware backs off and tries again (the
pipeline marks the event `failed` itself on the last attempt); a team over its dispatch
limit is re-enqueued with a delay instead, so waiting does not use up attempts."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from orchestrator.errors import is_transient
from orchestrator.events import pipeline
from orchestrator.events.pipeline import PipelineDeps, Throttled
from workers.messages import PROCESS_WEBHOOK_EVENT


def register(broker: dramatiq.Broker, deps: PipelineDeps) -> dramatiq.Actor[Any, Any]:
    max_attempts = deps.settings.orchestrator_max_attempts

    def process_webhook_event(event_id: str) -> None:
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message else 0
        try:
            pipeline.process(deps, event_id, is_last_attempt=retries + 1 >= max_attempts)
        except Throttled as exc:
            actor.send_with_options(args=(event_id,), delay=exc.delay_ms)
        except Exception as exc:
            if not is_transient(exc):
                raise
            raise

    actor: dramatiq.Actor[Any, Any] = dramatiq.actor(
        process_webhook_event,
        actor_name=PROCESS_WEBHOOK_EVENT,
        queue_name="webhooks",
        broker=broker,
        time_limit=30 * 60 * 1000,
    )
    return actor
