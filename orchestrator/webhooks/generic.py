"""Generic webhooks: Standard Webhooks signed with `GENERIC_WEBHOOK_SECRET`, dedup on
`webhook-id`. The body's `routing` object holds the identifiers (any keys, string
values); every accepted event is a trigger, with `message` (or the event type) as the
agent's message."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.webhooks.model import (
    Inbound,
    IncompletePayload,
    ParsedEvent,
    Trigger,
    body_text,
    json_object,
    string_or_none,
)
from orchestrator.webhooks.standard import delivery_key, verify_standard


class Generic:
    name = "generic"
    path = "/webhooks/generic"

    def verify(self, secrets: list[str], inbound: Inbound) -> None:
        verify_standard(secrets, inbound, source=self.name)

    def parse(self, inbound: Inbound) -> ParsedEvent:
        payload = json_object(inbound.body)
        key = delivery_key(inbound)
        routing_in = payload.get("routing", {})
        if not isinstance(routing_in, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 256
            for k, v in routing_in.items()
        ):
            raise IncompletePayload("`routing` must be an object of string identifiers")
        routing = {k: v.strip() for k, v in routing_in.items() if v.strip()}
        event_type = string_or_none(payload.get("event_type")) or "generic"
        return ParsedEvent(key, event_type, payload, routing, raw_json=body_text(inbound.body))

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger:
        message = payload.get("message")
        if not isinstance(message, str) or not message.strip():
            message = f"{event_type}: {json.dumps(payload, default=str)[:4000]}"
        return Trigger(
            True,
            "generic",
            message=message,
            context={
                "metadata": {"trigger": "generic", "generic": {"event_type": event_type}},
            },
        )
