"""Migrations (idempotent, safe under two concurrent appliers, every SPEC §6 table) and
settings (a missing or invalid variable stops a process with one line naming it)."""

from __future__ import annotations

import subprocess
from typing import Any

import psycopg
import pytest

from orchestrator.db.migrations import apply, migration_ids
from orchestrator.settings import InvalidSetting, MissingSetting, load_settings
from tests.conftest import ORCHESTRATOR_BIN, process_env

SPEC_COLUMNS = {
    "orchestrator_provisioning_runs": {
        "id",
        "org_id",
        "team_node_id",
        "idempotency_key",
        "status",
        "steps",
        "error",
        "created_at",
        "updated_at",
        "kind",
        "request",
        "request_hash",
        "team_token_encrypted",
        "team_token_delivered_at",
    },
    "orchestrator_pipeline_schedules": {
        "id",
        "org_id",
        "team_node_id",
        "schedule_type",
        "cron_expression",
        "k8s_cronjob_name",
        "enabled",
        "last_run_at",
        "created_at",
        "timezone",
        "updated_at",
        "sync_status",
        "sync_error",
        "last_synced_at",
    },
    "orchestrator_webhook_events": {
        "id",
        "source",
        "delivery_key",
        "event_type",
        "status",
        "received_at",
        "updated_at",
        "headers",
        "payload",
        "routing_identifiers",
        "org_id",
        "team_node_id",
        "matched_by",
        "attempts",
        "last_error",
        "agent_run_id",
    },
    "orchestrator_agent_runs": {
        "id",
        "org_id",
        "team_node_id",
        "agent_name",
        "trigger_source",
        "event_id",
        "status",
        "request",
        "result",
        "error",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
    },
    "orchestrator_audit_log": {
        "id",
        "at",
        "actor",
        "action",
        "org_id",
        "team_node_id",
        "subject",
        "detail",
    },
    "orchestrator_job_failures": {
        "message_id",
        "actor",
        "queue",
        "arguments",
        "retries",
        "traceback",
        "failed_at",
    },
}


