"""Store an accepted event and enqueue it, in one transaction (SPEC §4.2).

The row commits as `queued` when its message reached Redis and as `received` when Redis
was unreachable (the scheduler's relay enqueues it later); a duplicate delivery key
changes nothing. Shared by the webhook routes and the internal Slack trigger, with one
breaker so a Redis outage costs one timeout, not one per request.
"""

from __future__ import annotations

import logging
import uuid

from orchestrator.breaker import Breaker
from orchestrator.events import store
from orchestrator.redaction import SecretMasker
from orchestrator.webhooks.model import ParsedEvent
from web.services import Services
from workers.messages import webhook_event

log = logging.getLogger("orchestrator.webhooks")


class EventIntake:
    """Parameters: `services`; `secrets`, the masker of the configured secrets (none
    of them is stored, wherever a delivery put them)."""

    def __init__(self, services: Services, secrets: SecretMasker) -> None:
        self._s = services
        self._secrets = secrets
        self._breaker = Breaker()

    def accept(
        self, source: str, parsed: ParsedEvent, headers: dict[str, str]
    ) -> tuple[uuid.UUID, bool]:
        """(event id, duplicate)."""
        with self._s.pool.connection() as conn, conn.transaction():
            event_id, duplicate = store.insert(
                conn, source=source, parsed=parsed, headers=headers, secrets=self._secrets
            )
            if duplicate or self._breaker.open:
                return event_id, duplicate
            try:
                self._s.broker.enqueue(webhook_event(str(event_id)))
            except Exception as exc:  # Redis down: stored and acknowledged, relayed later
                self._breaker.trip()
                log.warning(
                    "event stored but not enqueued; the relay will enqueue it",
                    extra={"event_id": str(event_id), "error": type(exc).__name__},
                )
                return event_id, False
            store.set_status(conn, event_id, "queued")
        return event_id, False
