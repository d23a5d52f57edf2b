"""Signed GitHub webhooks through the whole stack: acknowledgements/s, dispatch rate,
backlog, and acknowledgement → agent-call latency.

    .venv/bin/python bench/webhook_bench.py [--seconds 10] [--connections 32]
        [--web-workers 2] [--web-threads 8] [--worker-processes 2] [--worker-threads 8]
        [--latency-rate 5] [--latency-seconds 10] [--drain-timeout 120] [--pause-worker]

Starts what it needs: embedded PostgreSQL and Redis (unless `DATABASE_URL` /
`REDIS_URL` are set), the peers in a helper process of their own (`_peers.py`: the
Config Service stand-in with the internal admin token as a super admin and one team
whose routing owns the payload's repository, and the Agent stand-in), migrations, the
real `orchestrator web` (gunicorn gthread) and `orchestrator worker` (Dramatiq) as
subprocesses, each in its own process group, with the environment a deployment has.
The payload is a real GitHub `issue_comment` delivery (`fixtures/issue_comment.12k.json`,
12 KB, mentioning `@incidentfox`); every request is a new delivery (a unique
`X-GitHub-Delivery`, signed as GitHub signs).

1. latency at low load: `--latency-rate` deliveries/s for `--latency-seconds`, one at a
   time; for each, the time the Agent stand-in received the call minus the time the
   client had read the 200 (ack → agent call), and minus the time the request was
   sent (end to end).
2. ceiling: `GET /health` for `--seconds` at `--connections`, the denominator.
3. throughput: signed deliveries for `--seconds` at `--connections`; acks/s (200s that
   are not duplicates), p50, p99, errors, the ratio to /health. Meanwhile the queue
   depth (`LLEN <ns>:webhooks`) and the events per status are sampled; after the load
   it waits for the backlog to drain (`--drain-timeout`) and reports the dispatch rate
   (events reaching a final status per second, during the load and overall), whether
   the backlog grew, the drain time, CPU per process group and per event, and what one
   event costs: Config Service and agent calls, Postgres transactions, rows and WAL,
   Redis commands.

Prints a summary and writes it as JSON to `bench/results/webhook_<timestamp>.json`.
Everything it started is stopped on exit, on error and on Ctrl-C / SIGTERM, and it
checks that none of it is left. Requests only ever go to 127.0.0.1.

The two rate limits are raised for the run (`--ingress-limit`, `--dispatch-limit`): at
their defaults (200/second per source, 30/minute per team) they, not the code, would
be what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _stack import (
    HOST,
    QUIET_WARN_PERCENT,
    REPO,
    STOPPING,
    CpuSample,
    Dependencies,
    LoadRun,
    Machine,
    RequestSpec,
    Tracked,
    alive,
    background_busy,
    backing_servers,
    base_env,
    bench_main,
    dependencies,
    free_port,
    git_revision,
    orchestrator_command,
    percentile,
    proc_stats,
    python_load,
    reap_strays,
    say,
    start_group,
    stop_group,
    tail,
    web,
    write_result,
)

BENCH = Path(__file__).resolve().parent
DEFAULT_PAYLOAD = BENCH / "fixtures" / "issue_comment.12k.json"
WEBHOOK_PATH = "/webhooks/github"
ORG, TEAM = "acme", "payments"
QUEUE = "webhooks"
FINAL = ("ignored", "unroutable", "dispatched", "failed")
WORKER_READY_TIMEOUT_SECONDS = 90.0
PEERS_READY_TIMEOUT_SECONDS = 60.0
WARMUP_EVENTS = 20
SETTLE_TIMEOUT_SECONDS = 60.0  # warm-up and latency probes reaching the agent
PG_STATS_FLUSH_SECONDS = 1.5  # backends report their statistics at most once a second


# -- the peers and the worker -----------------------------------------------------------
@dataclass(frozen=True)
class Peers:
    config_url: str
    agent_url: str
    pgid: int


def _read_line(proc: subprocess.Popen[bytes], timeout: float, log_path: Path) -> bytes:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the peers did not start within {timeout:.0f}s")
            if selector.select(timeout=min(left, 0.5)):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(
                        f"the peers exited ({proc.poll()}) during start-up:\n{tail(log_path)}"
                    )
                buffer += chunk
    finally:
        selector.close()
    return buffer.split(b"\n", 1)[0]


@contextlib.contextmanager
def peers(workdir: Path, admin_token: str, repo: str) -> Iterator[Peers]:
    """Config Service and Agent stand-ins in `_peers.py`, its own process group."""
    log_path = workdir / "peers.log"
    cmd = [
        sys.executable,
        str(BENCH / "_peers.py"),
        "--admin-token",
        admin_token,
        "--org",
        ORG,
        "--team",
        TEAM,
        "--github-repo",
        repo,
        "--max-seconds",
        "7200",
    ]
    say("starting the Config Service and Agent stand-ins (helper process) ...")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        info = json.loads(_read_line(proc, PEERS_READY_TIMEOUT_SECONDS, log_path))
        yield Peers(info["config_url"], info["agent_url"], proc.pid)
    finally:
        STOPPING.set()
        stop_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass(frozen=True)
class Worker:
    pgid: int
    poll_timeout_ms: str  # dramatiq_worker_timeout: how long an idle consumer may sleep


@contextlib.contextmanager
def worker(
    deps: Dependencies, workdir: Path, env_extra: dict[str, str], processes: int, threads: int
) -> Iterator[Worker]:
    """`orchestrator worker` in its own process group, once each process is ready."""
    tmp = workdir / "tmp"  # the worker's metrics directory goes under TMPDIR
    tmp.mkdir(exist_ok=True)
    env = base_env(
        deps,
        {
            **env_extra,
            "ORCHESTRATOR_WORKER_METRICS_PORT": str(free_port()),
            "TMPDIR": str(tmp),
        },
    )
    log_path = workdir / "worker.log"
    cmd = [
        *orchestrator_command(),
        "worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    say(f"starting {' '.join(cmd[1:])} ...")
    proc = start_group(cmd, env, log_path)
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"orchestrator worker exited ({proc.returncode}) during start-up:\n"
                    f"{tail(log_path)}"
                )
            with contextlib.suppress(OSError):
                text = log_path.read_text(errors="replace")
                if text.count("Worker process is ready for action") >= processes:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the worker was not ready within {WORKER_READY_TIMEOUT_SECONDS:.0f}s:\n"
                    f"{tail(log_path)}"
                )
            time.sleep(0.2)
        # cli/main.py sets 100 ms unless the environment says otherwise (NOTES: ~1 s).
        yield Worker(proc.pid, env.get("dramatiq_worker_timeout", "100 (cli default)"))
        if proc.poll() is not None:
            raise RuntimeError(
                f"the worker exited during the run ({proc.returncode});\n{tail(log_path)}"
            )
    finally:
        STOPPING.set()
        stop_group(proc)


# -- observing Postgres, Redis and the peers -------------------------------------------
class Observer:
    """The benchmark's own view of the stack: events per status, the queue, the agent
    calls received, and the counters that say what one event costs."""

    def __init__(self, database_url: str, redis_url: str, namespace: str, agent_url: str):
        import psycopg
        import redis

        self._db = psycopg.connect(database_url, autocommit=True, connect_timeout=5)
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5)
        self._queue = f"{namespace}:{QUEUE}"
        # Only ever 127.0.0.1: the port of the helper's agent stand-in.
        self._agent_port = int(agent_url.rsplit(":", 1)[1])
        self.queries = 0  # this connection's own statements, kept out of the figures

    def close(self) -> None:
        self._db.close()
        self._redis.close()

    def statuses(self) -> dict[str, int]:
        self.queries += 1
        rows = self._db.execute(
            "SELECT status, count(*) FROM orchestrator_webhook_events GROUP BY status"
        ).fetchall()
        return {str(status): int(n) for status, n in rows}

    def queue_depth(self) -> tuple[int, int]:
        """(ready messages, delayed messages) of the webhooks queue."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.llen(self._queue)
        pipe.llen(self._queue + ".DQ")  # delayed (throttled) messages
        ready, delayed = pipe.execute()
        return int(ready), int(delayed)

    def run_ids(self, event_ids: list[str]) -> dict[str, str]:
        self.queries += 1
        rows = self._db.execute(
            "SELECT id::text, agent_run_id::text FROM orchestrator_webhook_events"
            " WHERE id = ANY(%s::uuid[]) AND agent_run_id IS NOT NULL",
            (event_ids,),
        ).fetchall()
        return {str(e): str(r) for e, r in rows}

    def agent_runs(self) -> dict[str, int]:
        self.queries += 1
        rows = self._db.execute(
            "SELECT status, count(*) FROM orchestrator_agent_runs GROUP BY status"
        ).fetchall()
        return {str(status): int(n) for status, n in rows}

    def pg_counters(self) -> dict[str, int]:
        """Cluster-wide transaction, row and WAL counters (all of this run's database)."""
        self.queries += 1
        row = self._db.execute(
            "SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated,"
            " d.tup_fetched, d.tup_returned, w.wal_bytes::bigint, w.wal_records"
            " FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()"
        ).fetchone()
        assert row is not None
        keys = (
            "xact_commit",
            "xact_rollback",
            "tup_inserted",
            "tup_updated",
            "tup_fetched",
            "tup_returned",
            "wal_bytes",
            "wal_records",
        )
        return {k: int(v) for k, v in zip(keys, row, strict=True)}

    def redis_commands(self) -> dict[str, int]:
        stats = self._redis.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if isinstance(value, dict)
        }

    def received(self, since: int = 0) -> list[list[Any]]:
        """[correlation id, received at (time.time()), status] of the agent calls."""
        url = f"http://{HOST}:{self._agent_port}/_bench/received?since={since}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return list(json.loads(resp.read())["runs"])

    def peer_calls(self) -> dict[str, dict[str, int]]:
        url = f"http://{HOST}:{self._agent_port}/_bench/stats"
        with urllib.request.urlopen(url, timeout=30) as resp:
            return dict(json.loads(resp.read()))


