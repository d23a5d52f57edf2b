"""The stack the fault and shutdown tests run: real web, worker and scheduler processes on
their own embedded PostgreSQL and Redis (so they can be restarted), the peers' stand-ins
in the test process, and a steady stream of signed webhooks."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from orchestrator.db.migrations import apply
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.ai_pipeline import AiPipelineStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.embedded import EmbeddedPostgres, EmbeddedRedis
from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.webhooks.signing import signed_headers
from tests.conftest import ORCHESTRATOR_BIN, free_port, process_env, stop, wait_http
from tests.provisioning_support import INTERNAL_ADMIN
from tests.webhook_support import PATHS, ROUTING, SAMPLES, SECRETS

ADMIN = "faults-admin-token"
FINAL_EVENT = ("ignored", "unroutable", "dispatched", "failed")


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (psycopg.OperationalError, httpx.TransportError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what} (last: {last!r})")


class Traffic(threading.Thread):
    """Signed generic webhooks at a steady rate; remembers what was acknowledged."""

    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True, name="traffic")
        self.url = url
        self.period = 1.0 / rate
        self.acked: list[str] = []
        self.refused: dict[int | str, int] = defaultdict(int)
        self._halt = threading.Event()

    def run(self) -> None:
        body = SAMPLES["generic"]()
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._halt.is_set():
                started = time.monotonic()
                headers = signed_headers("generic", SECRETS["generic"], body)
                try:
                    answer = client.post(PATHS["generic"], content=body, headers=headers)
                    if answer.status_code == 200:
                        self.acked.append(answer.json()["event_id"])
                    else:
                        self.refused[answer.status_code] += 1
                except httpx.TransportError as exc:
                    self.refused[type(exc).__name__] += 1
                self._halt.wait(max(0.0, self.period - (time.monotonic() - started)))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=15)


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[Any]] = {}
        self.postgres = EmbeddedPostgres(workdir / "pg")
        self.redis = EmbeddedRedis(workdir / "redis" / "redis.db")
        self.config = ConfigServiceStandIn().start()
        self.agent = AgentStandIn().start()
        self.pipeline = AiPipelineStandIn().start()
        self.kube = KubernetesStandIn().start()
        self.port = free_port()

    def start(self) -> None:
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        apply(self.database_url)
        self.config.add_super_admin(ADMIN)
        self.config.add_super_admin(INTERNAL_ADMIN, subject="orchestrator-internal")
        self.config.seed_team("acme", "payments", routing=ROUTING)
        kubeconfig = self.workdir / "kubeconfig"
        kubeconfig.write_text(self.kube.kubeconfig("incidentfox"))
        self.env = process_env(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CONFIG_SERVICE_URL=self.config.url,
            AGENT_API_URL=self.agent.url,
            AI_PIPELINE_API_URL=self.pipeline.url,
            AI_PIPELINE_IMAGE="ai-pipeline:faults",
            KUBECONFIG=str(kubeconfig),
            K8S_NAMESPACE="incidentfox",
            ORCHESTRATOR_SECRET_KEY="Qk5VLy0tYmVuY2gtLWZhdWx0cy0tMzItYnl0ZXMtLS0=",
            ORCHESTRATOR_INTERNAL_ADMIN_TOKEN=INTERNAL_ADMIN,
            GENERIC_WEBHOOK_SECRET=SECRETS["generic"],
            ORCHESTRATOR_TEAM_DISPATCH_LIMIT="100000/minute",
            ORCHESTRATOR_INGRESS_RATE_LIMIT="100000/second",
            ORCHESTRATOR_RELAY_AFTER_SECONDS="3",
            ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS="2",
            ORCHESTRATOR_GENERIC_AGENT_TIMEOUT_SECONDS="2",
            ORCHESTRATOR_PEER_TIMEOUT_SECONDS="1",
            ORCHESTRATOR_METRICS_HOST="127.0.0.1",
            PORT=str(self.port),
        )
        self.spawn_web()
        self.spawn_worker()
        self.spawn_scheduler()

    def spawn_web(self) -> None:
        self.spawn("web", ["web", "--workers", "1", "--threads", "4"])
        wait_http(f"{self.url}/ready", timeout=60, proc=self.procs["web"])

    def spawn_scheduler(self) -> None:
        """Returns once the scheduler serves metrics: it then also stops gracefully."""
        port = free_port()
        self.spawn("scheduler", ["scheduler"], ORCHESTRATOR_SCHEDULER_METRICS_PORT=str(port))
        wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60, proc=self.procs["scheduler"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, name: str, args: list[str], **env: str) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [ORCHESTRATOR_BIN, *args],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def spawn_worker(self) -> None:
        env = {k: v for k, v in self.env.items() if k != "PORT"}
        self.env_worker = env
        log = open(self.workdir / "worker.log", "ab")  # noqa: SIM115
        port = free_port()
        self.procs["worker"] = subprocess.Popen(
            [ORCHESTRATOR_BIN, "worker", "--processes", "1", "--threads", "4"],
            env={**env, "ORCHESTRATOR_WORKER_METRICS_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Its worker process serves metrics once booted: a SIGTERM before Dramatiq has
        # installed its handlers would kill it outright (-15), a test artefact.
        wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60, proc=self.procs["worker"])

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10, **kwargs,
        )  # fmt: skip

    def secrets(self) -> set[str]:
        """Every credential the processes held or were handed: configured secrets, the
        tokens the Config Service issued (admin, team, impersonation) and the team
        credentials the agent was called with."""
        configured = ("ORCHESTRATOR_SECRET_KEY", "ORCHESTRATOR_INTERNAL_ADMIN_TOKEN")
        return {
            *(self.env[name] for name in configured),
            SECRETS["generic"],
            ADMIN,
            *self.config.principals,
            *(r["team_token"] for r in self.agent.runs_snapshot() if r["team_token"]),
        }

    def log_leaks(self) -> list[str]:
        """Each secret found in the logs the processes wrote, with where: tracebacks from
        outages and peer errors are where a credential would slip out."""
        leaks = []
        for log in sorted(self.workdir.glob("*.log")):
            text = log.read_text(errors="replace")
            assert text.count("\n") > 5, f"{log.name} holds (almost) nothing"
            leaks += [
                f"{log.name}: {secret[:10]}… in …{text[max(0, i - 120) : i + 40]}…"
                for secret in self.secrets()
                if (i := text.find(secret)) >= 0
            ]
        return leaks

    def log_tails(self, lines: int = 15) -> str:
        """The end of each process's log, for a failure message."""
        tails = []
        for log in sorted(self.workdir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {log.name}\n" + "\n".join(t[:300] for t in tail))
        return "\n".join(tails)

    def close(self) -> None:
        for proc in self.procs.values():
            stop(proc)
        for standin in (self.config, self.agent, self.pipeline, self.kube):
            standin.stop()
        self.redis.stop()
        self.postgres.stop()


@pytest.fixture
def fault_stack() -> Iterator[Stack]:
    if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        pytest.skip("restarts PostgreSQL and Redis: needs the embedded servers it owns")
    workdir = Path(tempfile.mkdtemp(prefix="orch-faults-"))
    stack = Stack(workdir)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_all_final(
    stack: Stack, conn: psycopg.Connection[Any], acked: set[str], timeout: float
) -> None:
    """Every acknowledged event is stored and reaches a final state within `timeout`;
    if not, the failure says which statuses they are stuck in, since when, and what
    the processes logged last."""

    def all_final() -> bool:
        rows = conn.execute(
            "SELECT id::text, status FROM orchestrator_webhook_events WHERE id::text = ANY(%s)",
            (list(acked),),
        ).fetchall()
        assert len(rows) == len(acked), "an acknowledged event is missing from Postgres"
        return all(r["status"] in FINAL_EVENT for r in rows)

    try:
        wait_for(all_final, timeout, "every acknowledged event in a final state")
    except AssertionError as exc:
        stuck = conn.execute(
            "SELECT status, count(*) AS n, min(received_at) AS oldest,"
            " max(status_history::text) AS history FROM orchestrator_webhook_events"
            " WHERE id::text = ANY(%s) AND status <> ALL(%s) GROUP BY status",
            (list(acked), list(FINAL_EVENT)),
        ).fetchall()
        raise AssertionError(f"{exc}; not final: {stuck}; {stack.log_tails()}") from None


def settle_events(stack: Stack, acked: set[str], timeout: float = 240) -> dict[str, int]:
    """Wait until every acknowledged event is final; check no event reached the agent
    under two runs (two correlation ids). Returns the count per status."""
    with stack.db() as conn:
        wait_all_final(stack, conn, acked, timeout)
        doubled = conn.execute(
            "SELECT event_id::text FROM orchestrator_agent_runs WHERE event_id IS NOT NULL"
            " GROUP BY event_id HAVING count(DISTINCT id) > 1"
        ).fetchall()
        assert doubled == [], f"events dispatched under two correlation ids: {doubled}"
        run_ids = {
            r["id"] for r in conn.execute("SELECT id::text FROM orchestrator_agent_runs").fetchall()
        }
        assert {c["correlation_id"] for c in stack.agent.runs_snapshot()} <= run_ids
        rows = conn.execute(
            "SELECT status, count(*) AS n FROM orchestrator_webhook_events GROUP BY status"
        ).fetchall()
    return {r["status"]: r["n"] for r in rows}
