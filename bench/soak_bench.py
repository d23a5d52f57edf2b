"""Load and soak: the whole stack under mixed traffic for a set time.

    .venv/bin/python bench/soak_bench.py [--seconds 600] [--webhooks-per-second 40]
        [--provisions-per-second 0.5] [--teams 50] [--agent-runs-per-second 1]
        [--sample-seconds 10]

Starts embedded PostgreSQL and Redis (unless `DATABASE_URL` / `REDIS_URL` are set), the
Config Service, Agent, AI Pipeline and Kubernetes API stand-ins in this process, and the
real processes: `orchestrator web` (gunicorn 2 x 8), `orchestrator worker` (2 processes x
8 threads) and `orchestrator scheduler`. Then, open-loop at fixed rates (a request is
sent when it is due, whether or not the previous ones were answered):

- signed webhooks of every source, round robin, each a new delivery (the providers'
  example payloads, with their delivery ids made unique), signed as they leave;
- provisioning runs over a pool of `--teams` team ids (`soak-t000`, …): the k-th run
  targets team k mod N and provisions it (routing, a team token, the default schedule
  and its CronJob) when it is not provisioned, deprovisions it when it is. The tenant
  population stays between 0 and N, so what grows with tenants — schedule rows,
  CronJobs, Config Service nodes, the scheduler's per-row cache — stops growing after
  the first round and memory can plateau (what grows with history still grows: event,
  run and audit rows, and the revoked tokens the Config Service keeps). `--teams 0`: a
  new team every run, as before (tenant data grows for the whole soak);
- admin agent runs (no `Prefer: wait`).

Every `--sample-seconds` it records the queue depth (ready messages in Redis), the
backlog (events and runs not yet final) and the age of the oldest of them (the queue
lag), and the RSS of every process group. At the end: requests/s and p50/p99 latency
per endpoint, errors (any non-2xx or transport error), the offered and delivered rates
and how far behind its plan the generator sent (a growing figure means the rate was not
kept: the generator shares the machine), the lag and memory over time
(first and last samples, the slope over the whole load and over its second half — a
plateau shows as a second-half slope near zero), whether the backlog drained, and the
CPU each part and everything else on the machine used during the load (this box is
shared: `others` says how much).

Writes JSON to `bench/results/soak_<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil
import psycopg
import redis
from cryptography.fernet import Fernet

from bench._stack import (
    RESULTS_DIR,
    CpuSample,
    Machine,
    Tracked,
    base_env,
    dependencies,
    free_port,
    git_revision,
    install_signal_handlers,
    orchestrator_command,
    say,
    start_group,
    stop_group,
    web,
)
from bench.webhook_bench import worker
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.ai_pipeline import AiPipelineStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.webhooks.signing import signed_headers
from tests.webhook_support import PATHS, ROUTING, SAMPLES, SECRETS

ADMIN = "soak-admin-token"
INTERNAL = "soak-internal-admin-token"
NAMESPACE = "soak"
SOURCES = ("slack", "github", "pagerduty", "incidentio", "coralogix", "generic")
SECRET_ENV = {
    "slack": "SLACK_SIGNING_SECRET",
    "github": "GITHUB_WEBHOOK_SECRET",
    "pagerduty": "PAGERDUTY_WEBHOOK_SECRET",
    "incidentio": "INCIDENTIO_WEBHOOK_SECRET",
    "generic": "GENERIC_WEBHOOK_SECRET",
    "coralogix": "CORALOGIX_WEBHOOK_TOKEN",
}


def unique_body(source: str) -> bytes:
    """The provider's example, made a new delivery where the id lives in the body."""
    body = json.loads(SAMPLES[source]())
    if source == "slack":
        body["event_id"] = f"Ev{uuid.uuid4().hex[:12].upper()}"
    elif source == "coralogix":
        body["uuid"] = str(uuid.uuid4())
    return json.dumps(body).encode()


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.behind: list[float] = []
        self.lock = threading.Lock()

    def record(self, endpoint: str, seconds: float, error: str | None, behind: float) -> None:
        with self.lock:
            self.latency[endpoint].append(seconds)
            self.behind.append(behind)
            if error:
                self.errors[endpoint][error] += 1


