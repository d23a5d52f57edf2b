"""Slack: Events API (`/webhooks/slack/events`) and interactivity
(`/webhooks/slack/interactions`), both signed with the v0 scheme over the raw body with
a 300 s window (verified by `slack_sdk`'s `SignatureVerifier`, once per rotated secret).

Events dedup on `event_id` — Slack's retries (`X-Slack-Retry-Num`) reuse it, so they
are duplicates. `url_verification` is answered inline with the challenge. Only an
`app_mention` from a human triggers an agent run; bots (including our own) never do.
Interactions (feedback buttons) go to the Config Service feedback route, no agent run.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from orchestrator.webhooks.model import (
    Inbound,
    IncompletePayload,
    MalformedPayload,
    ParsedEvent,
    SignatureInvalid,
    Trigger,
    body_text,
    dig,
    json_object,
    string_or_none,
)

_MENTION = re.compile(r"<@[A-Z0-9]+(\|[^>]*)?>")


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_slack(secrets: list[str], inbound: Inbound) -> None:
    for secret in secrets:
        verifier = SignatureVerifier(secret, clock=_FixedClock(inbound.received_at))
        try:
            if verifier.is_valid_request(inbound.body, inbound.headers):
                return
        except Exception:  # noqa: S112 - malformed timestamp/signature/body: invalid, try next
            continue
    raise SignatureInvalid("invalid Slack signature or timestamp outside the 300 s window")


def session_id(channel: str, thread_ts: str) -> str:
    """PEERS.md convention: `slack-{channel lowercased}-{thread_ts with '.' → '-'}`."""
    return f"slack-{channel.lower()}-{thread_ts.replace('.', '-')}"


class SlackEvents:
    name = "slack"
    path = "/webhooks/slack/events"

    def verify(self, secrets: list[str], inbound: Inbound) -> None:
        verify_slack(secrets, inbound)

    def parse(self, inbound: Inbound) -> ParsedEvent:
        payload = json_object(inbound.body)
        kind = payload.get("type")
        if kind == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str):
                raise IncompletePayload("url_verification without a challenge")
            return ParsedEvent(
                "", "url_verification", payload, {}, inline_response={"challenge": challenge}
            )
        event_id = string_or_none(payload.get("event_id"))
        if not event_id:
            raise IncompletePayload("Slack event without event_id")
        raw_event = payload.get("event")
        event: dict[str, Any] = raw_event if isinstance(raw_event, dict) else {}
        event_type = string_or_none(event.get("type")) or string_or_none(kind) or "unknown"
        routing = {}
        channel = string_or_none(event.get("channel"))
        if channel:
            routing["slack_channel_id"] = channel
        return ParsedEvent(event_id, event_type, payload, routing, raw_json=body_text(inbound.body))

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger:
        event = payload.get("event") or {}
        if event_type != "app_mention":
            return Trigger(False, f"Slack {event_type} is not a trigger")
        if event.get("bot_id") or event.get("subtype") == "bot_message" or event.get("bot_profile"):
            return Trigger(False, "message from a bot")
        channel = str(event.get("channel") or "")
        text = _MENTION.sub("", str(event.get("text") or "")).strip()
        thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
        return Trigger(
            True,
            "app_mention",
            message=text or "(empty mention)",
            context={
                "user_id": event.get("user"),
                "session_id": session_id(channel, thread_ts) if channel and thread_ts else None,
                "metadata": {
                    "trigger": "slack",
                    "slack": {
                        "channel_id": channel,
                        "thread_ts": thread_ts,
                        "event_ts": event.get("event_ts") or event.get("ts"),
                        "user_id": event.get("user"),
                    },
                },
                "output_destinations": [
                    {"type": "slack", "channel_id": channel, "thread_ts": thread_ts}
                ],
            },
        )


class SlackInteractions:
    name = "slack_interactions"
    path = "/webhooks/slack/interactions"

    def verify(self, secrets: list[str], inbound: Inbound) -> None:
        verify_slack(secrets, inbound)

    def parse(self, inbound: Inbound) -> ParsedEvent:
        try:
            form = parse_qs(inbound.body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise MalformedPayload("the body is not a form with a payload field") from None
        raw = form.get("payload")
        if not raw or len(raw) != 1:
            raise MalformedPayload("the body is not a form with a payload field")
        payload = json_object(raw[0], what="the payload field")
        routing = {}
        channel = string_or_none(dig(payload, "channel", "id")) or string_or_none(
            dig(payload, "container", "channel_id")
        )
        if channel:
            routing["slack_channel_id"] = channel
        key = hashlib.sha256(raw[0].encode()).hexdigest()
        return ParsedEvent(key, string_or_none(payload.get("type")) or "unknown", payload, routing)

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger:
        actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
        if event_type != "block_actions" or not actions:
            return Trigger(False, f"Slack interaction {event_type} is not feedback")
        action = actions[0] if isinstance(actions[0], dict) else {}
        return Trigger(
            True,
            "feedback",
            kind="feedback",
            context={
                "run_id": action.get("value") or action.get("block_id"),
                "feedback": action.get("action_id"),
                "user_id": dig(payload, "user", "id"),
            },
        )
