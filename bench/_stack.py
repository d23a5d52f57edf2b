"""What the benchmarks share: the machine, CPU accounting from /proc, the multi-process
keep-alive load generator, the stack under test (embedded PostgreSQL and Redis, the
`orchestrator web` / `orchestrator worker` subprocesses in their own process groups) and
the clean-up that stops everything on exit, on error and on Ctrl-C / SIGTERM.

Used by `http_bench.py` and `webhook_bench.py`; not a script. Requests only ever go to
127.0.0.1 and every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"  # the only host a benchmark ever sends a request to
READY_TIMEOUT_SECONDS = 90.0
START_TIMEOUT_SECONDS = 60.0  # spawning a generator process and importing this module
QUIET_WARN_PERCENT = 10.0  # machine busy before the load starts: the box is shared
STOP_GRACE_SECONDS = 15.0
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# -- the machine ------------------------------------------------------------------------
@dataclass
class Machine:
    nproc: int
    cpu_model: str
    python: str
    implementation: str
    platform: str

    @classmethod
    def detect(cls) -> Machine:
        model = "unknown"
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        return cls(
            nproc=nproc(),
            cpu_model=model,
            python=platform.python_version(),
            implementation=platform.python_implementation(),
            platform=platform.platform(),
        )


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def percentile(sorted_values: Any, q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence (seconds in, milliseconds out)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return round(sorted_values[rank - 1] * 1000.0, 3)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


# -- CPU accounting (Linux /proc) -------------------------------------------------------
def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 100


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    pgid: int
    cpu_ticks: int  # utime + stime + cutime + cstime: children already reaped included
    system_ticks: int  # stime + cstime: the part spent in the kernel


def proc_stats() -> list[ProcStat]:
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    stats: list[ProcStat] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime cutime cstime ...
        if len(fields) > 14:
            ticks = sum(int(v) for v in fields[11:15])
            system = int(fields[12]) + int(fields[14])
            stats.append(ProcStat(int(entry.name), int(fields[1]), int(fields[2]), ticks, system))
    return stats


@dataclass
class Tracked:
    """Which processes make up one part of the stack: whole process groups, single
    processes, and the live children of given parents (PostgreSQL's backends). The CPU
    of a child that exited in between is counted through its parent's cutime/cstime."""

    pgids: set[int] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    children_of: set[int] = field(default_factory=set)

    def owns(self, stat: ProcStat) -> bool:
        return stat.pgid in self.pgids or stat.pid in self.pids or stat.ppid in self.children_of


def machine_busy_seconds() -> float | None:
    """Non-idle CPU time of the whole machine, summed over cores (/proc/stat)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(values) - values[3] - values[4]
    return busy / _clock_ticks()


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each tracked part and by the whole machine."""

    at: float
    parts: dict[str, float]
    machine_busy: float | None
    system: dict[str, float] = field(default_factory=dict)  # kernel seconds of each part

    @classmethod
    def take(cls, tracked: dict[str, Tracked]) -> CpuSample:
        stats = proc_stats()
        ticks = _clock_ticks()
        parts: dict[str, float] = {}
        system: dict[str, float] = {}
        for name, part in tracked.items():
            owned = [s for s in stats if part.owns(s)]
            parts[name] = sum(s.cpu_ticks for s in owned) / ticks
            system[name] = sum(s.system_ticks for s in owned) / ticks
        return cls(time.monotonic(), parts, machine_busy_seconds(), system)

    def kernel_share_until(self, later: CpuSample) -> dict[str, float]:
        """The share of each part's CPU over the interval spent in the kernel, in %."""
        shares: dict[str, float] = {}
        for name, total in self.seconds_until(later).items():
            if name in later.system and total > 0:
                kernel = later.system[name] - self.system.get(name, 0.0)
                shares[name] = round(100.0 * max(0.0, kernel) / total, 1)
        return shares

    def seconds_until(self, later: CpuSample) -> dict[str, float]:
        """CPU seconds of each part (and `machine`) over the interval."""
        used = {
            name: round(max(0.0, later.parts[name] - self.parts.get(name, 0.0)), 3)
            for name in later.parts
        }
        if self.machine_busy is not None and later.machine_busy is not None:
            used["machine"] = round(max(0.0, later.machine_busy - self.machine_busy), 3)
        return used

    def percent_until(self, later: CpuSample) -> dict[str, float]:
        """Each part's (and `machine`'s) share of all cores over the interval, in %."""
        capacity = (later.at - self.at) * nproc()
        if capacity <= 0:
            return {}
        return {k: round(100.0 * v / capacity, 1) for k, v in self.seconds_until(later).items()}


def background_busy(tracked: dict[str, Tracked], seconds: float = 1.0) -> float | None:
    """Machine CPU in use by others (not the idle stack) before the load starts: this box
    is shared, and a busy neighbour lowers every figure."""
    before = CpuSample.take(tracked)
    time.sleep(seconds)
    pct = before.percent_until(CpuSample.take(tracked))
    if "machine" not in pct:
        return None
    ours = sum(v for k, v in pct.items() if k != "machine")
    return round(max(0.0, pct["machine"] - ours), 1)


# -- the Python load generator ----------------------------------------------------------
@dataclass(frozen=True)
class RequestSpec:
    """What every request of a load run sends. With `github_secret`, each request is a
    new GitHub delivery: a unique `X-GitHub-Delivery` (a UUID, as GitHub sends) signed
    with `orchestrator.webhooks.signing.signed_headers`, and only a 200 that is not a
    duplicate counts as a success (a 200 duplicate is reported as the error
    `duplicate`)."""

    method: str = "GET"
    path: str = "/health"
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    github_secret: str | None = None
    github_event: str = "issue_comment"


def _load_thread(
    port: int, spec: RequestSpec, deadline: float, latencies: array[float], errors: list[str]
) -> None:
    conn: http.client.HTTPConnection | None = None
    perf = time.perf_counter
    clock = time.monotonic
    append = latencies.append
    base = dict(spec.headers)
    signed: dict[str, str] | None = None
    if spec.github_secret is not None:
        from orchestrator.webhooks.signing import signed_headers

        # GitHub signs the body only, and the body is the same for every request: the
        # signature is computed once and each request gets its own delivery id. The
        # headers are exactly what `signed_headers(..., delivery_id=...)` returns per
        # request, without spending ~30 us of the shared CPU on each.
        signed = {
            **base,
            **signed_headers(
                "github", spec.github_secret, spec.body or b"", github_event=spec.github_event
            ),
        }
    while clock() < deadline:
        if conn is None:
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
        headers = base if signed is None else {**signed, "X-GitHub-Delivery": str(uuid.uuid4())}
        started = perf()
        try:
            conn.request(spec.method, spec.path, body=spec.body, headers=headers)
            resp = conn.getresponse()  # HTTP/1.1: keep-alive by default
            data = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            errors.append(type(exc).__name__)
            conn.close()
            conn = None
            continue
        if status == 200 and (signed is None or b'"duplicate"' not in data):
            append(perf() - started)
        elif status == 200:
            errors.append("duplicate")
        else:
            errors.append(f"HTTP {status}")
        if resp.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def _load_process(
    port: int,
    spec: RequestSpec,
    threads: int,
    seconds: float,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """One generator process: `threads` keep-alive connections for `seconds`, started
    when the parent sets `go` (all processes at once, after their imports)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    if spec.github_secret is not None:
        import orchestrator.webhooks.signing  # noqa: F401 - imported before `go`, not during
    ready.put(os.getpid())
    if not go.wait(timeout=START_TIMEOUT_SECONDS * 2):
        return  # the parent gave up; it reports that
    cpu_start = time.process_time()
    deadline = time.monotonic() + seconds
    per_thread = [array("d") for _ in range(threads)]
    errors: list[str] = []
    workers = [
        threading.Thread(
            target=_load_thread, args=(port, spec, deadline, per_thread[i], errors), daemon=True
        )
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 30)
    merged = array("d")
    for values in per_thread:
        merged.extend(values)
    out.put(
        {"latencies": merged.tobytes(), "errors": errors, "cpu": time.process_time() - cpu_start}
    )


def _collect(source: Any, procs: list[Any], timeout: float, what: str) -> list[Any]:
    """One message per process from `source`; fails fast when a process crashed."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < len(procs):
        try:
            got.append(source.get(timeout=0.2))
            continue
        except queue.Empty:
            pass
        crashed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if crashed:
            raise RuntimeError(
                f"a load generator process exited ({crashed[0]}) before it could {what}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"the load generator processes did not {what} within {timeout:.0f}s")
    return got


@dataclass
class LoadRun:
    """What one load run measured: sorted latencies (seconds) of the successes, the
    errors, the client's CPU seconds, and the CPU samples taken at go and at the end."""

    seconds: float
    connections: int
    processes: int
    latencies: array[float]
    errors: list[str]
    client_cpu_seconds: float
    before: CpuSample
    after: CpuSample

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return round(self.ok / self.seconds, 1) if self.seconds > 0 else 0.0

    @property
    def client_cpu_percent(self) -> float:
        return round(100.0 * self.client_cpu_seconds / (self.seconds * nproc()), 1)


def python_load(
    port: int,
    spec: RequestSpec,
    seconds: float,
    connections: int,
    tracked: dict[str, Tracked],
    on_go: Callable[[], None] | None = None,
) -> LoadRun:
    """`connections` keep-alive connections for `seconds`, spread over one process per
    core (a few threads each, one persistent `http.client.HTTPConnection` per thread;
    latency is timed per request around send + full read). `on_go` runs right after the
    generators are released (to start samplers)."""
    ctx = multiprocessing.get_context("spawn")
    processes = max(1, min(nproc(), connections))
    shares = [
        connections // processes + (1 if i < connections % processes else 0)
        for i in range(processes)
    ]
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_load_process,
            args=(port, spec, shares[i], seconds, ready, go, out),
            name=f"bench-load-{i}",
            daemon=True,
        )
        for i in range(processes)
    ]
    reports: list[Any] = []
    try:
        for proc in procs:
            proc.start()
        _collect(ready, procs, START_TIMEOUT_SECONDS, "start")
        go.set()
        before = CpuSample.take(tracked)
        if on_go is not None:
            on_go()
        reports = _collect(out, procs, seconds + 60, "report back")
        after = CpuSample.take(tracked)
    finally:
        for proc in procs:
            if proc.pid is None:  # never started
                continue
            if len(reports) < len(procs):  # interrupted or failed: do not wait for the deadline
                proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    latencies: list[float] = []
    errors: list[str] = []
    cpu = 0.0
    for report in reports:
        chunk = array("d")
        chunk.frombytes(report["latencies"])
        latencies.extend(chunk)
        errors.extend(report["errors"])
        cpu += float(report["cpu"])
    return LoadRun(
        seconds=round(max(seconds, after.at - before.at), 3),
        connections=connections,
        processes=processes,
        latencies=array("d", sorted(latencies)),
        errors=errors,
        client_cpu_seconds=cpu,
        before=before,
        after=after,
    )


# -- stopping -----------------------------------------------------------------------------
# Set once stopping has begun (first signal, or the normal end of the run): from then
# on signals are ignored, so a second Ctrl-C cannot cut the clean-up short.
STOPPING = threading.Event()
INTERRUPTED_BY: list[str] = []


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    """SIGINT and SIGTERM both unwind through every `finally`, which stops what was
    started. KeyboardInterrupt rather than an exception of our own: libraries that
    retry on `Exception` (yoyo's lock loop) let it through, and psycopg cancels the
    running query on it instead of leaving the connection mid-protocol."""
    if STOPPING.is_set():
        return
    STOPPING.set()
    INTERRUPTED_BY.append(signal.Signals(signum).name)
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)


