"""What the orchestrator adds to an admin agent run: `POST /api/v1/admin/agents/run`
with `Prefer: wait=N` against an agent that answers after a fixed delay.

    .venv/bin/python bench/agent_run_bench.py [--runs 50] [--agent-delay-ms 200]
        [--wait 10] [--warmup 5] [--web-workers 2] [--web-threads 8]
        [--worker-processes 1] [--worker-threads 4]

Starts what it needs, as `webhook_bench.py` does: embedded PostgreSQL and Redis (unless
`DATABASE_URL` / `REDIS_URL` are set), migrations, the Config Service and Agent
stand-ins in a helper process of their own (`_peers.py`; the admin token is a super
admin there), the real `orchestrator web` and `orchestrator worker` subprocesses, each
in its own process group. The Agent stand-in is set to answer every run after
`--agent-delay-ms`.

After `--warmup` runs (they fill the admin-auth, impersonation-token and
effective-config caches, as a busy deployment has them), `--runs` requests are sent one
after another over one keep-alive connection, each with `Prefer: wait=<--wait>`. Each
must answer 200 with a `succeeded` run. Per run:

- *response overhead* = the request's round trip (client clock) - the agent delay:
  what a caller waits beyond the agent itself (store + audit, enqueue, worker pickup,
  Config Service lookups from cache, recording the result, noticing it by polling);
- *run overhead* = `finished_at - created_at` (Postgres clock) - the agent delay:
  the same without the web tier's share (request parsing, auth, the poll's lag);
- *pickup* = `started_at - created_at`: enqueue to a worker taking the run.

Prints p50/p95/max of each and writes them as JSON to
`bench/results/agent_run_<timestamp>.json`. Everything it started is stopped on exit,
on error and on Ctrl-C / SIGTERM. Requests only ever go to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _stack import (
    HOST,
    STOPPING,
    Machine,
    alive,
    backing_servers,
    bench_main,
    dependencies,
    git_revision,
    percentile,
    proc_stats,
    reap_strays,
    say,
    web,
    write_result,
)
from webhook_bench import peers, worker

RUN_PATH = "/api/v1/admin/agents/run"
ORG, TEAM = "acme", "payments"


@dataclass(frozen=True)
class Sample:
    response_s: float
    run_s: float  # finished_at - created_at
    pickup_s: float  # started_at - created_at


@dataclass
class Figures:
    runs: int
    agent_delay_ms: float
    response_overhead_ms: dict[str, float | None]
    run_overhead_ms: dict[str, float | None]
    pickup_ms: dict[str, float | None]


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Client:
    """One keep-alive connection to the web tier."""

    def __init__(self, port: int, token: str, wait: int) -> None:
        self._port = port
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Prefer": f"wait={wait}",
        }
        self._conn: http.client.HTTPConnection | None = None

    def run(self, message: str) -> tuple[float, int, dict[str, Any]]:
        body = json.dumps(
            {"org_id": ORG, "team_node_id": TEAM, "agent_name": "planner", "message": message}
        ).encode()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(HOST, self._port, timeout=120)
        started = time.perf_counter()
        self._conn.request("POST", RUN_PATH, body=body, headers=self._headers)
        response = self._conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.will_close:
            self._conn.close()
            self._conn = None
        return elapsed, response.status, json.loads(data)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def set_agent_delay(agent_url: str, seconds: float) -> None:
    """The stand-in's `slow` behaviour: every run answers `ok` after `seconds`."""
    port = int(agent_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(
            "POST",
            "/_standin/behaviour",
            body=json.dumps({"mode": "slow", "delay": seconds}),
            headers={"Content-Type": "application/json"},
        )
        status = conn.getresponse().status
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"the agent stand-in refused the behaviour: {status}")


def measure(client: Client, runs: int, label: str) -> list[Sample]:
    samples: list[Sample] = []
    for i in range(runs):
        elapsed, status, run = client.run(f"{label} {i}: why is checkout slow?")
        if status != 200 or run.get("status") != "succeeded":
            raise RuntimeError(f"{label} run {i} answered {status}: {run}")
        created = _stamp(run["created_at"])
        samples.append(
            Sample(
                response_s=elapsed,
                run_s=(_stamp(run["finished_at"]) - created).total_seconds(),
                pickup_s=(_stamp(run["started_at"]) - created).total_seconds(),
            )
        )
    return samples


def _summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "max": round(ordered[-1] * 1000.0, 3) if ordered else None,
    }


def figures(samples: list[Sample], delay_s: float) -> Figures:
    return Figures(
        runs=len(samples),
        agent_delay_ms=delay_s * 1000.0,
        response_overhead_ms=_summary([s.response_s - delay_s for s in samples]),
        run_overhead_ms=_summary([s.run_s - delay_s for s in samples]),
        pickup_ms=_summary([s.pickup_s for s in samples]),
    )


