"""Shared by the webhook tests: the providers' published payloads, the secrets the
test gateway is configured with, and `send`, which signs a delivery like the provider."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from falcon import testing
from pydantic import SecretStr

from orchestrator.db.pool import create_pool
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.settings import Settings
from orchestrator.webhooks.signing import signed_headers
from web.app import create_app
from workers.actors import register_all
from workers.broker import create_broker
from workers.runtime import build_deps

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


INTERNAL_ADMIN = "internal-admin-token"
ROUTING = {
    "slack_channel_ids": ["C123ABC456", "C111"],
    "github_repos": ["Codertocat/Hello-World"],
    "pagerduty_service_ids": ["PF9KMXH"],
    "services": ["checkout"],
}


@pytest.fixture
def agent() -> Iterator[AgentStandIn]:
    standin = AgentStandIn().start()
    yield standin  # type: ignore[misc]
    standin.stop()


@pytest.fixture
def stack(
    gateway_settings: Settings,
    services: Any,
    config_service: ConfigServiceStandIn,
    agent: AgentStandIn,
    admin_token: str,
) -> Iterator[dict[str, Any]]:
    config_service.add_super_admin(INTERNAL_ADMIN, subject="orchestrator-internal")
    config_service.seed_team("acme", "payments", routing=ROUTING)
    settings = gateway_settings.model_copy(
        update={
            "agent_api_url": agent.url,
            "orchestrator_internal_admin_token": _secret(INTERNAL_ADMIN),
            "orchestrator_max_attempts": 3,
            "orchestrator_generic_agent_timeout_seconds": 2,
        }
    )
    pool = create_pool(settings, name="test-worker")
    broker = create_broker(
        settings,
        role="worker",
        pool=pool,
        prometheus=False,
        min_backoff_ms=20,
        max_backoff_ms=100,
        namespace=services.namespace,
    )
    register_all(broker, build_deps(settings, pool, namespace=services.namespace))
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=50)
    worker.start()
    client = testing.TestClient(create_app(settings, services))
    yield {"client": client, "settings": settings, "broker": broker, "worker": worker}
    worker.stop()
    broker.close()
    pool.close()


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def final_event(db: Any, event_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
    wanted = statuses or ("ignored", "unroutable", "dispatched", "failed")

    def done() -> Any:
        row = db.execute(
            "SELECT * FROM orchestrator_webhook_events WHERE id = %s", (event_id,)
        ).fetchone()
        if row["status"] not in wanted:
            return None
        if row["status"] == "dispatched" and row["agent_run_id"]:
            run = db.execute(
                "SELECT status FROM orchestrator_agent_runs WHERE id = %s", (row["agent_run_id"],)
            ).fetchone()
            if run["status"] not in ("succeeded", "failed"):
                return None
        return row

    return wait_for(done, timeout)


def run_of(db: Any, event: dict[str, Any]) -> dict[str, Any]:
    return db.execute(
        "SELECT * FROM orchestrator_agent_runs WHERE id = %s", (event["agent_run_id"],)
    ).fetchone()
