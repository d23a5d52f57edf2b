"""Provisioning throughput and run duration, end to end through the real processes.

    .venv/bin/python bench/provision_bench.py [--teams 100] [--latency-teams 40]
        [--concurrency 1,4,8,16] [--latency-ms 50]

Starts embedded PostgreSQL and Redis (unless `DATABASE_URL` / `REDIS_URL` are set), the
Config Service, AI Pipeline and Kubernetes API stand-ins in this process (over HTTP),
the real `orchestrator web` and, per scenario, a fresh `orchestrator worker` with
`--threads` set to the scenario's concurrency. Each team is a full run: org and team
nodes, two routing lists (so two routing-owner lookups each), a new team token, the
default pipeline schedule (a schedule row and its CronJob) and the AI Pipeline
bootstrap — seven steps, about a dozen peer calls.

1. Zero latency: `--teams` provisioning requests for distinct teams, sent as fast as
   one client can; runs/s completed (teams ÷ time from the first request to the last
   run's end) and the run duration (from `running` to its end, SPEC §5) p50/p95.
2. `--latency-ms` on every stand-in: `--latency-teams` teams for each worker
   concurrency in `--concurrency`: how run duration and throughput scale.

Prints a table and writes JSON to `bench/results/provision_<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg
from cryptography.fernet import Fernet

from bench._stack import (
    RESULTS_DIR,
    Dependencies,
    Machine,
    dependencies,
    install_signal_handlers,
    say,
    web,
)
from bench.webhook_bench import worker
from orchestrator.devstack.ai_pipeline import AiPipelineStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.kubernetes import KubernetesStandIn

ADMIN = "bench-admin-token"
INTERNAL = "bench-internal-admin-token"
NAMESPACE = "incidentfox"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def scenario(
    deps: Dependencies,
    workdir: Path,
    env: dict[str, str],
    port: int,
    standins: list[Any],
    *,
    teams: int,
    threads: int,
    latency: float,
) -> dict[str, Any]:
    label = f"{teams} teams, {threads} worker threads, {latency * 1000:.0f} ms peer latency"
    for standin in standins:
        standin.set_faults(latency=latency)
    prefix = f"t{uuid.uuid4().hex[:6]}"
    sub = workdir / prefix
    sub.mkdir()
    with worker(deps, sub, env, processes=1, threads=threads):
        say(f"{label}: sending ...")
        started = time.monotonic()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        ) as client:
            for i in range(teams):
                answer = client.post(
                    "/api/v1/admin/provision/team",
                    json={
                        "org_id": "bench",
                        "team_node_id": f"{prefix}-{i}",
                        "routing": {
                            "slack_channel_ids": [f"C{prefix}{i}"],
                            "services": [f"{prefix}-svc-{i}"],
                        },
                        "create_pipeline_schedule": True,
                    },
                )
                answer.raise_for_status()
        sent = time.monotonic() - started
        with psycopg.connect(deps.env["DATABASE_URL"]) as conn:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed')),"
                    " count(*) FILTER (WHERE status = 'failed')"
                    " FROM orchestrator_provisioning_runs WHERE team_node_id LIKE %s",
                    (f"{prefix}-%",),
                ).fetchone()
                assert row is not None
                if row[0] >= teams:
                    break
                time.sleep(0.1)
            rows = conn.execute(
                "SELECT extract(epoch FROM finished_at - started_at),"
                " extract(epoch FROM started_at - created_at),"
                " extract(epoch FROM max(finished_at) OVER () - min(created_at) OVER ())"
                " FROM orchestrator_provisioning_runs WHERE team_node_id LIKE %s",
                (f"{prefix}-%",),
            ).fetchall()
            failed = row[1]
    durations = [float(r[0]) for r in rows]
    waits = [float(r[1]) for r in rows]
    span = float(rows[0][2])
    result = {
        "teams": teams,
        "worker_threads": threads,
        "latency_ms": round(latency * 1000),
        "failed": failed,
        "send_seconds": round(sent, 2),
        "runs_per_second": round(teams / span, 1),
        "duration_p50_ms": round(statistics.median(durations) * 1000),
        "duration_p95_ms": round(percentile(durations, 0.95) * 1000),
        "queue_wait_p50_ms": round(statistics.median(waits) * 1000),
    }
    say(
        f"  {result['runs_per_second']:.1f} runs/s, duration p50 {result['duration_p50_ms']} ms"
        f" p95 {result['duration_p95_ms']} ms, queue wait p50 {result['queue_wait_p50_ms']} ms,"
        f" {failed} failed"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--latency-teams", type=int, default=40)
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="orch-provision-bench-"))
    config = ConfigServiceStandIn().start()
    config.add_super_admin(ADMIN)
    config.add_super_admin(INTERNAL, subject="orchestrator-internal")
    pipeline = AiPipelineStandIn().start()
    kube = KubernetesStandIn().start()
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(kube.kubeconfig(NAMESPACE))
    standins: list[Any] = [config, pipeline, kube]
    env = {
        "CONFIG_SERVICE_URL": config.url,
        "AI_PIPELINE_API_URL": pipeline.url,
        "AGENT_API_URL": "http://127.0.0.1:9",
        "ORCHESTRATOR_INTERNAL_ADMIN_TOKEN": INTERNAL,
        "AI_PIPELINE_IMAGE": "ai-pipeline:bench",
        "KUBECONFIG": str(kubeconfig),
        "K8S_NAMESPACE": NAMESPACE,
        "ORCHESTRATOR_SECRET_KEY": Fernet.generate_key().decode(),
    }
    results: list[dict[str, Any]] = []
    try:
        with (
            dependencies(workdir, config_service=False) as deps,
            web(deps, workdir, 2, 8, env) as w,
        ):
            results.append(
                scenario(deps, workdir, env, w.port, standins, teams=args.teams, threads=8,
                         latency=0.0)
            )  # fmt: skip
            for threads in (int(c) for c in args.concurrency.split(",")):
                results.append(
                    scenario(deps, workdir, env, w.port, standins, teams=args.latency_teams,
                             threads=threads, latency=args.latency_ms / 1000)
                )  # fmt: skip
    finally:
        for standin in standins:
            standin.stop()
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"provision_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": Machine.detect().__dict__, "results": results}, indent=2))
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
