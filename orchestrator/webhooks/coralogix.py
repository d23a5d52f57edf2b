"""Coralogix: outbound webhooks are not signed; they carry a secret bearer token
(`CORALOGIX_WEBHOOK_TOKEN`, compared in constant time). The body is Coralogix's generic
outbound-webhook template: a trigger when `alert_action` is `trigger`; the team comes
from the `fields` entry with key `team` (lowercased), the service from `service` or
`application`. Dedup on a hash of the body."""

from __future__ import annotations

import hashlib
from typing import Any

from orchestrator.webhooks.model import (
    Inbound,
    ParsedEvent,
    SignatureInvalid,
    Trigger,
    any_digest_matches,
    body_text,
    json_object,
    string_or_none,
)


def _field(payload: dict[str, Any], key: str) -> str | None:
    fields = payload.get("fields")
    if isinstance(fields, list):
        for entry in fields:
            if isinstance(entry, dict) and str(entry.get("key", "")).lower() == key:
                return string_or_none(entry.get("value"))
    return None


class Coralogix:
    name = "coralogix"
    path = "/webhooks/coralogix"

    def verify(self, secrets: list[str], inbound: Inbound) -> None:
        header = inbound.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        digest = hashlib.sha256
        if not given or not any_digest_matches(
            [digest(s.encode()).digest() for s in secrets], [digest(given).digest()]
        ):
            raise SignatureInvalid("invalid or missing bearer token")

    def parse(self, inbound: Inbound) -> ParsedEvent:
        payload = json_object(inbound.body)
        routing = {}
        team = _field(payload, "team")
        if team:
            routing["coralogix_team_name"] = team.lower()
        service = (
            string_or_none(payload.get("service"))
            or string_or_none(payload.get("application"))
            or _field(payload, "application")
        )
        if service:
            routing["service"] = service
        action = string_or_none(payload.get("alert_action")) or "unknown"
        return ParsedEvent(
            hashlib.sha256(inbound.body).hexdigest(),
            f"alert.{action}",
            payload,
            routing,
            raw_json=body_text(inbound.body),
        )

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger:
        if payload.get("alert_action") != "trigger":
            return Trigger(False, f"Coralogix {event_type} is not a trigger")
        name = payload.get("alert_name") or payload.get("name") or "alert"
        message = f"Coralogix alert triggered: {name}"
        if payload.get("description"):
            message += f"\n\n{payload['description']}"
        return Trigger(
            True,
            "alert_triggered",
            message=message,
            context={
                "metadata": {
                    "trigger": "coralogix",
                    "coralogix": {
                        "alert_id": payload.get("alert_id"),
                        "application": _field(payload, "application"),
                        "subsystem": _field(payload, "subsystem"),
                    },
                },
            },
        )