def report(doc: dict[str, Any]) -> str:
    f = doc["results"]
    p = doc["params"]
    lines = [
        f"admin agent runs: {f['runs']} sequential, agent delay {f['agent_delay_ms']:.0f} ms,"
        f" Prefer: wait={p['wait']}; web {p['web_workers']}x{p['web_threads']},"
        f" worker {p['worker_processes']}x{p['worker_threads']}",
        f"{'':34}{'p50':>10}{'p95':>10}{'max':>10}",
    ]
    for key, label in (
        ("response_overhead_ms", "response - agent delay"),
        ("run_overhead_ms", "finished - created - agent delay"),
        ("pickup_ms", "started - created (pickup)"),
    ):
        row = f[key]
        lines.append(
            f"{label:34}"
            + "".join(f"{row[q]:>8.1f}ms" if row[q] is not None else f"{'-':>10}" for q in row)
        )
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--runs", type=int, default=50, help="measured runs, one after another (50)")
    add("--agent-delay-ms", type=float, default=200.0, help="the agent's answer delay (200)")
    add("--wait", type=int, default=10, help="Prefer: wait=N seconds (10)")
    add("--warmup", type=int, default=5, help="runs before measuring (5)")
    add("--web-workers", type=int, default=2)
    add("--web-threads", type=int, default=8)
    add("--worker-processes", type=int, default=1)
    add("--worker-threads", type=int, default=4)
    args = parser.parse_args(argv)
    for name in ("runs", "wait", "web_workers", "web_threads", "worker_processes"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.worker_threads <= 0 or args.agent_delay_ms < 0 or args.warmup < 0:
        parser.error("--worker-threads must be positive; delay and warm-up not negative")
    if args.agent_delay_ms / 1000.0 >= args.wait:
        parser.error("--wait must exceed the agent delay, or no run answers 200")
    return args


def run(args: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    machine = Machine.detect()
    delay_s = args.agent_delay_ms / 1000.0
    admin_token = secrets.token_urlsafe(24).replace(".", "_")
    samples: list[Sample] = []
    started_pgids: list[int] = []
    started_pids: list[int] = []
    workdir = Path(tempfile.mkdtemp(prefix="orch-ar-"))  # short: pg socket path limit
    try:
        with contextlib.ExitStack() as stack:
            deps = stack.enter_context(dependencies(workdir, config_service=False))
            started_pids += [p for p in (deps.postgres_pid, deps.redis_pid) if p]
            peer = stack.enter_context(peers(workdir, admin_token, f"{ORG}/checkout"))
            started_pgids.append(peer.pgid)
            shared = {
                "CONFIG_SERVICE_URL": peer.config_url,
                "ORCHESTRATOR_SECRET_KEY": Fernet.generate_key().decode(),
                "ORCHESTRATOR_REDIS_NAMESPACE": "orchestrator",
            }
            tier = stack.enter_context(
                web(deps, workdir, args.web_workers, args.web_threads, extra_env=shared)
            )
            started_pgids.append(tier.pgid)
            worker_env = {
                **shared,
                "AGENT_API_URL": peer.agent_url,
                "ORCHESTRATOR_INTERNAL_ADMIN_TOKEN": admin_token,
                # Needed by `orchestrator worker`, never called by an agent run.
                "AI_PIPELINE_API_URL": peer.config_url,
                "AI_PIPELINE_IMAGE": "incidentfox/ai-pipeline:bench",
            }
            work = stack.enter_context(
                worker(deps, workdir, worker_env, args.worker_processes, args.worker_threads)
            )
            started_pgids.append(work.pgid)
            set_agent_delay(peer.agent_url, delay_s)
            client = Client(tier.port, admin_token, args.wait)
            stack.callback(client.close)
            say(f"warm-up: {args.warmup} runs ...")
            measure(client, args.warmup, "warm-up")
            say(f"measuring {args.runs} runs, one after another ...")
            samples = measure(client, args.runs, "run")
    finally:
        STOPPING.set()
        strays = reap_strays(workdir, started_pgids)
        groups = set(started_pgids)
        left = sorted(
            {s.pid for s in proc_stats() if s.pgid in groups and alive(s.pid)}
            | {pid for pid in started_pids if alive(pid)}
        )
        shutil.rmtree(workdir, ignore_errors=True)
        if strays:
            say(f"had to stop {len(strays)} leftover process(es): {strays}")
        if left:
            say(f"warning: still running after clean-up: {left}")
        else:
            say("clean-up checked: nothing this run started is still running")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "benchmark": "agent_run",
        "timestamp": stamp,
        "git_revision": git_revision(),
        "machine": asdict(machine),
        "params": {
            "runs": args.runs,
            "agent_delay_ms": args.agent_delay_ms,
            "wait": args.wait,
            "warmup": args.warmup,
            "web_workers": args.web_workers,
            "web_threads": args.web_threads,
            "worker_processes": args.worker_processes,
            "worker_threads": args.worker_threads,
            **backing_servers(),
        },
        "results": asdict(figures(samples, delay_s)),
    }
    print(report(document), flush=True)
    write_result("agent_run", stamp, document)
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_main("agent_run_bench", run, _parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
