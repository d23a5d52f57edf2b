"""Shared by the webhook tests: the providers' published payloads, the secrets the
test gateway is configured with, and `send`, which signs a delivery like the provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from falcon import testing
from pydantic import SecretStr

from orchestrator.settings import Settings
from orchestrator.webhooks.signing import signed_headers
from web.app import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"

SECRETS = {
    "slack": "slack-signing-secret",
    "github": "github-hook-secret",
    "pagerduty": "pagerduty-secret",
    "incidentio": "whsec_aW5jaWRlbnRpby1zZWNyZXQta2V5LTMyYnl0ZXM=",
    "generic": "whsec_Z2VuZXJpYy1zZWNyZXQta2V5LTMyLWJ5dGVzISE=",
    "coralogix": "coralogix-bearer-token",
}
OLD = {
    k: f"old-{v}" if not v.startswith("whsec_") else "whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA=="
    for k, v in SECRETS.items()
}
PATHS = {
    "slack": "/webhooks/slack/events",
    "slack_interactions": "/webhooks/slack/interactions",
    "github": "/webhooks/github",
    "pagerduty": "/webhooks/pagerduty",
    "incidentio": "/webhooks/incidentio",
    "coralogix": "/webhooks/coralogix",
    "generic": "/webhooks/generic",
}
SECRET_OF = {"slack_interactions": "slack"}


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


SAMPLES = {
    "slack": lambda: fixture("slack/app_mention.json"),
    "slack_interactions": lambda: (
        b"payload="
        + __import__("urllib.parse")
        .parse.quote(fixture("slack/block_actions.json").decode())
        .encode()
    ),
    "github": lambda: fixture("github/issue_comment.created.json"),
    "pagerduty": lambda: fixture("pagerduty/incident.triggered.json"),
    "incidentio": lambda: fixture("incidentio/public_alert.alert_created_v1.json"),
    "coralogix": lambda: fixture("coralogix/alert_triggered.json"),
    "generic": lambda: fixture("generic/event.json"),
}


@pytest.fixture
def gateway_settings(settings: Settings) -> Settings:
    """Every source enabled; each secret rotating (old value first, new second)."""
    return settings.model_copy(
        update={
            "slack_signing_secret": _secret(f"{OLD['slack']},{SECRETS['slack']}"),
            "github_webhook_secret": _secret(f"{OLD['github']},{SECRETS['github']}"),
            "pagerduty_webhook_secret": _secret(SECRETS["pagerduty"]),
            "incidentio_webhook_secret": _secret(f"{OLD['incidentio']},{SECRETS['incidentio']}"),
            "generic_webhook_secret": _secret(SECRETS["generic"]),
            "coralogix_webhook_token": _secret(f"{OLD['coralogix']},{SECRETS['coralogix']}"),
            "orchestrator_max_body_bytes": 65536,
        }
    )


def _secret(value: str) -> SecretStr:
    return SecretStr(value)


@pytest.fixture
def gateway(gateway_settings: Settings, services: Any) -> testing.TestClient:
    services.settings = gateway_settings
    return testing.TestClient(create_app(gateway_settings, services))


def send(
    client: testing.TestClient,
    source: str,
    body: bytes | None = None,
    *,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
    **sign: Any,
) -> testing.Result:
    body = SAMPLES[source]() if body is None else body
    secret = secret or SECRETS[SECRET_OF.get(source, source)]
    signed = signed_headers(source, secret, body, **sign)
    return client.simulate_post(PATHS[source], body=body, headers={**signed, **(headers or {})})