def _final_count(statuses: dict[str, int]) -> int:
    return sum(n for s, n in statuses.items() if s in FINAL)


def wait_settled(observer: Observer, timeout: float, what: str) -> None:
    """Until every stored event is final and every agent call has been answered."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = observer.statuses()
        calls = observer.received()
        settled = _final_count(statuses) >= sum(statuses.values())
        if settled and all(c[2] is not None for c in calls):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{what}: events still not final after {timeout:.0f}s: {statuses} "
                "(see the worker log; is the team's routing seeded?)"
            )
        time.sleep(0.1)


# -- one delivery at a time -------------------------------------------------------------
class Sender:
    """One keep-alive connection sending signed deliveries, one at a time."""

    def __init__(self, port: int, secret: str, body: bytes) -> None:
        from orchestrator.webhooks.signing import signed_headers

        self._sign = signed_headers
        self._conn = http.client.HTTPConnection(HOST, port, timeout=10)
        self._secret = secret
        self._body = body

    def send(self) -> tuple[float, float, int, dict[str, Any]]:
        """(sent at, acknowledged at) as time.time(), status, the JSON answer."""
        headers = self._sign("github", self._secret, self._body, delivery_id=str(uuid.uuid4()))
        sent = time.time()
        self._conn.request("POST", WEBHOOK_PATH, body=self._body, headers=headers)
        resp = self._conn.getresponse()
        data = resp.read()
        acked = time.time()
        try:
            document = json.loads(data) if data else {}
        except ValueError:
            document = {}
        return sent, acked, resp.status, document if isinstance(document, dict) else {}

    def close(self) -> None:
        self._conn.close()


@dataclass
class LatencyResult:
    rate_per_second: float
    seconds: float
    sent: int
    acknowledged: int
    matched: int
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    ack_to_agent_p50_ms: float | None
    ack_to_agent_p99_ms: float | None
    ack_to_agent_max_ms: float | None
    end_to_end_p50_ms: float | None
    end_to_end_p99_ms: float | None
    errors: list[str] = field(default_factory=list)
    definition: str = (
        "ack -> agent = time.time() when the Agent stand-in received the call minus "
        "time.time() when the client had read the 200; end to end = the same minus "
        "time.time() just before the request was sent"
    )


def latency_probe(
    port: int, secret: str, body: bytes, observer: Observer, rate: float, seconds: float
) -> LatencyResult:
    count = max(1, round(rate * seconds))
    interval = 1.0 / rate
    already = len(observer.received())
    sender = Sender(port, secret, body)
    probes: list[tuple[str, float, float]] = []  # event id, sent, acked
    errors: list[str] = []
    start = time.monotonic()
    try:
        for i in range(count):
            pause = start + i * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                sent, acked, status, document = sender.send()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
                sender.close()
                sender = Sender(port, secret, body)
                continue
            if status == 200 and document.get("event_id") and not document.get("duplicate"):
                probes.append((str(document["event_id"]), sent, acked))
            else:
                errors.append(f"HTTP {status}")
    finally:
        sender.close()
    # Each probe's agent run id (set before the agent is called), then its agent call.
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    arrivals: dict[str, float] = {}
    run_of: dict[str, str] = {}
    while time.monotonic() < deadline:
        run_of = observer.run_ids([p[0] for p in probes])
        arrivals = {str(c[0]): float(c[1]) for c in observer.received(already)}
        if len(run_of) == len(probes) and all(r in arrivals for r in run_of.values()):
            break
        time.sleep(0.1)
    ack_ms: list[float] = []
    to_agent: list[float] = []
    end_to_end: list[float] = []
    for event_id, sent, acked in probes:
        ack_ms.append(acked - sent)
        run_id = run_of.get(event_id)
        if run_id is None or run_id not in arrivals:
            continue
        to_agent.append(arrivals[run_id] - acked)
        end_to_end.append(arrivals[run_id] - sent)
    ack_ms.sort()
    to_agent.sort()
    end_to_end.sort()
    if len(to_agent) < len(probes):
        errors.append(f"{len(probes) - len(to_agent)} probe(s) never reached the agent")
    return LatencyResult(
        rate_per_second=rate,
        seconds=seconds,
        sent=count,
        acknowledged=len(probes),
        matched=len(to_agent),
        ack_p50_ms=percentile(ack_ms, 50),
        ack_p99_ms=percentile(ack_ms, 99),
        ack_to_agent_p50_ms=percentile(to_agent, 50),
        ack_to_agent_p99_ms=percentile(to_agent, 99),
        ack_to_agent_max_ms=percentile(to_agent, 100),
        end_to_end_p50_ms=percentile(end_to_end, 50),
        end_to_end_p99_ms=percentile(end_to_end, 99),
        errors=sorted(set(errors))[:5],
    )


# -- throughput ------------------------------------------------------------------------
def _py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy on each group leader and its subprocesses for `seconds`, sampling without
    stopping the processes (`--nonblocking`) only the thread holding the GIL (`--gil`:
    where the Python CPU goes, not where threads wait), collapsed stacks into
    `directory`."""

    def __init__(self, directory: Path | None, groups: dict[str, int], seconds: float):
        self._directory = directory
        self._groups = groups
        self._seconds = seconds
        self._procs: list[subprocess.Popen[bytes]] = []
        self.outputs: list[Path] = []
        self._spy = _py_spy() if directory is not None else None
        if directory is not None and self._spy is None:
            say("--profile: py-spy is not installed (pip install py-spy); not profiling")

    def start(self) -> None:
        if self._directory is None or self._spy is None:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        for name, pgid in self._groups.items():
            out = self._directory / f"{name}.folded"
            cmd = [
                self._spy,
                "record",
                "--pid",
                str(pgid),
                "--subprocesses",
                "--nonblocking",
                "--gil",
                "--rate",
                "100",
                "--duration",
                str(max(1, math.floor(self._seconds))),
                "--format",
                "raw",
                "--output",
                str(out),
            ]
            self._procs.append(
                subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO
                )
            )
            self.outputs.append(out)

    def finish(self) -> list[str]:
        for proc in self._procs:
            try:
                proc.wait(timeout=self._seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._procs = []
        return [str(p) for p in self.outputs if p.exists()]


@dataclass
class Sample:
    t: float  # seconds since the load started
    queue: int  # ready messages in <ns>:webhooks
    accepted: int  # events stored since the phase began
    final: int  # ... of which in a final status
    statuses: dict[str, int]

    @property
    def backlog(self) -> int:
        return self.accepted - self.final


class Sampler:
    """Samples queue depth and event statuses every `interval` seconds in a thread of
    its own (own connections), from `start()` until `stop()` or `limit` seconds."""

    def __init__(
        self,
        make_observer: Any,
        baseline: dict[str, int],
        interval: float,
        limit: float,
    ) -> None:
        self._make = make_observer
        self._baseline = baseline
        self._interval = interval
        self._limit = limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()
        self.observer: Observer | None = None
        self.failure: str | None = None

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._thread.start()

    def take(self, observer: Observer) -> Sample:
        statuses = observer.statuses()
        depth, _ = observer.queue_depth()
        base_total = sum(self._baseline.values())
        delta = {s: n - self._baseline.get(s, 0) for s, n in statuses.items()}
        return Sample(
            t=round(time.monotonic() - self.t0, 3),
            queue=depth,
            accepted=sum(statuses.values()) - base_total,
            final=_final_count(statuses) - _final_count(self._baseline),
            statuses={s: n for s, n in delta.items() if n},
        )

    def _run(self) -> None:
        try:
            self.observer = self._make()
            while not self._stop.is_set() and time.monotonic() - self.t0 < self._limit:
                self.samples.append(self.take(self.observer))
                self._stop.wait(self._interval)
        except Exception as exc:  # reported, not raised: the load must go on
            self.failure = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self.observer is not None:
            self.observer.close()


@dataclass
class ThroughputResult:
    seconds: float
    connections: int
    requests: int
    acks: int
    errors: int
    acks_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    ratio_to_health: float | None
    client: str
    worker_paused_during_load: bool
    dispatched_during_load: int
    dispatch_per_second_during_load: float
    dispatch_per_second_overall: float | None
    drained: bool
    drain_seconds: float | None
    backlog_at_load_end: int
    backlog_max: int
    backlog_slope_per_second: float | None
    backlog_grew: bool
    queue_depth_max: int
    queue_depth_at_load_end: int
    final_statuses: dict[str, int]
    agent_runs: dict[str, int]
    cpu_percent_during_load: dict[str, float]
    cpu_percent_during_drain: dict[str, float]
    cpu_kernel_share_percent: dict[str, float]
    cpu_ms_per_event: dict[str, float]
    per_event: dict[str, Any]
    samples: list[dict[str, Any]]
    error_samples: list[str] = field(default_factory=list)
    sampler_failure: str | None = None
    profiles: list[str] = field(default_factory=list)


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over t (per second)."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    var = sum((p[0] - mean_t) ** 2 for p in points)
    if var <= 0:
        return None
    return sum((p[0] - mean_t) * (p[1] - mean_y) for p in points) / var


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def throughput(
    args: argparse.Namespace,
    port: int,
    spec: RequestSpec,
    tracked: dict[str, Tracked],
    observer: Observer,
    make_observer: Any,
    web_pgid: int,
    worker_pgid: int,
    health_rps: float | None,
) -> ThroughputResult:
    baseline = observer.statuses()
    runs_before = observer.agent_runs()
    pg_before = observer.pg_counters()
    redis_before = observer.redis_commands()
    peers_before = observer.peer_calls()
    queries_before = observer.queries
    sampler = Sampler(
        make_observer,
        baseline,
        args.sample_interval,
        args.seconds + args.drain_timeout + 60,
    )
    paused = bool(args.pause_worker)
    if paused:
        os.killpg(worker_pgid, signal.SIGSTOP)
    profiler = Profiler(args.profile, {"web": web_pgid, "worker": worker_pgid}, args.seconds)

    def on_go() -> None:
        sampler.start()
        profiler.start()

    try:
        run: LoadRun = python_load(port, spec, args.seconds, args.connections, tracked, on_go=on_go)
        load_end = time.monotonic()
        at_end = sampler.take(observer)
        if paused:
            os.killpg(worker_pgid, signal.SIGCONT)
            paused = False
        # Drain: every stored event final (the load has stopped, so the total is fixed).
        drained_at: float | None = None
        deadline = load_end + args.drain_timeout
        last = at_end
        while True:
            last = sampler.take(observer)
            if last.accepted > 0 and last.final >= last.accepted:
                drained_at = time.monotonic()
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        drain_end = CpuSample.take(tracked)
    finally:
        if paused:
            os.killpg(worker_pgid, signal.SIGCONT)
        sampler.stop()
        profiles = profiler.finish()
    time.sleep(PG_STATS_FLUSH_SECONDS)
    pg_after = observer.pg_counters()
    redis_after = observer.redis_commands()
    peers_after = observer.peer_calls()
    runs_after = observer.agent_runs()

    load_seconds = run.seconds
    acks = run.ok
    accepted = last.accepted
    samples = sampler.samples
    in_load = [(s.t, float(s.backlog)) for s in samples if s.t <= load_seconds]
    slope = _slope(in_load)
    acks_per_second = run.per_second
    grew = slope is not None and slope > max(5.0, 0.02 * acks_per_second)
    overall_seconds = (drained_at - run.before.at) if drained_at is not None else None
    events = max(1, accepted)
    dispatched = max(1, last.final)

    cpu_load = run.before.seconds_until(run.after)
    cpu_all = run.before.seconds_until(drain_end)
    cpu_ms = {
        "web (per acknowledgement)": round(1000.0 * cpu_load.get("web", 0.0) / max(1, acks), 3),
        "worker (per final event)": round(1000.0 * cpu_all.get("worker", 0.0) / dispatched, 3),
        "peers (per final event)": round(1000.0 * cpu_all.get("peers", 0.0) / dispatched, 3),
    }
    for part in ("postgres", "redis"):
        if part in cpu_all:
            cpu_ms[f"{part} (per event, load + drain)"] = round(1000.0 * cpu_all[part] / events, 3)
    cpu_ms["client (per request)"] = round(
        1000.0 * run.client_cpu_seconds / max(1, acks + len(run.errors)), 3
    )
    if "machine" in cpu_all:
        cpu_ms["whole machine (per event, load + drain)"] = round(
            1000.0 * cpu_all["machine"] / events, 3
        )

    pg = _delta(pg_after, pg_before)
    own = observer.queries - queries_before + len(samples)  # the benchmark's statements
    pg_xacts = pg.get("xact_commit", 0) - own
    redis_calls = _delta(redis_after, redis_before)
    for mine in ("llen", "info"):  # the sampler's own commands
        redis_calls.pop(mine, None)
    config_calls = _delta(peers_after["config_service"], peers_before["config_service"])
    agent_calls = _delta(peers_after["agent"], peers_before["agent"])
    per_event: dict[str, Any] = {
        "events": accepted,
        "config_service_calls": round(sum(config_calls.values()) / events, 2),
        "config_service_calls_by_path": {k: round(v / events, 2) for k, v in config_calls.items()},
        "agent_calls": round(sum(agent_calls.values()) / events, 2),
        "postgres_transactions": round(pg_xacts / events, 2),
        "postgres_rows_inserted": round(pg.get("tup_inserted", 0) / events, 2),
        "postgres_rows_updated": round(pg.get("tup_updated", 0) / events, 2),
        "postgres_wal_bytes": round(pg.get("wal_bytes", 0) / events),
        "redis_commands": round(sum(redis_calls.values()) / events, 2),
        "redis_commands_by_name": {
            k: round(v / events, 2)
            for k, v in sorted(redis_calls.items(), key=lambda kv: -kv[1])
            if v / events >= 0.01
        },
    }
    return ThroughputResult(
        seconds=load_seconds,
        connections=args.connections,
        requests=acks + len(run.errors),
        acks=acks,
        errors=len(run.errors),
        acks_per_second=acks_per_second,
        p50_ms=percentile(run.latencies, 50),
        p99_ms=percentile(run.latencies, 99),
        ratio_to_health=round(acks_per_second / health_rps, 3) if health_rps else None,
        client=f"python ({run.processes} processes x http.client keep-alive)",
        worker_paused_during_load=bool(args.pause_worker),
        dispatched_during_load=at_end.final,
        dispatch_per_second_during_load=round(at_end.final / load_seconds, 1),
        dispatch_per_second_overall=(
            round(last.final / overall_seconds, 1) if overall_seconds else None
        ),
        drained=drained_at is not None,
        drain_seconds=round(drained_at - load_end, 2) if drained_at is not None else None,
        backlog_at_load_end=at_end.backlog,
        backlog_max=max([s.backlog for s in samples] + [at_end.backlog]),
        backlog_slope_per_second=round(slope, 1) if slope is not None else None,
        backlog_grew=grew,
        queue_depth_max=max([s.queue for s in samples] + [at_end.queue]),
        queue_depth_at_load_end=at_end.queue,
        final_statuses=last.statuses,
        agent_runs=_delta(runs_after, runs_before),
        cpu_percent_during_load=run.before.percent_until(run.after)
        | {"client": run.client_cpu_percent},
        cpu_percent_during_drain=run.after.percent_until(drain_end),
        cpu_kernel_share_percent=run.before.kernel_share_until(drain_end),
        cpu_ms_per_event=cpu_ms,
        per_event=per_event,
        samples=[asdict(s) | {"backlog": s.backlog} for s in samples],
        error_samples=sorted(set(run.errors))[:5],
        sampler_failure=sampler.failure,
        profiles=profiles,
    )


@dataclass
class HealthResult:
    seconds: float
    requests_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    cpu_percent: dict[str, float]


def health(
    port: int, seconds: float, connections: int, warmup: float, tracked: dict[str, Tracked]
) -> HealthResult:
    spec = RequestSpec("GET", "/health")
    if warmup > 0:
        say(f"warming up /health for {warmup:g}s ...")
        python_load(port, spec, warmup, connections, tracked)
    say(f"measuring /health for {seconds:g}s at {connections} connections ...")
    run = python_load(port, spec, seconds, connections, tracked)
    return HealthResult(
        seconds=run.seconds,
        requests_per_second=run.per_second,
        p50_ms=percentile(run.latencies, 50),
        p99_ms=percentile(run.latencies, 99),
        errors=len(run.errors),
        cpu_percent=run.before.percent_until(run.after) | {"client": run.client_cpu_percent},
    )


# -- report ----------------------------------------------------------------------------
TARGETS = {
    "acks_per_second_min": 1500.0,
    "acks_per_second_aim": 3000.0,
    "p99_ms_max": 50.0,
    "ack_to_agent_p50_ms_max": 150.0,
}


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _verdicts(t: ThroughputResult | None, lat: LatencyResult | None) -> dict[str, bool | None]:
    return {
        "acks_per_second >= 1500": None if t is None else t.acks_per_second >= 1500,
        "acks_per_second >= 3000 (aim)": None if t is None else t.acks_per_second >= 3000,
        "p99 <= 50 ms": None if t is None or t.p99_ms is None else t.p99_ms <= 50,
        "dispatch keeps up (no backlog growth)": None if t is None else not t.backlog_grew,
        "ack -> agent p50 <= 150 ms": (
            None
            if lat is None or lat.ack_to_agent_p50_ms is None
            else lat.ack_to_agent_p50_ms <= 150
        ),
    }


def report(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    p = doc["params"]
    h: dict[str, Any] | None = doc["results"].get("health")
    t: dict[str, Any] | None = doc["results"].get("webhooks")
    lat: dict[str, Any] | None = doc["results"].get("latency")
    lines = [
        f"machine: {m['nproc']} cores ({m['cpu_model']}), {m['implementation']} {m['python']}",
        f"stack: web --workers {p['web_workers']} --threads {p['web_threads']} | worker "
        f"--processes {p['worker_processes']} --threads {p['worker_threads']} "
        f"(dramatiq_worker_timeout {p['worker_poll_timeout_ms']} ms) | Postgres {p['database']}"
        f", Redis {p['redis']} | peers in a helper process",
        f"payload: {p['payload']} ({p['payload_bytes']:,} bytes); {p['connections']} "
        f"connections x {p['seconds']:g}s; limits raised: ingress {p['ingress_limit']}, "
        f"dispatch {p['dispatch_limit']}",
        f"CPU used by others before the load: {_num(doc['background_busy_percent'], '.0f')}%",
        "",
    ]
    if lat:
        lines += [
            f"low load ({lat['rate_per_second']:g}/s for {lat['seconds']:g}s, one at a time, "
            f"{lat['matched']}/{lat['sent']} matched):",
            f"  ack (request -> 200)     p50 {_num(lat['ack_p50_ms'])} ms   "
            f"p99 {_num(lat['ack_p99_ms'])} ms",
            f"  ack -> agent call start  p50 {_num(lat['ack_to_agent_p50_ms'])} ms   "
            f"p99 {_num(lat['ack_to_agent_p99_ms'])} ms   "
            f"max {_num(lat['ack_to_agent_max_ms'])} ms",
            f"  end to end (sent -> agent) p50 {_num(lat['end_to_end_p50_ms'])} ms   "
            f"p99 {_num(lat['end_to_end_p99_ms'])} ms",
        ]
        if lat["errors"]:
            lines.append(f"  errors: {', '.join(lat['errors'])}")
        lines.append("")
    header = f"{'':<18} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    lines.append(header)
    if h:
        lines.append(
            f"{'GET /health':<18} {h['requests_per_second']:>9.1f} {_num(h['p50_ms'], '.2f'):>8} "
            f"{_num(h['p99_ms'], '.2f'):>8} {h['errors']:>7}"
        )
    if t:
        lines.append(
            f"{'POST webhook acks':<18} {t['acks_per_second']:>9.1f} "
            f"{_num(t['p50_ms'], '.2f'):>8} {_num(t['p99_ms'], '.2f'):>8} {t['errors']:>7}"
            f"   ratio to /health {_num(t['ratio_to_health'], '.2f')}"
        )
        if t["error_samples"]:
            lines.append(f"{'':<18} errors seen: {', '.join(t['error_samples'])}")
        paused = " (worker paused during the load)" if t["worker_paused_during_load"] else ""
        lines += [
            "",
            f"dispatch{paused}: {t['dispatch_per_second_during_load']:.1f}/s during the load, "
            f"{_num(t['dispatch_per_second_overall'])}/s overall (load start -> drained)",
            f"  backlog at load end {t['backlog_at_load_end']:,} events (max "
            f"{t['backlog_max']:,}; slope {_num(t['backlog_slope_per_second'])}/s -> "
            f"{'GREW' if t['backlog_grew'] else 'did not grow'}); queue depth max "
            f"{t['queue_depth_max']:,}",
            "  drained in "
            + (f"{t['drain_seconds']:.1f}s" if t["drained"] else "NOT within the drain timeout")
            + f"; final statuses {t['final_statuses']}; agent runs {t['agent_runs']}",
            "  CPU % of all cores during the load: "
            + ", ".join(f"{k} {v:.0f}" for k, v in t["cpu_percent_during_load"].items()),
            "  CPU % of all cores during the drain: "
            + ", ".join(f"{k} {v:.0f}" for k, v in t["cpu_percent_during_drain"].items()),
            "  CPU ms: " + ", ".join(f"{k} {v:.2f}" for k, v in t["cpu_ms_per_event"].items()),
            "  share of that CPU spent in the kernel (load + drain): "
            + ", ".join(f"{k} {v:.0f}%" for k, v in t["cpu_kernel_share_percent"].items()),
        ]
        pe = t["per_event"]
        lines += [
            f"  per event: {pe['config_service_calls']} Config Service calls "
            f"{pe['config_service_calls_by_path']}, {pe['agent_calls']} agent call(s), "
            f"{pe['postgres_transactions']} Postgres transactions, rows "
            f"+{pe['postgres_rows_inserted']} ~{pe['postgres_rows_updated']}, "
            f"{pe['postgres_wal_bytes']:,} WAL bytes, {pe['redis_commands']} Redis commands "
            f"{pe['redis_commands_by_name']}",
        ]
        if t["sampler_failure"]:
            lines.append(f"  sampler failed: {t['sampler_failure']}")
    lines += ["", "targets:"]
    for name, ok in doc["targets"].items():
        lines.append(f"  {'-' if ok is None else ('met   ' if ok else 'MISSED')}  {name}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--seconds", type=float, default=10.0, help="load per phase, seconds (default 10)")
    add("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    add("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    add("--web-threads", type=int, default=8, help="threads per web worker (default 8)")
    add("--worker-processes", type=int, default=2, help="Dramatiq processes (default 2)")
    add("--worker-threads", type=int, default=8, help="threads per worker process (default 8)")
    add("--warmup", type=float, default=1.0, help="unmeasured /health load, s (default 1)")
    add("--latency-rate", type=float, default=5.0, help="low-load deliveries/s (default 5)")
    add("--latency-seconds", type=float, default=10.0, help="low-load duration (default 10)")
    add("--drain-timeout", type=float, default=120.0, help="max wait for the backlog (120)")
    add("--sample-interval", type=float, default=0.5, help="queue/status sampling, s (0.5)")
    add(
        "--ingress-limit",
        default="1000000/second",
        help="ORCHESTRATOR_INGRESS_RATE_LIMIT for the run (default 1000000/second)",
    )
    add(
        "--dispatch-limit",
        default="1000000/second",
        help="ORCHESTRATOR_TEAM_DISPATCH_LIMIT for the run (default 1000000/second)",
    )
    add(
        "--worker-poll-ms",
        type=int,
        help="dramatiq_worker_timeout for the worker (default: what cli/main.py sets)",
    )
    add(
        "--pause-worker",
        action="store_true",
        help="SIGSTOP the worker during the throughput load (ack ceiling alone, then "
        "the worker's drain rate alone)",
    )
    add("--skip-latency", action="store_true", help="skip the low-load latency phase")
    add(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy (if installed) of the web and worker groups during the "
        "throughput load into DIR (collapsed stacks, `--format raw`)",
    )
    add("--payload", type=Path, default=DEFAULT_PAYLOAD, help="GitHub issue_comment JSON")
    args = parser.parse_args(argv)
    for name in (
        "seconds",
        "connections",
        "web_workers",
        "web_threads",
        "worker_processes",
        "worker_threads",
        "latency_rate",
        "latency_seconds",
        "drain_timeout",
        "sample_interval",
    ):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def _payload(path: Path) -> tuple[bytes, str]:
    body = path.read_bytes()
    document = json.loads(body)
    repo = document.get("repository", {}).get("full_name")
    if not repo:
        raise SystemExit(f"{path}: no repository.full_name to route on")
    if "@incidentfox" not in str(document.get("comment", {}).get("body", "")).lower():
        raise SystemExit(f"{path}: the comment does not mention @incidentfox; nothing triggers")
    return body, repo


def _leftovers(pgids: list[int], pids: list[int]) -> list[int]:
    """Pids of anything this run started that is still alive (should be none)."""
    groups = set(pgids)
    left = {s.pid for s in proc_stats() if s.pgid in groups}
    left |= {pid for pid in pids if alive(pid)}
    return sorted(pid for pid in left if alive(pid))


def run(args: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    body, repo = _payload(args.payload)
    machine = Machine.detect()
    namespace = os.environ.get("ORCHESTRATOR_REDIS_NAMESPACE", "orchestrator")
    secret = secrets.token_hex(20)
    admin_token = secrets.token_urlsafe(24).replace(".", "_")
    results: dict[str, Any] = {}
    background: float | None = None
    worker_poll = "?"
    started_pgids: list[int] = []
    started_pids: list[int] = []
    workdir = Path(tempfile.mkdtemp(prefix="orch-wh-"))  # short: pg socket path limit
    try:
        with contextlib.ExitStack() as stack:
            deps = stack.enter_context(dependencies(workdir, config_service=False))
            started_pids += [p for p in (deps.postgres_pid, deps.redis_pid) if p]
            peer = stack.enter_context(peers(workdir, admin_token, repo))
            started_pgids.append(peer.pgid)
            shared = {
                "CONFIG_SERVICE_URL": peer.config_url,
                "ORCHESTRATOR_SECRET_KEY": Fernet.generate_key().decode(),
                "GITHUB_WEBHOOK_SECRET": secret,
                "ORCHESTRATOR_INGRESS_RATE_LIMIT": args.ingress_limit,
                "ORCHESTRATOR_TEAM_DISPATCH_LIMIT": args.dispatch_limit,
                "ORCHESTRATOR_REDIS_NAMESPACE": namespace,
            }
            tier = stack.enter_context(
                web(deps, workdir, args.web_workers, args.web_threads, extra_env=shared)
            )
            started_pgids.append(tier.pgid)
            worker_env = {
                **shared,
                "AGENT_API_URL": peer.agent_url,
                "ORCHESTRATOR_INTERNAL_ADMIN_TOKEN": admin_token,
                # Needed by `orchestrator worker`, never called for a webhook: the
                # helper answers 404 there.
                "AI_PIPELINE_API_URL": peer.config_url,
                "AI_PIPELINE_IMAGE": "incidentfox/ai-pipeline:bench",
            }
            if args.worker_poll_ms is not None:
                worker_env["dramatiq_worker_timeout"] = str(args.worker_poll_ms)
            work = stack.enter_context(
                worker(deps, workdir, worker_env, args.worker_processes, args.worker_threads)
            )
            started_pgids.append(work.pgid)
            worker_poll = work.poll_timeout_ms
            tracked = {
                "web": Tracked(pgids={tier.pgid}),
                "worker": Tracked(pgids={work.pgid}),
                "peers": Tracked(pgids={peer.pgid}),
                **deps.tracked(),
            }

            def make_observer() -> Observer:
                return Observer(
                    deps.env["DATABASE_URL"], deps.env["REDIS_URL"], namespace, peer.agent_url
                )

            observer = make_observer()
            stack.callback(observer.close)

            say(f"warm-up: {WARMUP_EVENTS} deliveries, one at a time, through to the agent ...")
            sender = Sender(tier.port, secret, body)
            try:
                for _ in range(WARMUP_EVENTS):
                    _, _, status, document = sender.send()
                    if status != 200:
                        raise RuntimeError(f"warm-up delivery answered {status}: {document}")
            finally:
                sender.close()
            wait_settled(observer, SETTLE_TIMEOUT_SECONDS, "warm-up")
            if not observer.received():
                raise RuntimeError("warm-up: no agent call arrived")

            background = background_busy(tracked)
            if background is not None and background > QUIET_WARN_PERCENT:
                say(
                    f"warning: other processes use {background:.0f}% of the CPU; "
                    "the figures will be low"
                )

            latency: LatencyResult | None = None
            if not args.skip_latency:
                say(
                    f"low load: {args.latency_rate:g} deliveries/s for "
                    f"{args.latency_seconds:g}s ..."
                )
                latency = latency_probe(
                    tier.port, secret, body, observer, args.latency_rate, args.latency_seconds
                )
                results["latency"] = asdict(latency)
                wait_settled(observer, SETTLE_TIMEOUT_SECONDS, "low load")

            ceiling = health(tier.port, args.seconds, args.connections, args.warmup, tracked)
            results["health"] = asdict(ceiling)

            say(
                f"measuring signed webhooks for {args.seconds:g}s at {args.connections} "
                f"connections{' (worker paused)' if args.pause_worker else ''} ..."
            )
            spec = RequestSpec(
                "POST",
                WEBHOOK_PATH,
                body=body,
                headers=(("Content-Type", "application/json"),),
                github_secret=secret,
            )
            result = throughput(
                args,
                tier.port,
                spec,
                tracked,
                observer,
                make_observer,
                tier.pgid,
                work.pgid,
                ceiling.requests_per_second,
            )
            results["webhooks"] = asdict(result)
            if not result.drained:
                say(f"warning: the backlog did not drain within {args.drain_timeout:g}s")
    finally:
        STOPPING.set()
        strays = reap_strays(workdir, started_pgids)
        left = _leftovers(started_pgids, started_pids)
        shutil.rmtree(workdir, ignore_errors=True)
        if strays:
            say(f"had to stop {len(strays)} leftover process(es): {strays}")
        if left:
            say(f"warning: still running after clean-up: {left}")
        else:
            say("clean-up checked: nothing this run started is still running")

    lat = LatencyResult(**results["latency"]) if "latency" in results else None
    thr = ThroughputResult(**results["webhooks"]) if "webhooks" in results else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "benchmark": "webhook",
        "timestamp": stamp,
        "git_revision": git_revision(),
        "machine": asdict(machine),
        "params": {
            "seconds": args.seconds,
            "connections": args.connections,
            "web_workers": args.web_workers,
            "web_threads": args.web_threads,
            "worker_processes": args.worker_processes,
            "worker_threads": args.worker_threads,
            "worker_poll_timeout_ms": worker_poll,
            "pause_worker": args.pause_worker,
            "warmup": args.warmup,
            "latency_rate": args.latency_rate,
            "latency_seconds": args.latency_seconds,
            "drain_timeout": args.drain_timeout,
            "ingress_limit": args.ingress_limit,
            "dispatch_limit": args.dispatch_limit,
            "payload": str(args.payload.relative_to(REPO))
            if args.payload.is_relative_to(REPO)
            else str(args.payload),
            "payload_bytes": len(body),
            **backing_servers(),
            "leftover_processes": left,
        },
        "background_busy_percent": background,
        "targets": _verdicts(thr, lat),
        "results": results,
    }
    print(report(document), flush=True)
    write_result("webhook", stamp, document)
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_main("webhook_bench", run, _parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
