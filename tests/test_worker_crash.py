"""A worker killed (SIGKILL) in the middle of an agent call: its message was never
acknowledged, Dramatiq hands it to another worker once the dead one's heartbeat has
expired, and the event is dispatched again — to the agent with the same correlation
id, so the agent sees one run, retried, not two runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import dramatiq
import pytest

from orchestrator.db.pool import create_pool
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from tests.conftest import ORCHESTRATOR_BIN, free_port, process_env
from tests.webhook_support import INTERNAL_ADMIN, SECRETS, final_event, send, wait_for
from workers.actors import register_all
from workers.broker import create_broker
from workers.runtime import build_deps

pytestmark = pytest.mark.slow


def test_a_dispatch_interrupted_by_a_killed_worker_is_redelivered_with_the_same_run(
    stack: dict[str, Any],
    db: Any,
    agent: AgentStandIn,
    config_service: ConfigServiceStandIn,
    services: Any,
    database_url: str,
    redis_url: str,
) -> None:
    stack["worker"].stop()  # this test brings its own workers
    settings = stack["settings"]
    env = process_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONFIG_SERVICE_URL=config_service.url,
        AGENT_API_URL=agent.url,
        AI_PIPELINE_API_URL="http://127.0.0.1:9",
        AI_PIPELINE_IMAGE="pipeline:test",
        ORCHESTRATOR_INTERNAL_ADMIN_TOKEN=INTERNAL_ADMIN,
        ORCHESTRATOR_SECRET_KEY=settings.orchestrator_secret_key.get_secret_value(),
        ORCHESTRATOR_REDIS_NAMESPACE=services.namespace,
        GENERIC_WEBHOOK_SECRET=SECRETS["generic"],
        ORCHESTRATOR_WORKER_METRICS_PORT=str(free_port()),
    )
    agent.set_behaviour("slow", delay=60, times=1)
    worker = subprocess.Popen(
        [ORCHESTRATOR_BIN, "worker", "--processes", "1", "--threads", "2", "--queues", "webhooks"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        event_id = send(stack["client"], "generic").json["event_id"]
        wait_for(lambda: len(agent.runs_snapshot()) == 1, timeout=30)
        os.killpg(worker.pid, signal.SIGKILL)  # mid-call, message unacknowledged
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    running = db.execute(
        "SELECT status, agent_run_id FROM orchestrator_webhook_events WHERE id = %s", (event_id,)
    ).fetchone()
    assert running["status"] == "dispatched"

    time.sleep(1.5)  # past the (shortened) heartbeat timeout of the dead worker
    pool = create_pool(settings, name="rescuer")
    rescuer_broker = create_broker(
        settings,
        role="worker",
        pool=pool,
        prometheus=False,
        namespace=services.namespace,
        heartbeat_timeout_ms=1000,
        maintenance_chance=1_000_000,  # maintenance on every fetch
    )
    register_all(rescuer_broker, build_deps(settings, pool, namespace=services.namespace))
    rescuer_broker.emit_after("process_boot")
    rescuer = dramatiq.Worker(rescuer_broker, worker_threads=1, worker_timeout=50)
    rescuer.start()
    try:
        event = final_event(db, event_id, "dispatched", timeout=60)
        wait_for(
            lambda: (
                db.execute(
                    "SELECT status FROM orchestrator_agent_runs WHERE id = %s",
                    (event["agent_run_id"],),
                ).fetchone()["status"]
                == "succeeded"
            ),
            timeout=30,
        )
    finally:
        rescuer.stop()
        rescuer_broker.close()
        pool.close()
    calls = agent.runs_snapshot()
    assert len(calls) == 2
    assert {c["correlation_id"] for c in calls} == {str(running["agent_run_id"])}
    run = db.execute(
        "SELECT attempts FROM orchestrator_agent_runs WHERE id = %s", (running["agent_run_id"],)
    ).fetchone()
    assert run["attempts"] == 2
