"""incident.io: Standard Webhooks, dedup on `webhook-id`. The event object sits under a
key named after its `event_type`. Routing identifiers are taken as the payload provides
them — the alert source, the team, the service — and never the incident's own id,
which identifies no team. Triggers: alert created, incident created."""

from __future__ import annotations

from typing import Any

from orchestrator.webhooks.model import (
    Inbound,
    ParsedEvent,
    Trigger,
    body_text,
    dig,
    json_object,
    string_or_none,
)
from orchestrator.webhooks.standard import delivery_key, verify_standard


def _event_object(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    for key in (event_type, "data", "payload"):
        value = payload.get(key)
        if isinstance(value, dict):
            return value
    return payload


def _custom_field(event: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for entry in event.get("custom_field_entries") or []:
        if not isinstance(entry, dict):
            continue
        name = str(dig(entry, "custom_field", "name") or "").strip().lower()
        if name in names:
            found += [v for v in entry.get("values") or [] if isinstance(v, dict)]
    return found


def routing_identifiers(event_type: str, payload: dict[str, Any]) -> dict[str, str]:
    event = _event_object(event_type, payload)
    routing: dict[str, str] = {}
    source = string_or_none(event.get("alert_source_id")) or string_or_none(
        dig(event, "alert_source", "id")
    )
    if source:
        routing["incidentio_alert_source_id"] = source
    team = string_or_none(event.get("team_id")) or string_or_none(dig(event, "team", "id"))
    if not team:
        team_ids = event.get("team_ids")
        if isinstance(team_ids, list) and team_ids:
            team = string_or_none(team_ids[0])
    if not team:
        teams = event.get("teams")
        if isinstance(teams, list) and teams and isinstance(teams[0], dict):
            team = string_or_none(teams[0].get("id"))
    if not team:
        for value in _custom_field(event, "team", "teams", "owning team", "affected team"):
            team = string_or_none(dig(value, "value_catalog_entry", "id"))
            if team:
                break
    if team:
        routing["incidentio_team_id"] = team
    service = string_or_none(event.get("service")) or string_or_none(dig(event, "service", "name"))
    if not service:
        for value in _custom_field(
            event, "service", "services", "affected service", "affected services"
        ):
            service = string_or_none(dig(value, "value_catalog_entry", "name")) or string_or_none(
                value.get("value_text")
            )
            if service:
                break
    if not service:
        attributes = event.get("attributes")
        if isinstance(attributes, list):
            for attribute in attributes:
                if str(dig(attribute, "attribute", "name") or "").lower() == "service":
                    service = string_or_none(dig(attribute, "value", "label"))
    if service:
        routing["service"] = service
    return routing


class IncidentIo:
    name = "incidentio"
    path = "/webhooks/incidentio"

    def verify(self, secrets: list[str], inbound: Inbound) -> None:
        verify_standard(secrets, inbound, source=self.name)

    def parse(self, inbound: Inbound) -> ParsedEvent:
        payload = json_object(inbound.body)
        key = delivery_key(inbound)
        event_type = string_or_none(payload.get("event_type")) or "unknown"
        return ParsedEvent(
            key,
            event_type,
            payload,
            routing_identifiers(event_type, payload),
            raw_json=body_text(inbound.body),
        )

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger:
        if not ("alert_created" in event_type or "incident_created" in event_type):
            return Trigger(False, f"incident.io {event_type} is not a trigger")
        event = _event_object(event_type, payload)
        title = event.get("title") or event.get("name") or event.get("summary") or event_type
        kind = "alert" if "alert" in event_type else "incident"
        message = f"incident.io {kind}: {title}"
        if event.get("description") or event.get("summary"):
            message += f"\n\n{event.get('description') or event.get('summary')}"
        return Trigger(
            True,
            event_type,
            message=message,
            context={
                "metadata": {
                    "trigger": "incidentio",
                    "incidentio": {
                        "event_type": event_type,
                        "id": event.get("id"),
                        "url": event.get("permalink") or event.get("url"),
                    },
                },
                "output_destinations": (
                    [{"type": "incidentio_timeline", "incident_id": event.get("id")}]
                    if kind == "incident"
                    else []
                ),
            },
        )
