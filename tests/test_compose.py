"""docker-compose.yml: this machine has no Docker engine, so the file cannot be run here;
these checks hold it to the same facts the Kubernetes manifests are held to — the
Procfile's commands, variables the settings know, the port and readiness path the web
tier serves, and grace periods that cover each process's shutdown."""

from __future__ import annotations

import re
import shlex
from functools import cache
from typing import Any

import yaml

from orchestrator.settings import REQUIRED, Settings
from tests.conftest import REPO
from web import gunicorn_conf

ROLES = ("migrate", "web", "worker", "scheduler")
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
# Read by the Kubernetes client itself, not by the settings.
NOT_SETTINGS = {"KUBECONFIG"}
DOCKER_DEFAULT_STOP_SECONDS = 10


@cache
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


def service(name: str) -> dict[str, Any]:
    return dict(compose()["services"][name])


def seconds(duration: str) -> int:
    """A compose duration of whole minutes and seconds ("1m30s", "40s")."""
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"unexpected duration {duration!r}"
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def stop_seconds(name: str) -> int:
    return seconds(service(name).get("stop_grace_period", f"{DOCKER_DEFAULT_STOP_SECONDS}s"))


def test_each_role_runs_its_procfile_command_from_the_one_image() -> None:
    procfile = {
        shlex.split(line.split(":", 1)[1])[1]: shlex.split(line.split(":", 1)[1])
        for line in (REPO / "Procfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for role in ROLES:
        assert service(role)["command"] == procfile[role], role
        assert service(role)["build"] == "."
        assert service(role)["image"] == service("web")["image"]


def test_every_variable_is_a_setting_and_each_role_gets_what_it_requires() -> None:
    for role in ROLES:
        env = service(role)["environment"]
        assert set(env) - SETTING_NAMES - NOT_SETTINGS == set(), role
        missing = set(REQUIRED[role]) - {k for k, v in env.items() if str(v).strip()}
        assert not missing, f"{role} lacks {sorted(missing)}"


def test_secrets_have_no_defaults_so_compose_refuses_to_start_without_them() -> None:
    env = service("web")["environment"]
    for name in (n for n in SETTING_NAMES & set(env) if "SECRET" in n or "TOKEN" in n):
        assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", env[name]), name
    assert ":?" in service("postgres")["environment"]["POSTGRES_PASSWORD"]


def test_web_publishes_its_port_and_checks_readiness_there() -> None:
    web = service("web")
    port = Settings.model_fields["port"].default
    assert f"{port}:{port}" in web["ports"]
    assert "PORT" not in web["environment"]  # it would also move the worker's metrics port
    probe = " ".join(web["healthcheck"]["test"])
    assert f"http://localhost:{port}/ready" in probe


def test_processes_start_after_migrations_and_their_dependencies() -> None:
    for role in ("web", "worker", "scheduler"):
        needs = service(role)["depends_on"]
        assert needs["migrate"] == {"condition": "service_completed_successfully"}, role
        assert needs["redis"] == {"condition": "service_healthy"}, role
    assert service("migrate")["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert service("migrate")["restart"] == "no"


def test_redis_keeps_the_queues_across_restarts() -> None:
    command = service("redis")["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in service("redis")["volumes"])


def test_grace_periods_cover_each_process_shutdown() -> None:
    assert stop_seconds("web") > gunicorn_conf.graceful_timeout
    worker_timeout = Settings.model_fields["orchestrator_worker_shutdown_timeout_seconds"].default
    assert stop_seconds("worker") > worker_timeout
    # The scheduler finishes the Kubernetes write in flight (a 10 s client timeout) and
    # the Postgres statement in flight before it exits: Docker's default 10 s is not enough.
    statement = Settings.model_fields["orchestrator_statement_timeout_ms"].default / 1000
    assert stop_seconds("scheduler") > 10 + statement
