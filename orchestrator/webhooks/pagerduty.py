"""PagerDuty V3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` — the HMAC-SHA256 of the
raw body; several signatures appear while PagerDuty rotates, and any match is enough.
Dedup on `X-Webhook-Id`, else `event.id`. Triggers: the configured event types
(default `incident.triggered`)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from orchestrator.webhooks.model import (
    Inbound,
    IncompletePayload,
    ParsedEvent,
    SignatureInvalid,
    Trigger,
    any_digest_matches,
    body_text,
    dig,
    json_object,
    string_or_none,
)


class PagerDuty:
    name = "pagerduty"
    path = "/webhooks/pagerduty"

    def __init__(self, trigger_events: tuple[str, ...] = ("incident.triggered",)) -> None:
        self.trigger_events = trigger_events

    def verify(self, secrets: list[str], inbound: Inbound) -> None:
        given: list[bytes] = []
        for part in (inbound.header("X-PagerDuty-Signature") or "").split(","):
            version, _, hexdigest = part.strip().partition("=")
            if version != "v1":
                continue
            try:
                given.append(bytes.fromhex(hexdigest))
            except ValueError:
                continue
        expected = [hmac.new(s.encode(), inbound.body, hashlib.sha256).digest() for s in secrets]
        if not given or not any_digest_matches(expected, given):
            raise SignatureInvalid("invalid X-PagerDuty-Signature")

    def parse(self, inbound: Inbound) -> ParsedEvent:
        payload = json_object(inbound.body)
        event = payload.get("event")
        if not isinstance(event, dict):
            raise IncompletePayload("a PagerDuty V3 webhook carries an `event` object")
        key = (inbound.header("X-Webhook-Id") or "").strip() or string_or_none(event.get("id"))
        if not key:
            raise IncompletePayload("neither X-Webhook-Id nor event.id is present")
        routing = {}
        service = string_or_none(dig(event, "data", "service", "id"))
        if service:
            routing["pagerduty_service_id"] = service
        event_type = string_or_none(event.get("event_type")) or "unknown"
        return ParsedEvent(key, event_type, payload, routing, raw_json=body_text(inbound.body))

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger:
        if event_type not in self.trigger_events:
            return Trigger(False, f"PagerDuty {event_type} is not a trigger")
        data = dig(payload, "event", "data") or {}
        title = data.get("title") or data.get("summary") or "incident"
        service = dig(data, "service", "summary")
        message = f"PagerDuty incident #{data.get('number')}: {title}"
        if service:
            message += f" (service {service})"
        if data.get("html_url"):
            message += f" {data['html_url']}"
        return Trigger(
            True,
            event_type,
            message=message,
            context={
                "metadata": {
                    "trigger": "pagerduty",
                    "pagerduty": {
                        "incident_id": data.get("id"),
                        "service_id": dig(data, "service", "id"),
                        "urgency": data.get("urgency"),
                    },
                },
                "output_destinations": [{"type": "pagerduty_note", "incident_id": data.get("id")}],
            },
        )
