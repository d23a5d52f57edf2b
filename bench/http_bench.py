"""HTTP ceiling of the web tier: `/health` and `/ready` under keep-alive load.

    .venv/bin/python bench/http_bench.py [--seconds 10] [--connections 32]
                                         [--workers 2] [--threads 8] [--client auto]

Starts what it needs (embedded PostgreSQL and Redis unless `DATABASE_URL` / `REDIS_URL`
are set, a Config Service stand-in), applies migrations, runs the real web tier
(`orchestrator web` = gunicorn + gthread workers) as a subprocess on a free loopback
port, waits for `GET /ready` == 200, then drives `/health` and `/ready` in turn, each
for `--seconds`, over `--connections` concurrent keep-alive connections.

The load generator is `wrk` when it is on PATH, else a multi-process Python generator
(one process per core, a few threads each, one persistent `http.client.HTTPConnection`
per thread; latency is timed per request around send + full read). Either way the client
shares the machine with the server, so the figures are a ceiling of *this* box, not of
the code alone: the CPU taken by the web tier, by the client and by the whole machine is
reported next to each figure, and so is CPU used by other processes before the load
starts, so that a client-bound or disturbed run is recognisable.

Prints requests/s (200 responses per second), p50, p99 and errors (other statuses and
connection failures) per endpoint, and writes the same figures, the machine and the
git revision to `bench/results/http_<timestamp>.json`. Every process and server it
started is stopped on exit, on error and on Ctrl-C / SIGTERM. Requests only ever go to
127.0.0.1.
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
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"  # the only host this script ever sends a request to
ENDPOINTS = ("/health", "/ready")
READY_TIMEOUT_SECONDS = 90.0
START_TIMEOUT_SECONDS = 60.0  # spawning a generator process and importing this script
QUIET_WARN_PERCENT = 10.0  # machine busy before the load starts: the box is shared
STOP_GRACE_SECONDS = 15.0
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# -- results ---------------------------------------------------------------------------
@dataclass
class EndpointResult:
    path: str
    seconds: float
    connections: int
    requests: int
    errors: int
    requests_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    client: str
    client_cpu_percent: float | None = None  # shares of the whole machine's CPU
    server_cpu_percent: float | None = None  # the web tier's process group
    machine_busy_percent: float | None = None  # everything, incl. Postgres and Redis
    error_samples: list[str] = field(default_factory=list)


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
            nproc=_nproc(),
            cpu_model=model,
            python=platform.python_version(),
            implementation=platform.python_implementation(),
            platform=platform.platform(),
        )


def _nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _percentile(sorted_values: array[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending array (seconds in, milliseconds out)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return round(sorted_values[rank - 1] * 1000.0, 3)


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time of the web tier's process group and of the whole machine (Linux /proc)."""

    at: float
    server_seconds: float | None
    machine_busy_seconds: float | None

    @classmethod
    def take(cls, pgid: int) -> CpuSnapshot:
        return cls(time.monotonic(), _group_cpu_seconds(pgid), _machine_busy_seconds())

    def percent_until(self, later: CpuSnapshot) -> tuple[float | None, float | None]:
        """(server, machine busy) as percentages of all cores over the interval."""
        capacity = (later.at - self.at) * _nproc()
        if capacity <= 0:
            return None, None

        def pct(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round(100.0 * (b - a) / capacity, 1)

        return (
            pct(self.server_seconds, later.server_seconds),
            pct(self.machine_busy_seconds, later.machine_busy_seconds),
        )


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 100


def _group_cpu_seconds(pgid: int) -> float | None:
    """utime + stime of every live process in group `pgid` (the gunicorn master+workers)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime ...
        if len(fields) > 12 and int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _clock_ticks()


def _machine_busy_seconds() -> float | None:
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


# -- the Python load generator --------------------------------------------------------
def _load_thread(
    port: int, path: str, deadline: float, latencies: array[float], errors: list[str]
) -> None:
    conn: http.client.HTTPConnection | None = None
    perf = time.perf_counter
    clock = time.monotonic
    append = latencies.append
    while clock() < deadline:
        if conn is None:
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
        started = perf()
        try:
            conn.request("GET", path)  # HTTP/1.1: keep-alive by default
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            errors.append(type(exc).__name__)
            conn.close()
            conn = None
            continue
        if status == 200:
            append(perf() - started)
        else:
            errors.append(f"HTTP {status}")
        if resp.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def _load_process(
    port: int,
    path: str,
    threads: int,
    seconds: float,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """One generator process: `threads` keep-alive connections for `seconds`, started
    when the parent sets `go` (all processes at once, after their imports)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    ready.put(os.getpid())
    if not go.wait(timeout=START_TIMEOUT_SECONDS * 2):
        return  # the parent gave up; it reports that
    cpu_start = time.process_time()
    deadline = time.monotonic() + seconds
    per_thread = [array("d") for _ in range(threads)]
    errors: list[str] = []
    workers = [
        threading.Thread(
            target=_load_thread, args=(port, path, deadline, per_thread[i], errors), daemon=True
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


def python_load(
    port: int, pgid: int, path: str, seconds: float, connections: int
) -> EndpointResult:
    ctx = multiprocessing.get_context("spawn")
    processes = max(1, min(_nproc(), connections))
    shares = [
        connections // processes + (1 if i < connections % processes else 0)
        for i in range(processes)
    ]
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_load_process,
            args=(port, path, shares[i], seconds, ready, go, out),
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
        before = CpuSnapshot.take(pgid)
        reports = _collect(out, procs, seconds + 60, "report back")
        after = CpuSnapshot.take(pgid)
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
    latencies = array("d")
    errors: list[str] = []
    cpu = 0.0
    for report in reports:
        chunk = array("d")
        chunk.frombytes(report["latencies"])
        latencies.extend(chunk)
        errors.extend(report["errors"])
        cpu += float(report["cpu"])
    ordered = array("d", sorted(latencies))
    total = len(ordered) + len(errors)
    server_cpu, machine_busy = before.percent_until(after)
    return EndpointResult(
        path=path,
        seconds=round(max(seconds, after.at - before.at), 3),
        connections=connections,
        requests=total,
        errors=len(errors),
        requests_per_second=round(len(ordered) / seconds, 1),
        p50_ms=_percentile(ordered, 50),
        p99_ms=_percentile(ordered, 99),
        client=f"python ({processes} processes x http.client keep-alive)",
        client_cpu_percent=round(100.0 * cpu / (seconds * _nproc()), 1),
        server_cpu_percent=server_cpu,
        machine_busy_percent=machine_busy,
        error_samples=sorted(set(errors))[:5],
    )


# -- wrk -------------------------------------------------------------------------------
_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return round(float(match.group(1)) * _WRK_UNITS[match.group(2)], 3)


def wrk_load(
    wrk: str, port: int, pgid: int, path: str, seconds: float, connections: int
) -> EndpointResult:
    threads = max(1, min(_nproc(), connections))
    cmd = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        f"http://{HOST}:{port}{path}",
    ]
    before = CpuSnapshot.take(pgid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = CpuSnapshot.take(pgid)
    server_cpu, machine_busy = before.percent_until(after)
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    text = done.stdout
    percentiles = {
        m.group(1): _wrk_ms(m.group(2))
        for m in re.finditer(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", text, re.M)
    }
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if not total or not rps:
        raise RuntimeError(f"could not parse wrk output:\n{text}")
    bad_status = int(non_2xx.group(1)) if non_2xx else 0
    errors = bad_status + (sum(int(g) for g in socket_errors.groups()) if socket_errors else 0)
    duration = _wrk_ms(total.group(2) + total.group(3)) / 1000.0
    answered = int(total.group(1))
    # wrk's own Requests/sec counts every response; count the good ones, as the Python
    # generator does (identical when errors is 0).
    good_rps = (answered - bad_status) / duration if duration > 0 else float(rps.group(1))
    return EndpointResult(
        path=path,
        seconds=round(duration, 3),
        connections=connections,
        requests=answered,
        errors=errors,
        requests_per_second=round(good_rps, 1),
        p50_ms=percentiles.get("50"),
        p99_ms=percentiles.get("99"),
        client=f"wrk ({threads} threads)",
        client_cpu_percent=round(100.0 * wrk_cpu / ((after.at - before.at) * _nproc()), 1),
        server_cpu_percent=server_cpu,
        machine_busy_percent=machine_busy,
    )


# -- the stack under test -------------------------------------------------------------
# Set once stopping has begun (first signal, or the normal end of the run): from then
# on signals are ignored, so a second Ctrl-C cannot cut the clean-up short.
_STOPPING = threading.Event()
_INTERRUPTED_BY: list[str] = []


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    """SIGINT and SIGTERM both unwind through every `finally`, which stops what was
    started. KeyboardInterrupt rather than an exception of our own: libraries that
    retry on `Exception` (yoyo's lock loop) let it through, and psycopg cancels the
    running query on it instead of leaving the connection mid-protocol."""
    if _STOPPING.is_set():
        return
    _STOPPING.set()
    _INTERRUPTED_BY.append(signal.Signals(signum).name)
    raise KeyboardInterrupt


def _free_port() -> int:
    from orchestrator.devstack.embedded import free_port

    return free_port()


def _orchestrator_command() -> list[str]:
    script = Path(sys.executable).with_name("orchestrator")
    if script.exists():
        return [str(script)]
    found = shutil.which("orchestrator")
    return [found] if found else [sys.executable, "-m", "cli.main"]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _dependencies(workdir: Path) -> Iterator[dict[str, str]]:
    """DATABASE_URL, REDIS_URL and CONFIG_SERVICE_URL of running servers; stops them."""
    from orchestrator.db.migrations import apply
    from orchestrator.devstack.config_service import ConfigServiceStandIn
    from orchestrator.devstack.embedded import EmbeddedPostgres, EmbeddedRedis

    with contextlib.ExitStack() as stack:
        try:
            env: dict[str, str] = {}
            if os.environ.get("DATABASE_URL"):
                env["DATABASE_URL"] = os.environ["DATABASE_URL"]
            else:
                _say("starting embedded PostgreSQL ...")
                postgres = EmbeddedPostgres(workdir / "pg")
                stack.callback(postgres.stop)
                env["DATABASE_URL"] = postgres.start()
            if os.environ.get("REDIS_URL"):
                env["REDIS_URL"] = os.environ["REDIS_URL"]
            else:
                _say("starting embedded Redis ...")
                redis_server = EmbeddedRedis(workdir / "redis" / "redis.db")
                stack.callback(redis_server.stop)
                env["REDIS_URL"] = redis_server.start()
            config = ConfigServiceStandIn()
            config.start()  # stop() before start() would block forever (socketserver)
            stack.callback(config.stop)
            env["CONFIG_SERVICE_URL"] = config.url
            _say("applying migrations ...")
            apply(env["DATABASE_URL"])
            yield env
        finally:
            _STOPPING.set()  # before the stack unwinds: no signal may cut it short


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    _signal_group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE_SECONDS)
    _signal_group(proc, signal.SIGKILL)  # whatever is left of the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@dataclass(frozen=True)
class WebTier:
    port: int
    pgid: int  # the gunicorn master leads its own process group (start_new_session)


@contextlib.contextmanager
def _web(deps: dict[str, str], workdir: Path, workers: int, threads: int) -> Iterator[WebTier]:
    """`orchestrator web` in its own process group on a free port."""
    from cryptography.fernet import Fernet

    port = _free_port()
    metrics_dir = workdir / "prometheus-web"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(deps)
    env.update(
        ORCHESTRATOR_SECRET_KEY=Fernet.generate_key().decode(),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        ORCHESTRATOR_AUTO_CREATE_TABLES="0",
        PYTHONUNBUFFERED="1",
    )
    log_path = workdir / "web.log"
    cmd = [
        *_orchestrator_command(),
        "web",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    _say(f"starting {' '.join(cmd[1:])} ...")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_ready(proc, port, log_path)
        yield WebTier(port=port, pgid=proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(
                f"the web tier exited during the run ({proc.returncode});\n{_tail(log_path)}"
            )
    finally:
        _STOPPING.set()
        _stop_group(proc)


def _reap_strays(workdir: Path) -> None:
    """Last resort: a server interrupted half-way through its start (so never handed
    back to be stopped) still runs from `workdir`. Only processes whose command line or
    working directory lies in this run's own temporary folder are signalled."""
    marker = str(workdir)
    proc = Path("/proc")
    if not proc.is_dir():
        return
    strays: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if marker in cmdline or cwd == marker or cwd.startswith(marker + "/"):
            strays.append(int(entry.name))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                alive.append(pid)
        if not alive:
            return
        _say(f"stopping stray process(es) {', '.join(map(str, alive))} ...")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(pid) for pid in alive):
            time.sleep(0.1)
        strays = [pid for pid in alive if _alive(pid)]


def _alive(pid: int) -> bool:
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


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    url = f"http://{HOST}:{port}/ready"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"orchestrator web exited ({proc.returncode}) during start-up:\n{_tail(log_path)}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(
        f"/ready did not answer 200 within {READY_TIMEOUT_SECONDS:.0f}s:\n{_tail(log_path)}"
    )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _git_revision() -> str | None:
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


# -- main ------------------------------------------------------------------------------
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint (default 10)")
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker (default 8)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="unmeasured load before each endpoint, seconds (default 1)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (default: wrk when on PATH, else python)",
    )
    args = parser.parse_args(argv)
    for name in ("seconds", "connections", "workers", "threads"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


LoadFn = Callable[[int, int, str, float, int], EndpointResult]


def _pick_client(choice: str) -> tuple[str, LoadFn]:
    wrk = shutil.which("wrk")
    if choice == "wrk" and not wrk:
        raise SystemExit("--client wrk: wrk is not on PATH (apt-get install wrk)")
    if wrk and choice in ("auto", "wrk"):
        return "wrk", lambda port, pgid, path, s, c: wrk_load(wrk, port, pgid, path, s, c)
    return "python", python_load


def _background_busy(pgid: int, seconds: float = 1.0) -> float | None:
    """Machine CPU in use by others (not the idle web tier) before the load starts: this
    box is shared, and a busy neighbour lowers every figure."""
    before = CpuSnapshot.take(pgid)
    time.sleep(seconds)
    server, machine = before.percent_until(CpuSnapshot.take(pgid))
    if machine is None:
        return None
    return round(max(0.0, machine - (server or 0.0)), 1)


def _report(
    machine: Machine,
    args: argparse.Namespace,
    results: list[EndpointResult],
    background: float | None,
) -> str:
    quiet = "-" if background is None else f"{background:.0f}%"
    lines = [
        f"machine: {machine.nproc} cores ({machine.cpu_model}), "
        f"{machine.implementation} {machine.python}, {machine.platform}",
        f"web: orchestrator web --workers {args.workers} --threads {args.threads}; "
        f"{args.connections} keep-alive connections, {args.seconds:g}s per endpoint",
        "",
        f"load generator: {results[0].client if results else '-'}; "
        f"CPU used by others before the load: {quiet}",
        "",
        f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}   "
        f"CPU (% of all cores): web / client / whole machine",
    ]

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for r in results:
        lines.append(
            f"{r.path:<10} {r.requests_per_second:>9.1f} {num(r.p50_ms, '.2f'):>8} "
            f"{num(r.p99_ms, '.2f'):>8} {r.errors:>7}   "
            f"{num(r.server_cpu_percent, '.0f')} / {num(r.client_cpu_percent, '.0f')} / "
            f"{num(r.machine_busy_percent, '.0f')}"
        )
        if r.error_samples:
            lines.append(f"{'':<10} errors seen: {', '.join(r.error_samples)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    client_name, load = _pick_client(args.client)
    machine = Machine.detect()
    results: list[EndpointResult] = []
    background: float | None = None
    workdir = Path(tempfile.mkdtemp(prefix="orch-bench-"))  # short: pg socket path limit
    try:
        with (
            _dependencies(workdir) as deps,
            _web(deps, workdir, args.workers, args.threads) as web,
        ):
            background = _background_busy(web.pgid)
            if background is not None and background > QUIET_WARN_PERCENT:
                _say(
                    f"warning: other processes use {background:.0f}% of the CPU; "
                    "the figures will be low"
                )
            for path in ENDPOINTS:
                if args.warmup > 0:
                    _say(f"warming up {path} for {args.warmup:g}s ...")
                    load(web.port, web.pgid, path, args.warmup, args.connections)
                _say(f"measuring {path} for {args.seconds:g}s with {client_name} ...")
                results.append(load(web.port, web.pgid, path, args.seconds, args.connections))
    finally:
        _STOPPING.set()
        _reap_strays(workdir)
        shutil.rmtree(workdir, ignore_errors=True)

    print(_report(machine, args, results, background), flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"http_{stamp}.json"
    document = {
        "benchmark": "http",
        "timestamp": stamp,
        "git_revision": _git_revision(),
        "machine": asdict(machine),
        "params": {
            "seconds": args.seconds,
            "connections": args.connections,
            "workers": args.workers,
            "threads": args.threads,
            "warmup": args.warmup,
            "client": client_name,
            "database": "external" if os.environ.get("DATABASE_URL") else "embedded",
            "redis": "external" if os.environ.get("REDIS_URL") else "embedded",
        },
        "background_busy_percent": background,
        "results": {r.path: asdict(r) for r in results},
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    try:
        return run(args)
    except KeyboardInterrupt:
        by = _INTERRUPTED_BY[0] if _INTERRUPTED_BY else "SIGINT"
        _say(f"http_bench: stopped by {by}; everything it started has been stopped")
        return 130
    except RuntimeError as exc:
        _say(f"http_bench: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
