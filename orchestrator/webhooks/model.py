"""The shapes every webhook source produces and the errors it raises.

A source turns an `Inbound` request (raw bytes and headers) into a `ParsedEvent`: the
delivery key it is deduplicated on, its type, the routing identifiers the payload
carries, and the payload itself. Later, the worker asks the same source to `classify`
the stored event: is it a trigger, and what should the agent be told?
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from orchestrator.json_limits import MAX_JSON_DEPTH, finite_float, too_deep
from orchestrator.redaction import MASK, is_secret_key

# Every source an event can come from, as stored in `orchestrator_webhook_events.source`.
SourceName = Literal[
    "slack", "slack_interactions", "github", "pagerduty", "incidentio", "coralogix", "generic"
]
SOURCE_NAMES: tuple[str, ...] = get_args(SourceName)


class WebhookRejected(Exception):
    """Base: `status` is the HTTP status the gateway answers with."""

    status = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class SourceDisabled(WebhookRejected):
    status = 404


class SignatureInvalid(WebhookRejected):
    status = 401


class MalformedPayload(WebhookRejected):
    status = 400


class IncompletePayload(WebhookRejected):
    status = 422


@dataclass(frozen=True)
class Inbound:
    body: bytes
    headers: dict[str, str]  # lower-cased names
    received_at: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def stored_headers(self, known_secrets: Iterable[str] = ()) -> dict[str, str]:
        """Headers to keep: anything that carries a credential is masked whole — by
        its name, or because it holds one of `known_secrets` (the configured webhook
        secrets, whatever header a sender put them in). The event store then masks
        every configured secret inside the values and only then cuts them to length
        (a cut made first could keep the start of a secret)."""
        known = [s for s in known_secrets if s]
        return {
            k: (MASK if is_secret_key(k) or any(s in v for s in known) else v)
            for k, v in self.headers.items()
        }


@dataclass(frozen=True)
class ParsedEvent:
    """Values as the delivery gave them: the event store masks configured secrets in
    every field and cuts the identifiers to their column widths after that."""

    delivery_key: str
    event_type: str
    payload: dict[str, Any]
    routing: dict[str, str]
    # Answered at once and not stored (Slack's url_verification challenge).
    inline_response: dict[str, Any] | None = None
    # The payload's JSON text exactly as received, when the whole body was the payload:
    # stored as is when nothing in it needs masking (no re-encoding on the hot path).
    raw_json: str | None = None


@dataclass(frozen=True)
class Trigger:
    """What the worker does with a routed event: nothing (`is_trigger` False, with the
    reason), or an agent run with this message and context."""

    is_trigger: bool
    reason: str
    message: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    kind: str = "agent_run"  # or "feedback" (Slack interactions)


class WebhookSource(Protocol):
    name: str

    def verify(self, secrets: list[str], inbound: Inbound) -> None: ...

    def parse(self, inbound: Inbound) -> ParsedEvent: ...

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger: ...


def any_digest_matches(expected: list[bytes], given: list[bytes]) -> bool:
    """Constant-time comparison of every pair (a rotated secret gives several)."""
    matched = False
    for e in expected:
        for g in given:
            matched |= hmac.compare_digest(e, g)
    return matched


def string_or_none(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def body_text(body: bytes) -> str | None:
    """The body as UTF-8 text, or None (json accepts UTF-16/32 too; Postgres wants UTF-8).
    Also None after a byte-order mark, which `json.loads` skips and Postgres refuses."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if text.startswith("\ufeff") else text


def json_object(body: bytes | str, *, what: str = "the body") -> dict[str, Any]:
    """Strict JSON: Python's parser also takes NaN and Infinity, which JSON (and
    Postgres JSONB) does not."""
    try:
        data = json.loads(body, parse_constant=_no_constants, parse_float=finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedPayload(f"{what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayload(f"{what} must be a JSON object")
    if too_deep(body, data):
        raise MalformedPayload(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return data
