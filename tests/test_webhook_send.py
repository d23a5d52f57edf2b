"""`orchestrator webhook send` (issue item 6), run as the real command against a real
`orchestrator web` (gunicorn) with every webhook source configured: every source is
accepted with the routing identifiers its options give, and stored as a trigger the
worker would act on; a repeated delivery id is a duplicate; a wrong secret is a 401;
missing URL or secret is a one-line usage error; `--dry-run` sends nothing and never
shows the secret. Also the dev stack: generated webhook secrets in secrets.json (an old
file still loads) and a banner command that works as pasted."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import redis
from cryptography.fernet import Fernet
from psycopg.rows import dict_row
from standardwebhooks import Webhook

from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.runner import WEBHOOK_SECRET_VARIABLES, DevSecrets, DevStack
from orchestrator.settings import load_settings
from orchestrator.webhooks.registry import endpoints
from tests.conftest import (
    ORCHESTRATOR_BIN,
    free_port,
    port_is_open,
    process_env,
    start_web,
    with_database,
)

pytestmark = pytest.mark.slow

EVENT_ID = re.compile(r"event ([0-9a-f-]{36})")

SECRETS = {
    "SLACK_SIGNING_SECRET": "slack-secret-for-webhook-send",
    "GITHUB_WEBHOOK_SECRET": "github-secret-for-webhook-send",
    "PAGERDUTY_WEBHOOK_SECRET": "pagerduty-secret-for-webhook-send",
    "INCIDENTIO_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"incidentio-key-" * 2).decode(),
    "GENERIC_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"generic-key-0123" * 2).decode(),
    "CORALOGIX_WEBHOOK_TOKEN": "coralogix-token-for-webhook-send",
}
VARIABLE = {
    "slack": "SLACK_SIGNING_SECRET",
    "slack-interactions": "SLACK_SIGNING_SECRET",
    "github": "GITHUB_WEBHOOK_SECRET",
    "pagerduty": "PAGERDUTY_WEBHOOK_SECRET",
    "incidentio": "INCIDENTIO_WEBHOOK_SECRET",
    "coralogix": "CORALOGIX_WEBHOOK_TOKEN",
    "generic": "GENERIC_WEBHOOK_SECRET",
}
STORED_AS = {"slack-interactions": "slack_interactions"}
WRONG = {
    "incidentio": "whsec_" + base64.b64encode(b"a-wrong-key-0123" * 2).decode(),
    "generic": "whsec_" + base64.b64encode(b"a-wrong-key-0123" * 2).decode(),
}


@dataclass
class Server:
    url: str
    dsn: str

    def event(self, event_id: str) -> dict[str, Any]:
        with psycopg.connect(self.dsn, row_factory=dict_row) as conn:
            row = conn.execute(
                "SELECT * FROM orchestrator_webhook_events WHERE id = %s", (event_id,)
            ).fetchone()
        assert row is not None, event_id
        return row

    def count(self) -> int:
        with psycopg.connect(self.dsn, row_factory=dict_row) as conn:
            row = conn.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()
        assert row is not None
        return int(row["n"])


@pytest.fixture(scope="module")
def server(pg_uri: str, template_db: str, redis_url: str) -> Iterator[Server]:
    """One `orchestrator web` for the module: its own database and Redis namespace."""
    name = f"orch_send_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    dsn = with_database(pg_uri, name)
    namespace = f"orch-test-{uuid.uuid4().hex[:10]}"
    config = ConfigServiceStandIn().start()
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="orch-send-metrics-")
    env = process_env(
        DATABASE_URL=dsn,
        REDIS_URL=redis_url,
        CONFIG_SERVICE_URL=config.url,
        ORCHESTRATOR_SECRET_KEY=Fernet.generate_key().decode(),
        ORCHESTRATOR_REDIS_NAMESPACE=namespace,
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        PORT=str(port),
        **SECRETS,
    )
    proc, url = start_web(env, workers=1, threads=4)
    try:
        yield Server(url, dsn)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        config.stop()
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def cli_env(url: str | None, **secrets: str) -> dict[str, str]:
    env = process_env()
    for variable in (*SECRETS, "GITHUB_BOT_MENTION"):
        env.pop(variable, None)
    if url:
        env["ORCHESTRATOR_URL"] = url
    env.update(secrets)
    return env


def send(
    *args: str, url: str | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORCHESTRATOR_BIN, "webhook", "send", *args],
        env=cli_env(url, **SECRETS) if env is None else env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def accepted_event(result: subprocess.CompletedProcess[str], source: str) -> str:
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert "\n" not in line and line.startswith(f"{source} → 200 accepted: event "), line
    assert "/api/v1/admin/webhooks/events/" in line
    match = EVENT_ID.search(line)
    assert match, line
    return match.group(1)


def classify(stored: dict[str, Any]) -> Any:
    sources = {e.name: e.source for e in endpoints(load_settings())}
    return sources[stored["source"]].classify(stored["event_type"], stored["payload"])


CASES = [
    (
        "slack",
        ["--channel", "C123", "--text", "hello"],
        {"slack_channel_id": "C123"},
        "app_mention",
    ),
    (
        "slack-interactions",
        ["--channel", "C777", "--action-id", "feedback_positive", "--value", "run-42"],
        {"slack_channel_id": "C777"},
        "block_actions",
    ),
    (
        "github",
        ["--repo", "acme/checkout", "--text", "why did the deploy fail?"],
        {"github_repo": "acme/checkout"},
        "issue_comment.created",
    ),
    (
        "github",
        ["--repo", "acme/checkout", "--event", "workflow_run", "--conclusion", "failure"],
        {"github_repo": "acme/checkout"},
        "workflow_run.completed",
    ),
    (
        "pagerduty",
        ["--service-id", "PF9KMXH", "--title", "API latency high"],
        {"pagerduty_service_id": "PF9KMXH"},
        "incident.triggered",
    ),
    (
        "incidentio",
        ["--alert-source-id", "01ALERTSRC", "--team-id", "01TEAM", "--service", "checkout"],
        {
            "incidentio_alert_source_id": "01ALERTSRC",
            "incidentio_team_id": "01TEAM",
            "service": "checkout",
        },
        "public_alert.alert_created_v1",
    ),
    (
        "incidentio",
        ["--kind", "incident", "--team-id", "01TEAM2", "--service", "payments"],
        {"incidentio_team_id": "01TEAM2", "service": "payments"},
        "public_incident.incident_created_v2",
    ),
    (
        "coralogix",
        ["--team", "Payments", "--application", "checkout", "--name", "Errors above threshold"],
        {"coralogix_team_name": "payments", "service": "checkout"},
        "alert.trigger",
    ),
    (
        "generic",
        [
            "--routing",
            "service=checkout",
            "--routing",
            "github_repo=acme/checkout",
            "--event-type",
            "deploy.failed",
            "--text",
            "deploy of checkout failed",
        ],
        {"service": "checkout", "github_repo": "acme/checkout"},
        "deploy.failed",
    ),
]


@pytest.mark.parametrize(
    "source,options,routing,event_type", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES]
)
def test_every_source_is_accepted_with_its_routing_identifiers_as_a_trigger(
    server: Server, source: str, options: list[str], routing: dict[str, str], event_type: str
) -> None:
    result = send(source, *options, url=server.url)
    event_id = accepted_event(result, source)
    stored = server.event(event_id)
    assert stored["source"] == STORED_AS.get(source, source)
    assert stored["event_type"] == event_type
    assert stored["routing_identifiers"] == routing
    assert stored["status"] == "queued"
    trigger = classify(stored)
    assert trigger.is_trigger, trigger.reason
    if source == "slack-interactions":
        assert trigger.kind == "feedback"
        assert trigger.context["run_id"] == "run-42"
        assert trigger.context["feedback"] == "feedback_positive"
    if source == "slack":
        assert trigger.message == "hello"  # the bot mention is stripped
    assert SECRETS[VARIABLE[source]] not in result.stdout + result.stderr


@pytest.mark.parametrize("source", list(VARIABLE))
def test_the_same_delivery_id_twice_is_a_duplicate(server: Server, source: str) -> None:
    delivery = f"send-dup-{uuid.uuid4().hex[:12]}"
    first = send(source, "--delivery-id", delivery, url=server.url)
    event_id = accepted_event(first, source)
    second = send(source, "--delivery-id", delivery, url=server.url)
    assert second.returncode == 0, second.stderr
    line = second.stdout.strip()
    assert line.startswith(f"{source} → 200 duplicate: delivery {delivery} "), line
    assert f"event {event_id}" in line


@pytest.mark.parametrize("source", list(VARIABLE))
def test_a_wrong_secret_is_401_with_its_description(server: Server, source: str) -> None:
    wrong = WRONG.get(source, "not-the-right-secret")
    before = server.count()
    result = send(source, "--secret", wrong, url=server.url)
    assert result.returncode == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"{source} → 401 Unauthorized: "), line
    assert "invalid" in line
    assert wrong not in line
    assert server.count() == before


def test_a_rotated_secret_signs_with_the_last_value(server: Server) -> None:
    right = SECRETS["GITHUB_WEBHOOK_SECRET"]
    env = cli_env(server.url, GITHUB_WEBHOOK_SECRET=f"an-old-secret, {right}")
    accepted_event(send("github", url=None, env=env), "github")
    env = cli_env(server.url, GITHUB_WEBHOOK_SECRET=f"{right},a-newer-one-not-yet-deployed")
    assert send("github", url=None, env=env).returncode == 1
    result = send("github", "--secret", f"old,{right}", url=None, env=cli_env(server.url))
    accepted_event(result, "github")


def test_json_prints_the_raw_answer(server: Server) -> None:
    result = send("pagerduty", "--json", url=server.url)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] is True
    server.event(answer["event_id"])
    bad = send("pagerduty", "--json", "--secret", "wrong", url=server.url)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["title"] == "Unauthorized"


def test_url_comes_from_the_option_before_the_environment(server: Server) -> None:
    env = cli_env("http://127.0.0.1:9", **SECRETS)
    accepted_event(send("slack", "--url", server.url + "/", url=None, env=env), "slack")


@pytest.mark.parametrize("source", ["github", "slack-interactions", "coralogix", "generic"])
def test_missing_secret_is_one_line_naming_the_variable(server: Server, source: str) -> None:
    result = send(source, url=None, env=cli_env(server.url))
    assert result.returncode == 2
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and VARIABLE[source] in line, line


def test_missing_url_is_one_line_naming_orchestrator_url() -> None:
    result = send("github", url=None, env=cli_env(None, **SECRETS))
    assert result.returncode == 2
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and "ORCHESTRATOR_URL" in line, line


def test_usage_errors_are_one_line() -> None:
    env = cli_env("http://127.0.0.1:9", **SECRETS)
    for args, needle in [
        (["generic", "--secret", "whsec_!!!"], "Standard Webhooks"),
        (["github", "--url", "ftp://example.com"], "--url"),
        (["github", "--repo", "no-slash"], "owner/name"),
        (["incidentio", "--kind", "incident", "--alert-source-id", "X"], "--alert-source-id"),
    ]:
        result = send(*args, url=None, env=env)
        assert result.returncode == 2, (args, result.stderr)
        line = result.stderr.strip()
        assert "\n" not in line and needle in line, (args, line)


def test_an_unreachable_instance_is_one_line_and_exit_1() -> None:
    port = free_port()
    result = send("slack", url=f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and "cannot reach" in line and str(port) in line, line


@pytest.mark.parametrize("source", list(VARIABLE))
def test_dry_run_sends_nothing_and_never_shows_the_secret(server: Server, source: str) -> None:
    before = server.count()
    result = send(source, "--dry-run", url=server.url)
    assert result.returncode == 0, result.stderr
    assert server.count() == before
    assert SECRETS[VARIABLE[source]] not in result.stdout + result.stderr
    path = next(
        e.path for e in endpoints(load_settings()) if e.name == STORED_AS.get(source, source)
    )
    assert result.stdout.startswith(f"POST {server.url}{path}\n")
    signature_header = {
        "slack": "X-Slack-Signature: v0=",
        "slack-interactions": "X-Slack-Signature: v0=",
        "github": "X-Hub-Signature-256: sha256=",
        "pagerduty": "X-PagerDuty-Signature: v1=",
        "incidentio": "webhook-signature: v1,",
        "generic": "webhook-signature: v1,",
        "coralogix": "Authorization: Bearer ***",
    }[source]
    assert signature_header in result.stdout


def test_a_dry_run_is_faithful_enough_to_replay(server: Server) -> None:
    result = send("github", "--dry-run", "--json", "--repo", "acme/replayed", url=server.url)
    shown = json.loads(result.stdout)
    assert SECRETS["GITHUB_WEBHOOK_SECRET"] not in result.stdout
    replay = httpx.post(shown["url"], content=shown["body"].encode(), headers=shown["headers"])
    assert replay.status_code == 200, replay.text
    stored = server.event(replay.json()["event_id"])
    assert stored["routing_identifiers"] == {"github_repo": "acme/replayed"}


def test_help_documents_the_rotation_rule() -> None:
    result = subprocess.run(
        [ORCHESTRATOR_BIN, "webhook", "send", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "LAST" in result.stdout and "ORCHESTRATOR_URL" in result.stdout
    for variable in SECRETS:
        assert variable in result.stdout


# -- orchestrator dev ------------------------------------------------------------------------


def test_dev_secrets_gain_webhook_secrets_and_an_old_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    old = {
        "admin_token": "a",
        "internal_token": "b",
        "internal_admin_token": "c",
        "secret_key": Fernet.generate_key().decode(),
    }
    path.write_text(json.dumps(old))
    loaded = DevSecrets.load_or_create(path)
    assert loaded.admin_token == "a"
    assert set(loaded.webhook_secrets) == set(WEBHOOK_SECRET_VARIABLES)
    for variable in ("INCIDENTIO_WEBHOOK_SECRET", "GENERIC_WEBHOOK_SECRET"):
        secret = loaded.webhook_secrets[variable]
        assert secret.startswith("whsec_")
        assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
        Webhook(secret).sign("msg_1", time_now(), "{}")
    again = DevSecrets.load_or_create(path)
    assert again.webhook_secrets == loaded.webhook_secrets  # persisted
    assert json.loads(path.read_text())["admin_token"] == "a"
    fresh = DevSecrets.load_or_create(tmp_path / "new.json")
    assert set(fresh.webhook_secrets) == set(WEBHOOK_SECRET_VARIABLES)
    assert fresh.webhook_secrets != loaded.webhook_secrets


def time_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_the_dev_banner_command_works_as_pasted(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    port = int(server.url.rsplit(":", 1)[1])
    out = io.StringIO()
    stack = DevStack(load_settings(), dev_dir=tmp_path, port=port, out=out)
    env = {
        "ORCHESTRATOR_ADMIN_TOKEN": "dev-admin",
        "ORCHESTRATOR_WORKER_METRICS_PORT": "1",
        "ORCHESTRATOR_SCHEDULER_METRICS_PORT": "2",
        "SLACK_SIGNING_SECRET": SECRETS["SLACK_SIGNING_SECRET"],
    }
    stack._banner(env, 1.0)
    command = next(line for line in out.getvalue().splitlines() if "webhook send slack" in line)
    result = subprocess.run(
        ["bash", "-c", command.strip()],
        env=cli_env(None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    accepted_event(result, "slack")


def test_dev_signs_every_source_with_generated_secrets(tmp_path: Path) -> None:
    """The real `orchestrator dev`: its banner command is accepted, and so is every other
    source signed with the secrets it keeps in secrets.json."""
    port = free_port()
    dev_dir = Path(tempfile.mkdtemp(prefix="orch-dev-send-"))
    env = process_env()
    for name in ("CONFIG_SERVICE_URL", "AGENT_API_URL", "AI_PIPELINE_API_URL", "KUBECONFIG"):
        env.pop(name, None)
    for variable in SECRETS:
        env.pop(variable, None)
    proc = subprocess.Popen(
        [ORCHESTRATOR_BIN, "dev", "--dir", str(dev_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            not banner or "Ctrl-C stops everything" not in banner[-1]
        ):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            banner.append(line)
        text = "".join(banner)
        command = next(line for line in banner if "webhook send slack" in line).strip()
        assert str(dev_dir / "secrets.json") in text
        pasted = subprocess.run(
            ["bash", "-c", command], env=cli_env(None), capture_output=True, text=True, timeout=60
        )
        accepted_event(pasted, "slack")
        kept = json.loads((dev_dir / "secrets.json").read_text())["webhook_secrets"]
        assert kept["SLACK_SIGNING_SECRET"] in command
        url = f"http://127.0.0.1:{port}"
        for source in VARIABLE:
            accepted_event(send(source, url=url, env=cli_env(url, **kept)), source)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 0
    assert not port_is_open(port)
    shutil.rmtree(dev_dir, ignore_errors=True)
