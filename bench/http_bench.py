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
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import _stack
from _stack import (
    HOST,
    QUIET_WARN_PERCENT,
    STOPPING,
    CpuSample,
    Machine,
    RequestSpec,
    Tracked,
    background_busy,
    backing_servers,
    bench_main,
    dependencies,
    git_revision,
    nproc,
    percentile,
    reap_strays,
    say,
    web,
    write_result,
)

ENDPOINTS = ("/health", "/ready")


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


def python_load(
    port: int, pgid: int, path: str, seconds: float, connections: int
) -> EndpointResult:
    run = _stack.python_load(
        port, RequestSpec("GET", path), seconds, connections, {"web": Tracked(pgids={pgid})}
    )
    pct = run.before.percent_until(run.after)
    return EndpointResult(
        path=path,
        seconds=run.seconds,
        connections=connections,
        requests=run.ok + len(run.errors),
        errors=len(run.errors),
        requests_per_second=round(run.ok / seconds, 1),
        p50_ms=percentile(run.latencies, 50),
        p99_ms=percentile(run.latencies, 99),
        client=f"python ({run.processes} processes x http.client keep-alive)",
        client_cpu_percent=round(100.0 * run.client_cpu_seconds / (seconds * nproc()), 1),
        server_cpu_percent=pct.get("web"),
        machine_busy_percent=pct.get("machine"),
        error_samples=sorted(set(run.errors))[:5],
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
    threads = max(1, min(nproc(), connections))
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
    tracked = {"web": Tracked(pgids={pgid})}
    before = CpuSample.take(tracked)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = CpuSample.take(tracked)
    pct = before.percent_until(after)
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
        client_cpu_percent=round(100.0 * wrk_cpu / ((after.at - before.at) * nproc()), 1),
        server_cpu_percent=pct.get("web"),
        machine_busy_percent=pct.get("machine"),
    )


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
            dependencies(workdir) as deps,
            web(deps, workdir, args.workers, args.threads) as tier,
        ):
            background = background_busy({"web": Tracked(pgids={tier.pgid})})
            if background is not None and background > QUIET_WARN_PERCENT:
                say(
                    f"warning: other processes use {background:.0f}% of the CPU; "
                    "the figures will be low"
                )
            for path in ENDPOINTS:
                if args.warmup > 0:
                    say(f"warming up {path} for {args.warmup:g}s ...")
                    load(tier.port, tier.pgid, path, args.warmup, args.connections)
                say(f"measuring {path} for {args.seconds:g}s with {client_name} ...")
                results.append(load(tier.port, tier.pgid, path, args.seconds, args.connections))
    finally:
        STOPPING.set()
        reap_strays(workdir)
        shutil.rmtree(workdir, ignore_errors=True)

    print(_report(machine, args, results, background), flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "benchmark": "http",
        "timestamp": stamp,
        "git_revision": git_revision(),
        "machine": asdict(machine),
        "params": {
            "seconds": args.seconds,
            "connections": args.connections,
            "workers": args.workers,
            "threads": args.threads,
            "warmup": args.warmup,
            "client": client_name,
            **backing_servers(),
        },
        "background_busy_percent": background,
        "results": {r.path: asdict(r) for r in results},
    }
    write_result("http", stamp, document)
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_main("http_bench", run, _parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