def columns(dsn: str) -> dict[str, set[str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def test_migrate_creates_every_spec_table_and_is_a_noop_the_second_time(
    empty_database_url: str,
) -> None:
    first = apply(empty_database_url)
    assert first.applied == migration_ids()
    schema = columns(empty_database_url)
    for table, expected in SPEC_COLUMNS.items():
        assert expected <= schema.get(table, set()), table
    second = apply(empty_database_url)
    assert second.applied == [] and second.already == len(migration_ids())
    assert columns(empty_database_url) == schema


def test_two_migrators_at_once_leave_one_correct_schema(empty_database_url: str) -> None:
    env = process_env(DATABASE_URL=empty_database_url)
    procs = [
        subprocess.Popen(
            [ORCHESTRATOR_BIN, "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted(out.strip() for out, _err in outputs)
    assert said[0].startswith(f"applied {len(migration_ids())} migration(s)")
    assert said[1].startswith("schema is current")
    with psycopg.connect(empty_database_url) as conn:
        applied = conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()
    assert applied == (len(migration_ids()),)
    assert SPEC_COLUMNS.keys() <= columns(empty_database_url).keys()


SCHEDULE_ROW = (
    "INSERT INTO orchestrator_pipeline_schedules (id, org_id, team_node_id, schedule_type,"
    " cron_expression) VALUES (gen_random_uuid(), 'o', 't', 'eval', '@daily')"
)


def test_constraints_hold(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEDULE_ROW)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(SCHEDULE_ROW)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, status)"
                " VALUES (gen_random_uuid(), 'github', 'k', 'bogus')"
            )


@pytest.mark.parametrize(
    "role,missing",
    [
        ("migrate", ["DATABASE_URL"]),
        ("web", ["DATABASE_URL", "REDIS_URL", "CONFIG_SERVICE_URL", "ORCHESTRATOR_SECRET_KEY"]),
        ("scheduler", ["DATABASE_URL", "REDIS_URL", "CONFIG_SERVICE_URL", "AI_PIPELINE_IMAGE"]),
    ],
)
def test_required_variables_per_process(
    role: Any, missing: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "CONFIG_SERVICE_URL",
        "ORCHESTRATOR_SECRET_KEY",
        "AI_PIPELINE_IMAGE",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingSetting) as info:
        load_settings().require(role)
    assert info.value.names == missing


def test_worker_needs_the_peer_urls_and_images(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        database_url="postgresql://x/y",
        redis_url="redis://x",
        config_service_url="http://c",
        orchestrator_secret_key="k",
    )
    with pytest.raises(MissingSetting) as info:
        settings.require("worker")
    assert info.value.names == [
        "AGENT_API_URL",
        "AI_PIPELINE_API_URL",
        "ORCHESTRATOR_INTERNAL_ADMIN_TOKEN",
        "AI_PIPELINE_IMAGE",
    ]


def test_invalid_values_are_named_without_their_value() -> None:
    with pytest.raises(InvalidSetting) as info:
        load_settings(orchestrator_ingress_rate_limit="lots", port="eighty")
    text = str(info.value)
    assert "ORCHESTRATOR_INGRESS_RATE_LIMIT" in text and "PORT" in text
    with pytest.raises(InvalidSetting) as bad_key:
        load_settings(
            database_url="postgresql://x/y",
            redis_url="redis://x",
            config_service_url="http://c",
            orchestrator_secret_key="not-a-fernet-key",
        ).require("web")
    assert "ORCHESTRATOR_SECRET_KEY" in str(bad_key.value)
    assert "not-a-fernet-key" not in str(bad_key.value)


def test_secrets_never_show_in_a_repr() -> None:
    settings = load_settings(
        database_url="postgresql://u:pw-123@h/db",
        orchestrator_internal_token="itok-456",
        github_webhook_secret="old-1, new-2",
    )
    assert "pw-123" not in repr(settings) and "itok-456" not in repr(settings)
    assert settings.webhook_secrets("github") == ["old-1", "new-2"]
    assert settings.webhook_secrets("slack") == []


@pytest.mark.parametrize("command", ["migrate", "web", "worker", "scheduler"])
def test_cli_names_the_missing_variable_in_one_line(command: str) -> None:
    result = subprocess.run(
        [ORCHESTRATOR_BIN, command], env=process_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["migrate", "web", "worker", "scheduler", "dev"])
def test_every_command_has_help(command: str) -> None:
    result = subprocess.run(
        [ORCHESTRATOR_BIN, command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: orchestrator {command}")


def test_worker_refuses_unknown_queues(database_url: str) -> None:
    env = process_env(
        DATABASE_URL=database_url,
        REDIS_URL="redis://127.0.0.1:1",
        CONFIG_SERVICE_URL="http://127.0.0.1:1",
        AGENT_API_URL="http://a",
        AI_PIPELINE_API_URL="http://p",
        ORCHESTRATOR_INTERNAL_ADMIN_TOKEN="t",
        AI_PIPELINE_IMAGE="img",
        ORCHESTRATOR_SECRET_KEY="kF0x1mZp2H0u7sU3wH7Lr1oQ9v7m3YyqXgqgkXgq2xE=",
    )
    result = subprocess.run(
        [ORCHESTRATOR_BIN, "worker", "--queues", "webhooks,bogus"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown queue(s) bogus" in result.stderr


def test_migrate_refuses_a_missing_migrations_folder(
    empty_database_url: str, tmp_path: Any
) -> None:
    env = process_env(
        DATABASE_URL=empty_database_url, ORCHESTRATOR_MIGRATIONS_DIR=str(tmp_path / "nowhere")
    )
    result = subprocess.run(
        [ORCHESTRATOR_BIN, "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no migrations found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with psycopg.connect(empty_database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_web_bind_must_be_host_and_port() -> None:
    result = subprocess.run(
        [ORCHESTRATOR_BIN, "web", "--bind", "8080"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "expected host:port" in result.stderr
