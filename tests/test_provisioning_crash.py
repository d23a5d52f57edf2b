"""A worker killed (SIGKILL) in the middle of a provisioning run: the message was never
acknowledged, another worker gets it once the dead one's heartbeat has expired, and the
run resumes from the step that was in flight — every finished step's side effect
(nodes, routing, token, CronJob, Deployment, Service) happened exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import dramatiq
import pytest

from orchestrator.db.pool import create_pool
from tests.conftest import K8S_NAMESPACE, ORCHESTRATOR_BIN, free_port, process_env
from tests.provisioning_support import INTERNAL_ADMIN, Prov
from tests.provisioning_support import prov as prov
from tests.webhook_support import wait_for
from workers.actors import register_all
from workers.broker import create_broker
from workers.runtime import build_deps, build_provisioning_deps

pytestmark = pytest.mark.slow


def test_a_run_interrupted_by_a_killed_worker_resumes_without_repeating_a_step(
    prov: Prov, services: Any, database_url: str, redis_url: str, db: Any
) -> None:
    prov.worker.stop()  # this test brings its own workers
    settings = prov.settings
    env = process_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONFIG_SERVICE_URL=prov.config.url,
        AGENT_API_URL="http://127.0.0.1:9",
        AI_PIPELINE_API_URL=prov.pipeline.url,
        AI_PIPELINE_IMAGE="ai-pipeline:test",
        AGENT_IMAGE="agent:test",
        ORCHESTRATOR_INTERNAL_ADMIN_TOKEN=INTERNAL_ADMIN,
        ORCHESTRATOR_SECRET_KEY=settings.orchestrator_secret_key.get_secret_value(),
        ORCHESTRATOR_REDIS_NAMESPACE=services.namespace,
        KUBECONFIG=settings.kubeconfig or "",
        K8S_NAMESPACE=K8S_NAMESPACE,
        ORCHESTRATOR_WORKER_METRICS_PORT=str(free_port()),
    )
    prov.pipeline.set_faults(latency=60, path=r"/bootstrap$")
    worker = subprocess.Popen(
        [ORCHESTRATOR_BIN, "worker", "--processes", "1", "--threads", "2",
         "--queues", "provisioning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        answer = prov.provision(
            {"org_id": "acme", "team_node_id": "crash", "routing": {"services": ["svc"]},
             "create_pipeline_schedule": True, "deployment_mode": "dedicated"}
        )  # fmt: skip
        run_id = answer.json["provisioning_run_id"]
        wait_for(lambda: prov.pipeline.calls, timeout=60)  # the bootstrap call is in flight
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    steps = {s["name"]: s["status"] for s in prov.wait_steps(run_id)}
    assert steps["dedicated_agent"] == "succeeded" and steps["bootstrap"] == "running"
    prov.pipeline.clear_faults()
    writes_before = dict(prov.kube.writes)

    time.sleep(1.5)  # past the (shortened) heartbeat timeout of the dead worker
    pool = create_pool(settings, name="rescuer")
    broker = create_broker(
        settings,
        role="worker",
        pool=pool,
        prometheus=False,
        namespace=services.namespace,
        heartbeat_timeout_ms=1000,
        maintenance_chance=1_000_000,
    )
    register_all(
        broker,
        build_deps(settings, pool, namespace=services.namespace),
        build_provisioning_deps(settings, pool),
    )
    broker.emit_after("process_boot")
    rescuer = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    rescuer.start()
    try:
        run = prov.wait(run_id, timeout=60)
    finally:
        rescuer.stop()
        broker.close()
        pool.close()
    assert run["status"] == "succeeded", run
    by_name = prov.steps(run)
    assert by_name["bootstrap"]["attempts"] == 2  # the step in flight ran again…
    assert all(by_name[n]["attempts"] == 1 for n in ("team_node", "routing", "team_token"))
    # …and nothing finished before the crash happened twice.
    assert len(prov.team_tokens("acme", "crash")) == 1
    assert dict(prov.kube.writes) == writes_before
    node_posts = [c for c in prov.config.calls if c.method == "POST" and c.path.endswith("/nodes")]
    assert len(node_posts) == 2  # org and team, once each
    routing_puts = [c for c in prov.config.calls if c.method == "PUT" and b"routing" in c.body]
    assert len(routing_puts) == 1
    assert len([c for c in prov.pipeline.calls if c.path.endswith("/bootstrap")]) == 2
