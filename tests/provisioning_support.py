"""Fixtures of the provisioning tests: the web app and a real in-process Dramatiq worker
with the provisioning actor, reaching the Config Service, AI Pipeline and Kubernetes API
stand-ins over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import pytest
from falcon import testing
from pydantic import SecretStr

from orchestrator.db.pool import create_pool
from orchestrator.devstack.ai_pipeline import AiPipelineStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.provisioning import runs
from orchestrator.settings import Settings
from tests.conftest import K8S_NAMESPACE
from web.app import create_app
from workers.actors import register_all
from workers.broker import create_broker
from workers.runtime import build_deps, build_provisioning_deps

INTERNAL_ADMIN = "internal-admin-token"
PROVISION_PATH = "/api/v1/admin/provision/team"
RUNS_PATH = "/api/v1/admin/provision/runs"


@dataclass
class Prov:
    client: testing.TestClient
    settings: Settings
    config: ConfigServiceStandIn
    pipeline: AiPipelineStandIn
    kube: KubernetesStandIn
    token: str
    broker: Any
    pool: Any
    worker: Any

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def provision(self, body: dict[str, Any], token: str | None = None) -> testing.Result:
        return self.client.simulate_post(PROVISION_PATH, json=body, headers=self.headers(token))

    def deprovision(self, body: dict[str, Any], token: str | None = None) -> testing.Result:
        return self.client.simulate_delete(PROVISION_PATH, json=body, headers=self.headers(token))

    def read(self, run_id: str, token: str | None = None) -> testing.Result:
        return self.client.simulate_get(f"{RUNS_PATH}/{run_id}", headers=self.headers(token))

    def wait(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The run once finished, read from Postgres: an API read by an admin would
        consume the run's new team token."""
        deadline = time.monotonic() + timeout
        run: runs.Run | None = None
        while time.monotonic() < deadline:
            with self.pool.connection() as conn:
                run = runs.get(conn, uuid.UUID(run_id))
            if run is not None and run.status in ("succeeded", "failed"):
                return run.public()
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} not finished within {timeout}s: {run}")

    def wait_steps(self, run_id: str) -> list[dict[str, Any]]:
        """The run's steps as stored now, whatever its status."""
        with self.pool.connection() as conn:
            run = runs.get(conn, uuid.UUID(run_id))
        assert run is not None
        return [s.model_dump(mode="json") for s in run.steps]

    def steps(self, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in run["steps"]}

    def team_tokens(self, org: str, team: str) -> list[dict[str, Any]]:
        return [
            t
            for t in self.config.tokens.values()
            if (t["org_id"], t["team_node_id"]) == (org, team)
        ]


@pytest.fixture
def prov(
    settings: Settings,
    services: Any,
    config_service: ConfigServiceStandIn,
    kube: KubernetesStandIn,
    kubeconfig: str,
    admin_token: str,
) -> Iterator[Prov]:
    pipeline = AiPipelineStandIn().start()
    config_service.add_super_admin(INTERNAL_ADMIN, subject="orchestrator-internal")
    worker_settings = settings.model_copy(
        update={
            "agent_api_url": "http://127.0.0.1:9",
            "ai_pipeline_api_url": pipeline.url,
            "orchestrator_internal_admin_token": SecretStr(INTERNAL_ADMIN),
            "ai_pipeline_image": "ai-pipeline:test",
            "agent_image": "agent:test",
            "kubeconfig": kubeconfig,
            "k8s_namespace": K8S_NAMESPACE,
            "orchestrator_max_attempts": 3,
            "orchestrator_max_body_bytes": 65536,
        }
    )
    pool = create_pool(worker_settings, name="test-provisioning-worker")
    broker = create_broker(
        worker_settings,
        role="worker",
        pool=pool,
        prometheus=False,
        min_backoff_ms=20,
        max_backoff_ms=100,
        namespace=services.namespace,
    )
    register_all(
        broker,
        build_deps(worker_settings, pool, namespace=services.namespace),
        build_provisioning_deps(worker_settings, pool),
    )
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=50)
    worker.start()
    client = testing.TestClient(create_app(worker_settings, services))
    yield Prov(
        client,
        worker_settings,
        config_service,
        pipeline,
        kube,
        admin_token,
        broker,
        services.pool,
        worker,
    )
    worker.stop()
    broker.close()
    pool.close()
    pipeline.stop()