def send(
    client: httpx.Client,
    rec: Recorder,
    endpoint: str,
    due: float,
    sign: Callable[[], dict[str, str]] | None = None,
    **request: Any,
) -> None:
    """One request, sent by a pool thread. `due` (monotonic) is when the plan wanted it
    sent: how far behind it went out says whether the generator kept its rate. A
    webhook is signed here, as it leaves, the way a provider signs: signed when planned,
    a request that waited in the pool would arrive with a stale timestamp and be
    rightly refused as a replay."""
    behind = time.monotonic() - due
    if sign is not None:
        request["headers"] = sign()
    started = time.perf_counter()
    error = None
    try:
        answer = client.request(**request)
        if answer.status_code >= 300:
            error = str(answer.status_code)
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    rec.record(endpoint, time.perf_counter() - started, error, behind)


class TenantPool:
    """Which team the next provisioning request is for, and whether it provisions or
    deprovisions it: `size` team ids in turn, each provisioned, then deprovisioned the
    next time round; `size` 0 means a new team every time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.turn = 0

    def next(self) -> tuple[str, bool]:
        """(team id, True to provision / False to deprovision)."""
        turn, self.turn = self.turn, self.turn + 1
        if self.size <= 0:
            return f"soak-{uuid.uuid4().hex[:10]}", True
        return f"soak-t{turn % self.size:03d}", (turn // self.size) % 2 == 0


def traffic(port: int, args: argparse.Namespace, rec: Recorder, stop: threading.Event) -> None:
    """Open-loop: each request is submitted at its due time to a pool of senders."""
    plan: list[tuple[float, str]] = []
    for rate, kind in (
        (args.webhooks_per_second, "webhook"),
        (args.provisions_per_second, "provision"),
        (args.agent_runs_per_second, "agent"),
    ):
        if rate > 0:
            plan += [(i / rate, kind) for i in range(int(args.seconds * rate))]
    plan.sort()
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=30,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )
    admin = {"Authorization": f"Bearer {ADMIN}"}
    tenants = TenantPool(args.teams)
    counter = 0
    with ThreadPoolExecutor(48) as pool:
        start = time.monotonic()
        for due, kind in plan:
            if stop.is_set():
                break
            due_at = start + due
            delay = due_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            counter += 1
            if kind == "webhook":
                source = SOURCES[counter % len(SOURCES)]
                body = unique_body(source)
                pool.submit(
                    send, client, rec, f"POST {PATHS[source]}", due_at,
                    partial(signed_headers, source, SECRETS[source], body),
                    method="POST", url=PATHS[source], content=body,
                )  # fmt: skip
            elif kind == "provision":
                team, provision = tenants.next()
                if provision:
                    pool.submit(
                        send, client, rec, "POST /api/v1/admin/provision/team", due_at,
                        method="POST", url="/api/v1/admin/provision/team", headers=admin,
                        json={"org_id": "soak", "team_node_id": team,
                              "routing": {"services": [f"{team}-svc"]},
                              "create_pipeline_schedule": True},
                    )  # fmt: skip
                else:
                    pool.submit(
                        send, client, rec, "DELETE /api/v1/admin/provision/team", due_at,
                        method="DELETE", url="/api/v1/admin/provision/team", headers=admin,
                        json={"org_id": "soak", "team_node_id": team},
                    )  # fmt: skip
            else:
                pool.submit(
                    send, client, rec, "POST /api/v1/admin/agents/run", due_at,
                    method="POST", url="/api/v1/admin/agents/run", headers=admin,
                    json={"org_id": "acme", "team_node_id": "payments",
                          "agent_name": "planner", "message": "soak: is checkout healthy?"},
                )  # fmt: skip
    client.close()


def rss_mib(pgid: int) -> float:
    total = 0
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError, OSError):
            if __import__("os").getpgid(proc.pid) == pgid:
                total += proc.memory_info().rss
    return round(total / 2**20, 1)


def sample(dsn: str, redis_url: str, ns: str, groups: dict[str, int]) -> dict[str, Any]:
    r = redis.Redis.from_url(redis_url)
    depth = {q: int(r.llen(f"{ns}:{q}")) for q in ("webhooks", "agents", "provisioning")}
    r.close()
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT"
            " (SELECT count(*) FROM orchestrator_webhook_events"
            "   WHERE status IN ('received', 'queued')),"
            " (SELECT extract(epoch FROM now() - min(received_at))"
            "   FROM orchestrator_webhook_events WHERE status IN ('received', 'queued')),"
            " (SELECT count(*) FROM orchestrator_provisioning_runs"
            "   WHERE status IN ('queued', 'running')),"
            " (SELECT count(*) FROM orchestrator_agent_runs WHERE status IN ('queued', 'running'))"
        ).fetchone()
    assert row is not None
    return {
        "at": time.time(),
        "queue_depth": depth,
        "events_backlog": row[0],
        "oldest_pending_event_seconds": round(float(row[1] or 0), 1),
        "runs_backlog": row[2],
        "agent_runs_backlog": row[3],
        "rss_mib": {name: rss_mib(pgid) for name, pgid in groups.items()},
    }


def slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--webhooks-per-second", type=float, default=40)
    parser.add_argument(
        "--provisions-per-second",
        type=float,
        default=0.5,
        help="provisioning runs per second, provisions and deprovisions together",
    )
    parser.add_argument(
        "--teams",
        type=int,
        default=50,
        help="tenant pool: provisioning alternates provision / deprovision over this many"
        " team ids, so tenant data stops growing (0: a new team every run)",
    )
    parser.add_argument("--agent-runs-per-second", type=float, default=1.0)
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--drain-timeout", type=float, default=300)
    args = parser.parse_args()
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="orch-soak-"))
    config = ConfigServiceStandIn().start()
    config.add_super_admin(ADMIN)
    config.add_super_admin(INTERNAL, subject="orchestrator-internal")
    config.seed_team("acme", "payments", routing=ROUTING)
    agent, pipeline, kube = (
        AgentStandIn().start(),
        AiPipelineStandIn().start(),
        KubernetesStandIn().start(),
    )
    standins: list[Any] = [config, agent, pipeline, kube]
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(kube.kubeconfig(NAMESPACE))
    env = {
        "CONFIG_SERVICE_URL": config.url,
        "AGENT_API_URL": agent.url,
        "AI_PIPELINE_API_URL": pipeline.url,
        "ORCHESTRATOR_INTERNAL_ADMIN_TOKEN": INTERNAL,
        "AI_PIPELINE_IMAGE": "ai-pipeline:soak",
        "KUBECONFIG": str(kubeconfig),
        "K8S_NAMESPACE": NAMESPACE,
        "ORCHESTRATOR_SECRET_KEY": Fernet.generate_key().decode(),
        "ORCHESTRATOR_REDIS_NAMESPACE": NAMESPACE,
        "ORCHESTRATOR_TEAM_DISPATCH_LIMIT": "1000000/minute",
        "ORCHESTRATOR_INGRESS_RATE_LIMIT": "100000/second",
        **{SECRET_ENV[s]: SECRETS[s] for s in SOURCES},
    }
    result: dict[str, Any] = {
        "args": vars(args),
        "machine": Machine.detect().__dict__,
        "revision": git_revision(),
    }
    try:
        with (
            dependencies(workdir, config_service=False) as deps,
            web(deps, workdir, 2, 8, env) as w,
            worker(deps, workdir, env, processes=2, threads=8) as wk,
        ):
            sched_env = base_env(
                deps, {**env, "ORCHESTRATOR_SCHEDULER_METRICS_PORT": str(free_port())}
            )
            scheduler = start_group(
                [*orchestrator_command(), "scheduler"], sched_env, workdir / "scheduler.log"
            )
            groups = {"web": w.pgid, "worker": wk.pgid, "scheduler": scheduler.pid}
            tracked = {
                **deps.tracked(),
                **{name: Tracked(pgids={pgid}) for name, pgid in groups.items()},
                "bench": Tracked(pids={os.getpid()}),  # load generator and stand-ins
            }
            dsn, redis_url = deps.env["DATABASE_URL"], deps.env["REDIS_URL"]
            try:
                rec, stop = Recorder(), threading.Event()
                samples = [sample(dsn, redis_url, NAMESPACE, groups)]
                say(
                    f"soak: {args.seconds:.0f} s at {args.webhooks_per_second} webhooks/s,"
                    f" {args.provisions_per_second} provisions/s,"
                    f" {args.agent_runs_per_second} agent runs/s ..."
                )
                load = threading.Thread(target=traffic, args=(w.port, args, rec, stop))
                began = time.monotonic()
                cpu_before = CpuSample.take(tracked)
                load_average = [os.getloadavg()]
                load.start()
                try:
                    while load.is_alive():
                        load.join(timeout=args.sample_seconds)
                        samples.append(sample(dsn, redis_url, NAMESPACE, groups))
                        last = samples[-1]
                        say(
                            f"  t={time.monotonic() - began:5.0f}s backlog events"
                            f" {last['events_backlog']} (oldest"
                            f" {last['oldest_pending_event_seconds']} s), runs"
                            f" {last['runs_backlog']}, agent runs {last['agent_runs_backlog']},"
                            f" RSS {last['rss_mib']}"
                        )
                finally:
                    stop.set()  # Ctrl-C: the generator stops sending too
                elapsed = time.monotonic() - began
                cpu = cpu_before.percent_until(CpuSample.take(tracked))
                load_average.append(os.getloadavg())
                drain_start = time.monotonic()
                while time.monotonic() - drain_start < args.drain_timeout:
                    last = sample(dsn, redis_url, NAMESPACE, groups)
                    if not (
                        last["events_backlog"] or last["runs_backlog"] or last["agent_runs_backlog"]
                    ):
                        break
                    time.sleep(1)
                drained = round(time.monotonic() - drain_start, 1)
                samples.append(last)
            finally:
                stop_group(scheduler)
        endpoints = {}
        for endpoint, values in sorted(rec.latency.items()):
            ordered = sorted(values)
            endpoints[endpoint] = {
                "requests": len(values),
                "per_second": round(len(values) / elapsed, 2),
                "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
                "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
                "errors": dict(rec.errors.get(endpoint, {})),
            }
        t0 = samples[0]["at"]
        during = samples[:-1]
        second_half = [s for s in samples[1:] if s["at"] - t0 >= elapsed / 2]
        if "machine" in cpu:
            cpu["others"] = round(
                max(0.0, cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine")), 1
            )
        behind = sorted(rec.behind) or [0.0]
        offered = args.webhooks_per_second + args.provisions_per_second + args.agent_runs_per_second
        result.update(
            {
                "seconds": round(elapsed, 1),
                "offered_per_second": round(offered, 2),
                "delivered_per_second": round(len(rec.behind) / elapsed, 2),
                # How late requests left against the plan: growing means the generator
                # (or the stack answering it) could not keep the offered rate.
                "generator_behind_seconds": {
                    "p50": round(behind[len(behind) // 2], 2),
                    "max": round(behind[-1], 2),
                },
                "endpoints": endpoints,
                "drain_seconds": drained,
                "lag_slope_seconds_per_minute": round(
                    60 * slope([(s["at"] - t0, s["oldest_pending_event_seconds"]) for s in during]),
                    3,
                ),
                "rss_start_mib": samples[0]["rss_mib"],
                "rss_end_mib": samples[-1]["rss_mib"],
                "rss_slope_mib_per_minute": {
                    g: round(60 * slope([(s["at"] - t0, s["rss_mib"][g]) for s in samples[1:]]), 2)
                    for g in groups
                },
                "rss_slope_second_half_mib_per_minute": {
                    g: round(60 * slope([(s["at"] - t0, s["rss_mib"][g]) for s in second_half]), 2)
                    for g in groups
                },
                "cpu_percent_of_machine": cpu,
                "load_average_start_end": [[round(x, 2) for x in la] for la in load_average],
                "samples": samples,
            }
        )
    finally:
        for standin in standins:
            standin.stop()
    say(json.dumps({k: v for k, v in result.items() if k not in ("samples", "machine")}, indent=2))
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"soak_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
