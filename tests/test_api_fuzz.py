"""Schemathesis against the served `/openapi.json` (issue 7, item 2): every admin and
internal operation, with the right credential, fed both data that fits its schema and
data that violates it, through the Falcon app in-process (real Postgres and Redis, the
Config Service stand-in). No answer may be a 5xx; every answer must be one the document
declares, with the declared content type and body shape.

Schemathesis 4 is driven from plain Hypothesis here (`operation.as_strategy()` inside
one test per generation mode) rather than through its pytest plugin, so the app, its
fixtures and the example budget stay under this file's control. `API_FUZZ_EXAMPLES`
raises the per-operation budget for a deeper run by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import max_response_time, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.settings import Settings
from web.app import create_app

INTERNAL_TOKEN = "internal-api-fuzz-token"
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))
# The credential is ours to send (the right one, always); any 4xx counts as rejecting
# invalid data (413 included: a generated body can exceed ORCHESTRATOR_MAX_BODY_BYTES).
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"with-security-parameters": False},
        "checks": {
            "negative_data_rejection": {"expected-statuses": ["4XX"]},
            "max_response_time": 5.0,  # seconds; slower is a hang
        },
    }
)
CHECKS = [
    not_a_server_error,
    max_response_time,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api(settings: Settings, services: Any, config_service: ConfigServiceStandIn) -> Iterator[Any]:
    """The app with the internal API enabled, and its document loaded by schemathesis."""
    enabled = settings.model_copy(update={"orchestrator_internal_token": SecretStr(INTERNAL_TOKEN)})
    services.settings = enabled
    config_service.seed_team("acme", "payments", routing={"services": ["checkout"]})
    app = create_app(enabled, services)
    yield schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG)


def credentials(operation: Any, admin_token: str) -> dict[str, str]:
    security = operation.definition.raw.get("security") or []
    schemes = {name for requirement in security for name in requirement}
    if "internalBearer" in schemes:
        return {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    return {"Authorization": f"Bearer {admin_token}"}


def guarded_operations(schema: Any) -> list[Any]:
    """The admin and internal operations (bearer-token security), from the document —
    a route added later is fuzzed without touching this file."""
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        security = operation.definition.raw.get("security") or []
        schemes = {name for requirement in security for name in requirement}
        if schemes & {"adminBearer", "internalBearer"}:
            found.append(operation)
    return found


def fuzz(schema: Any, admin_token: str, mode: GenerationMode) -> list[str]:
    failures: list[str] = []
    operations = guarded_operations(schema)
    assert len(operations) >= 20, [o.label for o in operations]
    checks = CHECKS if mode is GenerationMode.POSITIVE else [*CHECKS, negative_data_rejection]
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not negatable(operation):
            continue
        headers = credentials(operation, admin_token)
        run(operation, headers, mode, checks, failures)
    return failures


def negatable(operation: Any) -> bool:
    """Whether schemathesis can make a request of this operation invalid: a body or a
    query parameter (path parameters are plain strings, which any text satisfies)."""
    raw = operation.definition.raw
    return "requestBody" in raw or any(p.get("in") == "query" for p in raw["parameters"])


def run(
    operation: Any,
    headers: dict[str, str],
    mode: GenerationMode,
    checks: list[Any],
    failures: list[str],
) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    try:
        check()
    except (Exception, FailureGroup) as exc:  # collect every operation's, report all
        failures.append(f"{operation.label}: {exc}"[:3000])


def test_admin_and_internal_api_with_valid_data(api: Any, admin_token: str) -> None:
    failures = fuzz(api, admin_token, GenerationMode.POSITIVE)
    assert not failures, "\n\n".join(failures)


def test_admin_and_internal_api_with_invalid_data(api: Any, admin_token: str) -> None:
    failures = fuzz(api, admin_token, GenerationMode.NEGATIVE)
    assert not failures, "\n\n".join(failures)


def test_the_fuzzer_sees_a_5xx(
    settings: Settings, services: Any, config_service: ConfigServiceStandIn, admin_token: str
) -> None:
    """The harness is not a tautology: an operation that fails inside answers 500, and
    the same loop reports it."""
    from web.resources import audit

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    app = create_app(settings, services)
    original = audit.audit.page
    audit.audit.page = broken  # type: ignore[assignment]
    try:
        schema = schemathesis.openapi.from_wsgi("/openapi.json", app).include(
            path="/api/v1/admin/audit"
        )
        operation = next(iter(schema.get_all_operations())).ok()

        @hypothesis.settings(max_examples=5, deadline=None, database=None)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {admin_token}"}, checks=[not_a_server_error]
            )

        with pytest.raises(FailureGroup, match="Server error"):
            check()
    finally:
        audit.audit.page = original  # type: ignore[assignment]


# -- what the fuzzing found (each a 500 or an accepted invalid body before its fix) -------

AGENT_RUN = {"org_id": "acme", "team_node_id": "payments", "agent_name": "planner"}


@pytest.mark.parametrize(
    "path,body,status",
    [
        # U+0000 reached Postgres: 500 UntranslatableCharacter. (pydantic refuses lone
        # surrogates in `str` fields itself; `Any` fields are checked like U+0000.)
        (
            "/api/v1/admin/provision/team",
            b'{"org_id": "acme", "team_node_id": "t1", "routing": {"services": ["a\\u0000b"]}}',
            422,
        ),
        (
            "/api/v1/admin/provision/team",
            b'{"org_id": "acme", "team_node_id": "t1", "idempotency_key": "k\\u0000"}',
            422,
        ),
        # 500 nested lists in `context` overflowed the stack before the insert.
        (
            "/api/v1/admin/agents/run",
            json.dumps({**AGENT_RUN, "message": "m"})[:-1].encode()
            + b', "context": {"a": '
            + b"[" * 500
            + b"]" * 500
            + b"}}",
            400,
        ),
        # 1e400 is `inf` in Python, stored as `Infinity`, which JSONB refuses.
        (
            "/api/v1/admin/agents/run",
            json.dumps({**AGENT_RUN, "message": "m"})[:-1].encode() + b', "context": {"n": 1e400}}',
            400,
        ),
        # JSON `true` is not the number 1.
        (
            "/api/v1/admin/agents/run",
            json.dumps({**AGENT_RUN, "message": "m", "timeout": True}),
            422,
        ),
        (
            "/api/v1/admin/provision/team",
            json.dumps(
                {
                    "org_id": "acme",
                    "team_node_id": "t1",
                    "deployment_mode": "dedicated",
                    "dedicated_config": {"replicas": True},
                }
            ),
            422,
        ),
    ],
    ids=["nul-in-list", "nul-in-idempotency-key", "deep", "inf", "bool-timeout", "bool-replicas"],
)
def test_bodies_the_fuzzer_found(
    client: Any, admin_token: str, db: Any, path: str, body: bytes | str, status: int
) -> None:
    result = client.simulate_post(
        path, body=body, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert result.status_code == status, result.text
    assert result.json["request_id"]
    for table in ("orchestrator_provisioning_runs", "orchestrator_agent_runs"):
        assert db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == 0  # noqa: S608