def interrupted_by() -> str:
    return INTERRUPTED_BY[0] if INTERRUPTED_BY else "SIGINT"


def bench_main(
    name: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """Run a benchmark so Ctrl-C or SIGTERM stops what it started and says so (130), and
    a stack that could not start is one line (1), not a traceback."""
    install_signal_handlers()
    try:
        return run(args)
    except KeyboardInterrupt:
        say(f"{name}: stopped by {interrupted_by()}; everything it started was stopped")
        return 130
    except RuntimeError as exc:
        say(f"{name}: {exc}")
        return 1


def backing_servers() -> dict[str, str]:
    """Whether the run used given PostgreSQL/Redis servers or embedded ones."""
    return {
        "database": "external" if os.environ.get("DATABASE_URL") else "embedded",
        "redis": "external" if os.environ.get("REDIS_URL") else "embedded",
    }


def write_result(name: str, stamp: str, document: dict[str, Any]) -> Path:
    """`bench/results/<name>_<stamp>.json`, and say where."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}_{stamp}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return out


def free_port() -> int:
    from orchestrator.devstack.embedded import free_port as _free_port

    return _free_port()


def orchestrator_command() -> list[str]:
    script = Path(sys.executable).with_name("orchestrator")
    if script.exists():
        return [str(script)]
    found = shutil.which("orchestrator")
    return [found] if found else [sys.executable, "-m", "cli.main"]


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    signal_group(proc, signal.SIGCONT)  # a stopped group cannot act on SIGTERM
    signal_group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE_SECONDS)
    signal_group(proc, signal.SIGKILL)  # whatever is left of the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as gone (its parent, not us, reaps it)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def reap_strays(workdir: Path, groups: Iterable[int] = ()) -> list[int]:
    """Last resort, and the final check: a process of one of `groups`, or one whose
    command line or working directory lies in this run's own temporary folder (a server
    interrupted half-way through its start, never handed back to be stopped), is still
    running. Only those are signalled; returns the pids that had to be stopped."""
    marker = str(workdir)
    wanted = set(groups)
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    strays: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            pgid = os.getpgid(pid)
        except OSError:
            continue
        ours = pgid in wanted or marker in cmdline or cwd == marker
        if (ours or cwd.startswith(marker + "/")) and alive(pid):
            strays.append(pid)
    found = list(strays)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        signalled = []
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                signalled.append(pid)
        if not signalled:
            break
        say(f"stopping stray process(es) {', '.join(map(str, signalled))} ...")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(pid) for pid in signalled):
            time.sleep(0.1)
        strays = [pid for pid in signalled if alive(pid)]
    return found


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the stack under test -----------------------------------------------------------------
@dataclass
class Dependencies:
    """DATABASE_URL, REDIS_URL (and CONFIG_SERVICE_URL when this process serves the
    stand-in) of running servers, and the pids of the embedded ones for CPU accounting."""

    env: dict[str, str]
    postgres_pid: int | None = None
    redis_pid: int | None = None

    def tracked(self) -> dict[str, Tracked]:
        parts: dict[str, Tracked] = {}
        if self.postgres_pid is not None:
            pid = self.postgres_pid
            parts["postgres"] = Tracked(pids={pid}, children_of={pid})
        if self.redis_pid is not None:
            parts["redis"] = Tracked(pids={self.redis_pid})
        return parts


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def dependencies(workdir: Path, *, config_service: bool = True) -> Iterator[Dependencies]:
    """Embedded PostgreSQL and Redis unless `DATABASE_URL` / `REDIS_URL` are set, a
    Config Service stand-in in this process when `config_service`, migrations applied;
    all stopped on the way out."""
    from orchestrator.db.migrations import apply
    from orchestrator.devstack.embedded import EmbeddedPostgres, EmbeddedRedis

    with contextlib.ExitStack() as stack:
        try:
            deps = Dependencies(env={})
            if os.environ.get("DATABASE_URL"):
                deps.env["DATABASE_URL"] = os.environ["DATABASE_URL"]
            else:
                say("starting embedded PostgreSQL ...")
                postgres = EmbeddedPostgres(workdir / "pg")
                stack.callback(postgres.stop)
                deps.env["DATABASE_URL"] = postgres.start()
                deps.postgres_pid = _postmaster_pid(postgres.data_dir)
            if os.environ.get("REDIS_URL"):
                deps.env["REDIS_URL"] = os.environ["REDIS_URL"]
            else:
                say("starting embedded Redis ...")
                redis_server = EmbeddedRedis(workdir / "redis" / "redis.db")
                stack.callback(redis_server.stop)
                deps.env["REDIS_URL"] = redis_server.start()
                deps.redis_pid = redis_server.pid
            if config_service:
                from orchestrator.devstack.config_service import ConfigServiceStandIn

                config = ConfigServiceStandIn()
                config.start()  # stop() before start() would block forever (socketserver)
                stack.callback(config.stop)
                deps.env["CONFIG_SERVICE_URL"] = config.url
            say("applying migrations ...")
            apply(deps.env["DATABASE_URL"])
            yield deps
        finally:
            STOPPING.set()  # before the stack unwinds: no signal may cut it short


def start_group(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`cmd` in its own session (so its process group can be signalled as a whole)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def base_env(deps: Dependencies, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(deps.env)
    env.update(ORCHESTRATOR_AUTO_CREATE_TABLES="0", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class WebTier:
    port: int
    pgid: int  # the gunicorn master leads its own process group (start_new_session)


@contextlib.contextmanager
def web(
    deps: Dependencies,
    workdir: Path,
    workers: int,
    threads: int,
    extra_env: dict[str, str] | None = None,
) -> Iterator[WebTier]:
    """`orchestrator web` in its own process group on a free port, ready (`/ready` 200)."""
    from cryptography.fernet import Fernet

    port = free_port()
    metrics_dir = workdir / "prometheus-web"
    metrics_dir.mkdir()
    env = base_env(
        deps,
        {
            "ORCHESTRATOR_SECRET_KEY": Fernet.generate_key().decode(),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            **(extra_env or {}),
        },
    )
    log_path = workdir / "web.log"
    cmd = [
        *orchestrator_command(),
        "web",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    say(f"starting {' '.join(cmd[1:])} ...")
    proc = start_group(cmd, env, log_path)
    try:
        wait_ready(proc, port, log_path)
        yield WebTier(port=port, pgid=proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(
                f"the web tier exited during the run ({proc.returncode});\n{tail(log_path)}"
            )
    finally:
        STOPPING.set()
        stop_group(proc)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    url = f"http://{HOST}:{port}/ready"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"orchestrator web exited ({proc.returncode}) during start-up:\n{tail(log_path)}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(
        f"/ready did not answer 200 within {READY_TIMEOUT_SECONDS:.0f}s:\n{tail(log_path)}"
    )
