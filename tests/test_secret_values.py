"""No input produces a stored secret (README "Secrets"). A configured secret — any
webhook's signing secret or token (old and new while rotating), the internal and
internal-admin tokens, the secret key — that a delivery carries inside its values, its
keys, its arrays, its identifiers, its headers, or spelled with JSON escapes in its raw
body, is masked in every stored copy. So it reaches neither Postgres (queried for it),
Redis, the admin API, the dashboard, the logs nor the agent, and the event still
processes and replays. Property tests drive the masker and the store directly; the
end-to-end tests go through the real app, worker, Postgres and Redis."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import re
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from orchestrator.devstack.agent import AgentStandIn
from orchestrator.events import store
from orchestrator.logs import JsonFormatter
from orchestrator.redaction import MASK, MIN_SECRET_LENGTH, SecretMasker
from orchestrator.settings import Settings, load_settings, secret_masker
from orchestrator.webhooks.model import ParsedEvent
from tests.test_security import dashboard_pages, dump_database, dump_redis
from tests.webhook_support import (
    INTERNAL_ADMIN,
    OLD,
    PATHS,
    SAMPLES,
    SECRETS,
    final_event,
    send,
    wait_for,
)
from web.app import create_app

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INTERNAL_TOKEN = "internal-trigger-token-6a1f"

# -- the masker ---------------------------------------------------------------------------

SECRET_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=8, max_size=24
)
FILLER = st.text(max_size=12)


def test_every_occurrence_is_masked_the_longest_secret_first() -> None:
    masker = SecretMasker(["abcdefgh", "abcdefgh-and-more", "short"])
    assert masker.size == 2  # "short" is below MIN_SECRET_LENGTH
    assert masker.mask_text("x abcdefgh-and-more y abcdefgh z short") == "x *** y *** z short"
    assert masker.mask(
        {"k-abcdefgh": ["abcdefghabcdefgh", {"n": 1, "s": "(abcdefgh)"}], "t": ("abcdefgh",)}
    ) == {"k-***": ["******", {"n": 1, "s": "(***)"}], "t": ["***"]}
    clean = "nothing to see"
    assert masker.mask_text(clean) is clean
    assert not SecretMasker(["tiny", ""]) and repr(masker) == "SecretMasker(2 secrets)"


def test_masking_repeats_when_the_mask_joins_a_new_occurrence() -> None:
    # The first pass turns "xx12345678yyzz" into "xx***yyzz", itself a secret.
    masker = SecretMasker(["12345678", "xx***yyzz"])
    assert masker.mask_text("<xx12345678yyzz>") == "<***>"


@given(
    secrets=st.lists(SECRET_TEXT, min_size=1, max_size=4),
    pieces=st.lists(st.tuples(FILLER, st.integers(0, 3)), max_size=6),
)
def test_no_secret_survives_masking_wherever_it_sits(
    secrets: list[str], pieces: list[tuple[str, int]]
) -> None:
    masker = SecretMasker(secrets)
    text = "".join(filler + secrets[i % len(secrets)] for filler, i in pieces)
    masked = masker.mask_text(text)
    assert not any(s in masked for s in secrets), (text, masked)
    if not any(s in text for s in secrets):
        assert masked is text


@given(secrets=st.lists(SECRET_TEXT, max_size=3), strings=st.lists(st.text(max_size=40)))
def test_the_joined_search_agrees_with_a_search_per_string(
    secrets: list[str], strings: list[str]
) -> None:
    masker = SecretMasker(secrets)
    if any(masker.found_in(s) for s in strings):
        assert masker.found_in_any(strings)  # never a miss; a hit across strings is harmless


def test_settings_give_every_secret_in_each_form_it_could_leak_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    configured = load_settings(
        database_url="postgresql://orch:pg%2Fpassword-42@db:5432/orch",
        redis_url="redis://:redis-password-7@cache:6379/0",
        github_webhook_secret="old-github-secret-1, new-github-secret-2",
        generic_webhook_secret="whsec_Z2VuZXJpYy1zZWNyZXQta2V5LTMyLWJ5dGVzISE=",
        orchestrator_internal_token="internal-token-value",
        orchestrator_internal_admin_token="admin-token-value",
        orchestrator_secret_key="fernet-key-value-0123",
        orchestrator_admin_token="operator-token-value",
        coralogix_webhook_token="tiny",
    )
    values = set(configured.secret_values())
    assert {
        "pg%2Fpassword-42",
        "pg/password-42",
        "redis-password-7",
        "old-github-secret-1",
        "new-github-secret-2",
        "whsec_Z2VuZXJpYy1zZWNyZXQta2V5LTMyLWJ5dGVzISE=",
        "Z2VuZXJpYy1zZWNyZXQta2V5LTMyLWJ5dGVzISE=",
        "internal-token-value",
        "admin-token-value",
        "fernet-key-value-0123",
        "operator-token-value",
    } <= values
    for name in type(configured).model_fields:  # a secret added to Settings counts by itself
        value = getattr(configured, name)
        if isinstance(value, SecretStr) and len(value.get_secret_value()) >= MIN_SECRET_LENGTH:
            assert value.get_secret_value() in values, name
    with caplog.at_level(logging.WARNING, logger="orchestrator.settings"):
        masker = secret_masker(configured)
    assert masker is secret_masker(configured)  # compiled once per Settings
    assert "CORALOGIX_WEBHOOK_TOKEN" in caplog.text and "tiny" not in caplog.text
    assert masker.mask_text("a pg/password-42 b new-github-secret-2 c") == "a *** b *** c"


# -- the store, directly ------------------------------------------------------------------

STORE_SECRETS = ["github-hook-secret", "coralogix-bearer-token", "internal-admin-token"]
MASKER = SecretMasker(STORE_SECRETS)
PLAIN = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10)


@st.composite
def with_secrets(draw: st.DrawFn) -> Any:
    """JSON values whose strings, keys and array items hold the secrets, alone or
    between other text."""
    leaf = st.one_of(
        PLAIN,
        st.builds(lambda a, s, b: a + s + b, PLAIN, st.sampled_from(STORE_SECRETS), PLAIN),
        st.integers(),
        st.none(),
        st.booleans(),
    )
    key = st.one_of(PLAIN, st.builds(lambda s: f"k-{s}", st.sampled_from(STORE_SECRETS)))
    return draw(
        st.recursive(
            leaf,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(key, inner, max_size=3),
            max_leaves=12,
        )
    )


def stored_text(value: Jsonb) -> str:
    """The JSON text psycopg sends Postgres for a `Jsonb`."""
    return value.dumps(value.obj) if value.dumps else json.dumps(value.obj)


@FUZZ
@given(payload=st.dictionaries(PLAIN, with_secrets(), max_size=4))
def test_a_stored_payload_holds_no_secret_however_it_hides(payload: dict[str, Any]) -> None:
    raw = json.dumps(payload)
    stored = stored_text(
        store.stored_payload(ParsedEvent("key", "type", payload, {}, raw_json=raw), MASKER)
    )
    assert not any(s in stored for s in STORE_SECRETS), stored
    if not any(s in raw for s in STORE_SECRETS):
        assert stored == raw  # nothing to mask: the received text is kept as it came


def test_a_secret_spelled_with_escapes_is_found_in_the_value_not_the_text() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in "github-hook-secret")
    raw = '{"note": "see ' + escaped + '"}'
    payload = json.loads(raw)
    assert "github-hook-secret" not in raw and "github-hook-secret" in payload["note"]
    stored = store.stored_payload(ParsedEvent("k", "t", payload, {}, raw_json=raw), MASKER)
    assert json.loads(stored_text(stored)) == {"note": "see ***"}


def test_identifiers_and_headers_are_cut_only_after_masking() -> None:
    long_key = "d" * 190 + "internal-admin-token"  # the secret straddles the 200-char cut
    assert store.stored_identifier(long_key, MASKER, 200) == "d" * 190 + MASK
    headers = {"x-long": "h" * 505 + "coralogix-bearer-token", "x-quoted": "a github-hook-secret"}
    kept = store.stored_headers(headers, MASKER)
    assert kept == {"x-long": "h" * 505 + MASK, "x-quoted": "a ***"}
    assert all(len(v) <= store.HEADER_VALUE_CHARS for v in kept.values())


# -- end to end ---------------------------------------------------------------------------


def configured_secrets(app_settings: Settings) -> list[str]:
    return sorted(
        {
            *SECRETS.values(),
            *OLD.values(),
            INTERNAL_ADMIN,
            INTERNAL_TOKEN,
            app_settings.orchestrator_secret_key.get_secret_value(),  # type: ignore[union-attr]
        }
    )


def quoting(source: str, secrets: list[str]) -> tuple[bytes, dict[str, Any]]:
    """The source's sample with the secrets quoted everywhere a sender could put them,
    and the signing options (a delivery id holding one)."""
    one, two, three = secrets[0], secrets[1], secrets[-1]
    if source == "slack_interactions":
        payload = {"type": "block_actions", "note": f"quoting {one}", f"k-{two}": [three]}
        return b"payload=" + quote(json.dumps(payload)).encode(), {}
    payload = json.loads(SAMPLES[source]())
    payload["quoted"] = {
        "nested": {"deeper": [f"see {one} here", {"value": two}, [three, f"{one}{two}"]]},
        f"key-{three}": f"-{one}-",
    }
    payload["all"] = list(secrets)
    if source == "slack":
        payload["event"]["text"] += f" the secret is {one}"
        payload["event_id"] = f"Ev-{uuid.uuid4().hex[:8]}-{two}"
    elif source == "github":
        payload["comment"]["body"] = f"@incidentfox why? here is the signing secret: {one}"
    elif source == "pagerduty":
        payload["event"]["data"]["title"] = f"leaked {one}"
    elif source == "coralogix":
        payload["description"] = f"token {one} in the alert"
    elif source == "generic":
        payload["message"] = f"deploy failed; the token was {one}"
        payload["event_type"] = f"deploy.failed.{two}"
        payload["routing"]["ticket"] = f"T-{three}"
    sign: dict[str, Any] = {"delivery_id": f"d-{uuid.uuid4().hex[:8]}-{three}"}
    return json.dumps(payload).encode(), sign


def escaped_generic(secret: str) -> bytes:
    """A generic delivery whose raw text never shows `secret`, yet whose value holds
    it: every character a JSON escape."""
    body = json.loads(SAMPLES["generic"]())
    text = json.dumps(body)[:-1]
    return (text + ', "escaped": "' + "".join(f"\\u{ord(c):04x}" for c in secret) + '"}').encode()


def test_secrets_quoted_in_deliveries_are_nowhere_and_events_still_process_and_replay(
    stack: dict[str, Any],
    services: Any,
    db: Any,
    admin_token: str,
    agent: AgentStandIn,
    json_log: io.StringIO,
) -> None:
    app_settings = stack["settings"].model_copy(
        update={"orchestrator_internal_token": SecretStr(INTERNAL_TOKEN)}
    )
    client = testing.TestClient(create_app(app_settings, services))
    secrets = configured_secrets(app_settings)
    admin = {"Authorization": f"Bearer {admin_token}"}
    leaky_headers = {
        "X-Quoted": f"forwarded for {INTERNAL_ADMIN} by a proxy",
        "X-Long": "a" * 505 + INTERNAL_TOKEN,
    }
    answers: list[str] = []
    event_ids: dict[str, str] = {}
    for source in PATHS:
        body, sign = quoting(source, secrets)
        result = send(client, source, body, headers=leaky_headers, **sign)
        assert result.status_code == 200, (source, result.text)
        event_ids[source] = result.json["event_id"]
    escaped = send(client, "generic", escaped_generic(INTERNAL_ADMIN))
    assert escaped.status_code == 200, escaped.text
    assert INTERNAL_ADMIN not in escaped_generic(INTERNAL_ADMIN).decode()
    event_ids["generic-escaped"] = escaped.json["event_id"]

    finals = {source: final_event(db, event_id) for source, event_id in event_ids.items()}
    for source in ("slack", "github", "generic", "generic-escaped"):
        assert finals[source]["status"] == "dispatched", (source, finals[source])
    assert not [s for s, e in finals.items() if e["status"] == "failed"], finals
    generic = finals["generic"]
    assert generic["routing_identifiers"] == {"service": "checkout", "ticket": "T-***"}
    assert generic["event_type"] == "deploy.failed.***"
    assert generic["delivery_key"].endswith("-***")
    assert generic["headers"]["x-quoted"] == "forwarded for *** by a proxy"
    assert generic["headers"]["x-long"] == "a" * 505 + MASK
    assert generic["payload"]["message"] == "deploy failed; the token was ***"
    assert finals["generic-escaped"]["payload"]["escaped"] == MASK

    # Replay the quoting generic event: it dispatches again, from the masked payload.
    runs_before = len(agent.runs_snapshot())
    replay = client.simulate_post(
        f"/api/v1/admin/webhooks/events/{event_ids['generic']}/replay", headers=admin
    )
    assert replay.status_code == 202, replay.text
    wait_for(lambda: len(agent.runs_snapshot()) > runs_before)
    replayed = final_event(db, event_ids["generic"])
    assert replayed["status"] == "dispatched"
    assert replayed["agent_run_id"] != generic["agent_run_id"]

    run_ids = [
        str(r["id"]) for r in db.execute("SELECT id FROM orchestrator_agent_runs").fetchall()
    ]
    assert len(run_ids) >= 5
    for path in (
        "/api/v1/admin/webhooks/events",
        "/api/v1/admin/agents/runs",
        "/api/v1/admin/audit",
        *[f"/api/v1/admin/webhooks/events/{e}" for e in event_ids.values()],
        *[f"/api/v1/admin/agents/runs/{r}" for r in run_ids],
    ):
        result = client.simulate_get(path, headers=admin)
        assert result.status_code == 200, (path, result.text)
        answers.append(result.text)
    told_the_agent = json.dumps([r["body"] for r in agent.runs_snapshot()])
    assert "the signing secret: ***" in told_the_agent  # the GitHub comment, masked

    places = {
        "database": dump_database(db),
        "redis": dump_redis(services.redis, services.namespace),
        "answers": "\n".join(answers),
        "dashboard": dashboard_pages(client, admin_token, list(event_ids.values()), run_ids),
        "log": json_log.getvalue(),
        "agent": told_the_agent,
    }
    assert places["dashboard"] and places["log"]
    leaks = [
        f"{place}: {secret[:10]}… at …{text[max(0, i - 80) : i + 20]}…"
        for place, text in places.items()
        for secret in secrets
        if (i := text.find(secret)) >= 0
    ]
    assert not leaks, "\n".join(leaks)


@pytest.fixture
def fuzz_gateway(gateway_settings: Settings, services: Any) -> testing.TestClient:
    relaxed = gateway_settings.model_copy(
        update={
            "orchestrator_ingress_rate_limit": "100000/second",
            "orchestrator_internal_admin_token": SecretStr(INTERNAL_ADMIN),
        }
    )
    return testing.TestClient(create_app(relaxed, services))


GATEWAY_SECRETS = [SECRETS["github"], SECRETS["coralogix"], OLD["slack"], INTERNAL_ADMIN]


@st.composite
def generic_with_secrets(draw: st.DrawFn) -> tuple[bytes, str]:
    """A generic delivery (raw JSON text) with the secrets in values, keys, arrays and
    escapes, and a delivery id that may quote one."""
    secret = st.sampled_from(GATEWAY_SECRETS)
    quoted = st.builds(lambda a, s, b: a + s + b, PLAIN, secret, PLAIN)
    value = st.recursive(
        st.one_of(PLAIN, quoted, st.integers(), st.none()),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.one_of(PLAIN, quoted), inner, max_size=3)
        ),
        max_leaves=10,
    )
    payload = {
        "event_type": draw(st.one_of(st.just("deploy.failed"), quoted)),
        "routing": {"service": draw(st.one_of(st.just("checkout"), quoted))},
        "message": draw(st.one_of(PLAIN, quoted)),
        "extra": draw(value),
    }
    text = json.dumps(payload, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):  # one secret written as JSON escapes only
        spelled = "".join(f"\\u{ord(c):04x}" for c in draw(secret))
        text = text[:-1] + f', "escaped": "{spelled}"}}'
    delivery = draw(st.one_of(st.just(str(uuid.uuid4())), st.builds(lambda s: f"id-{s}", secret)))
    return text.encode(), delivery + uuid.uuid4().hex[:6]


def test_signed_deliveries_quoting_secrets_leave_none_in_the_row(
    fuzz_gateway: testing.TestClient, db: Any
) -> None:
    @FUZZ
    @given(case=generic_with_secrets())
    def check(case: tuple[bytes, str]) -> None:
        body, delivery = case
        result = send(fuzz_gateway, "generic", body, delivery_id=delivery)
        assert result.status_code == 200, result.text
        row = db.execute(
            "SELECT row_to_json(e)::text AS j FROM orchestrator_webhook_events e WHERE id = %s",
            (result.json["event_id"],),
        ).fetchone()
        assert not [s for s in GATEWAY_SECRETS if s in row["j"]], row["j"]
        again = send(fuzz_gateway, "generic", body, delivery_id=delivery)
        assert again.json == {**result.json, "duplicate": True}  # dedup on the masked key

    check()


# -- logs ---------------------------------------------------------------------------------


class Unprintable:
    def __str__(self) -> str:
        return f"object holding {INTERNAL_TOKEN}"


def test_the_log_formatter_masks_configured_secrets_in_every_field() -> None:
    masker = SecretMasker([INTERNAL_TOKEN, SECRETS["github"]])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test", masker))
    logger = logging.getLogger("tests.secret_values")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"failed with {SECRETS['github']}")
        except ValueError:
            logger.exception(
                "payload said %s",
                f"x{INTERNAL_TOKEN}y",
                extra={"detail": {"quoted": [SECRETS["github"]]}, "obj": Unprintable()},
            )
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    line = json.loads(out.getvalue())
    assert line["msg"] == "payload said x***y"
    assert line["detail"] == {"quoted": ["***"]} and line["obj"] == "object holding ***"
    assert "failed with ***" in line["exc"]
    assert INTERNAL_TOKEN not in out.getvalue() and SECRETS["github"] not in out.getvalue()


def test_each_process_logs_through_the_masker_of_its_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from orchestrator.logs import configure_logging
    from web.server import _logconfig

    configured = load_settings(orchestrator_internal_admin_token=INTERNAL_ADMIN)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logging.config.dictConfig(_logconfig(configured))  # the web tier (gunicorn's)
        formatter = root.handlers[0].formatter
        assert isinstance(formatter, JsonFormatter)
        assert formatter.secrets is secret_masker(configured)
        configure_logging("worker", "INFO", secret_masker(configured))  # worker, scheduler
        logging.getLogger("tests.secret_values").warning("token %s", INTERNAL_ADMIN)
        assert re.search(r'"msg": "token \*\*\*"', capsys.readouterr().err)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


# -- the dashboard ------------------------------------------------------------------------


def test_the_dashboard_masks_secrets_even_in_rows_stored_before_masking(
    client: testing.TestClient, db: Any, admin_token: str, settings: Settings
) -> None:
    key = settings.orchestrator_secret_key.get_secret_value()  # type: ignore[union-attr]
    event_id = uuid.uuid4()
    db.execute(  # written as an older release stored it: the payload as sent
        "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, event_type,"
        " status, payload, routing_identifiers) VALUES (%s, 'generic', %s, 'deploy', 'ignored',"
        " %s::jsonb, %s::jsonb)",
        (
            event_id,
            f"legacy-{key}",
            json.dumps({"message": f"the key is {key}", "list": [key]}),
            json.dumps({"service": key}),
        ),
    )
    from tests.dashboard_support import login

    cookies = login(client, admin_token)
    for path in ("/dashboard/events", f"/dashboard/events/{event_id}"):
        page = client.simulate_get(path, cookies=cookies)
        assert page.status_code == 200, page.text
        assert key not in page.text, path
    assert (
        "the key is ***"
        in client.simulate_get(f"/dashboard/events/{event_id}", cookies=cookies).text
    )
