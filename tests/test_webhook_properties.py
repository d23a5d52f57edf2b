"""Property tests: whatever bytes and headers arrive, a webhook source's verifier and
parser either accept or reject them with a `WebhookRejected` (a 4xx) — never another
exception, which would be a 5xx — and the gateway never answers 5xx to a correctly
signed but arbitrary body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.settings import load_settings
from orchestrator.webhooks.model import Inbound, WebhookRejected
from orchestrator.webhooks.registry import endpoints
from tests.webhook_support import SECRETS, send

SOURCES = {e.name: e for e in endpoints(load_settings())}
HEADER_NAMES = st.sampled_from(
    [
        "x-slack-signature",
        "x-slack-request-timestamp",
        "x-hub-signature-256",
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-pagerduty-signature",
        "x-webhook-id",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "authorization",
        "content-type",
    ]
)
HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "v0=",
            "v1=",
            "v1,",
            "sha256=",
            "Bearer ",
            "v1=zz",
            "0",
            "-1",
            "99999999999999999999",
            "v1,AAAA",
            "sha256=" + "a" * 64,
        ]
    ),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "event",
        "event_id",
        "type",
        "channel",
        "routing",
        "fields",
        "action",
        "repository",
        "data",
        "service",
        "alert_action",
        "event_type",
        "actions",
        "challenge",
        "payload",
        "comment",
        "sender",
    ]
)
PAYLOADS = st.dictionaries(KEYS, JSONISH, max_size=6)


def secret_for(name: str) -> list[str]:
    return [SECRETS["slack" if name == "slack_interactions" else name]]


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(SOURCES)),
    body=st.binary(max_size=300),
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=6),
)
def test_verify_and_parse_only_ever_reject_cleanly(
    name: str, body: bytes, headers: dict[str, str]
) -> None:
    source = SOURCES[name].source
    inbound = Inbound(body, headers)
    for step in (lambda: source.verify(secret_for(name), inbound), lambda: source.parse(inbound)):
        try:
            step()
        except WebhookRejected as exc:
            assert 400 <= exc.status < 500


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(SOURCES)),
    payload=PAYLOADS,
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
)
def test_classify_handles_any_parsed_payload(
    name: str, payload: dict[str, Any], headers: dict[str, str]
) -> None:
    source = SOURCES[name].source
    body = json.dumps(payload).encode()
    if name == "slack_interactions":
        from urllib.parse import quote

        body = b"payload=" + quote(json.dumps(payload)).encode()
    try:
        parsed = source.parse(
            Inbound(
                body,
                {
                    "webhook-id": "w1",
                    "x-github-event": "issue_comment",
                    "x-github-delivery": "d1",
                    **headers,
                },
            )
        )
    except WebhookRejected:
        return
    trigger = source.classify(parsed.event_type, parsed.payload)
    assert isinstance(trigger.is_trigger, bool) and trigger.reason
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.routing.items())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from(sorted(SOURCES)), payload=PAYLOADS)
def test_signed_arbitrary_bodies_never_get_a_5xx(
    gateway: testing.TestClient, name: str, payload: dict[str, Any]
) -> None:
    body = json.dumps(payload).encode()
    result = send(gateway, name, body)
    assert result.status_code < 500, result.text
    assert result.status_code in (200, 400, 422), (name, result.status_code, result.text)


def test_nul_characters_are_stored_not_refused(gateway: testing.TestClient, db: Any) -> None:
    body = json.dumps(
        {
            "event_type": "deploy\u0000failed",
            "message": "a\u0000b",
            "routing": {"service": "check\u0000out"},
        }
    ).encode()
    result = send(gateway, "generic", body)
    assert result.status_code == 200, result.text
    stored = db.execute(
        "SELECT event_type, payload, routing_identifiers FROM orchestrator_webhook_events"
    ).fetchone()
    assert stored["event_type"] == "deploy\ufffdfailed"
    assert stored["routing_identifiers"] == {"service": "check\ufffdout"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"message": "lone \\ud800 surrogate", "routing": {"service": "x\\udfffy"}}',
        b'{"event_type": "e", "message": "ok"}',
    ],
)
def test_lone_surrogates_are_stored_not_refused(
    gateway: testing.TestClient, db: Any, body: bytes
) -> None:
    result = send(gateway, "generic", body)
    assert result.status_code == 200, result.text


def test_absurd_nesting_is_a_400(gateway: testing.TestClient) -> None:
    result = send(gateway, "generic", b'{"a":' * 20000 + b"1" + b"}" * 20000)
    assert result.status_code in (400, 413)
