"""The reconciler at scale: pass time, API calls and scheduler memory for 1,000, 10,000
and 50,000 schedules, and the rate of creating 10,000 CronJobs from scratch.

    .venv/bin/python bench/reconcile_bench.py [--sizes 1000,10000,50000]
        [--create 10000] [--passes 3]

Starts embedded PostgreSQL and Redis (unless `DATABASE_URL` / `REDIS_URL` are set), the
Kubernetes API stand-in in this process (served over HTTP, so the scheduler reaches it
through the official client exactly as it reaches a cluster) and, for each size, a fresh
`orchestrator scheduler` process with a long interval, so that only the passes this
script triggers (`pg_notify`, as a schedule change does) run.

For each size: the rows are inserted; for the `--create` size the first pass creates
every CronJob (the creation rate), for the others the CronJobs and the rows' recorded
generations are put in place directly (already converged). Then `--passes` converged
passes run, and for each the script reads the scheduler's own report (its JSON log
line) and counts, at the stand-in, the LIST calls and the writes the pass made. Memory
is the scheduler's resident set after the passes and its peak (`VmHWM`).

Prints a table and writes it as JSON to `bench/results/reconcile_<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench._stack import (
    RESULTS_DIR,
    Dependencies,
    Machine,
    base_env,
    dependencies,
    free_port,
    install_signal_handlers,
    orchestrator_command,
    say,
    start_group,
    stop_group,
    tail,
)
from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.schedules import store
from orchestrator.schedules.cronjob import CronJobTemplate
from orchestrator.schedules.reconcile import Reconciler

NAMESPACE = "incidentfox"
IMAGE = "ai-pipeline:bench"
CONFIG_URL = "http://127.0.0.1:9"
TEMPLATE = CronJobTemplate(namespace=NAMESPACE, image=IMAGE, config_service_url=CONFIG_URL)


def insert_rows(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE orchestrator_pipeline_schedules")
        conn.execute(
            "INSERT INTO orchestrator_pipeline_schedules"
            " (id, org_id, team_node_id, schedule_type, cron_expression, timezone)"
            " SELECT gen_random_uuid(), 'org-' || (i / 100), 'team-' || i, 'ingestion',"
            " (i %% 60) || ' * * * *', 'UTC' FROM generate_series(1, %s) AS i",
            (n,),
        )


def converge_directly(dsn: str, kube: KubernetesStandIn) -> None:
    """What a converged cluster looks like: every object in place, every row synced
    with the generation it was written at."""
    reconciler = Reconciler(None, TEMPLATE)  # type: ignore[arg-type]  # manifests only
    updates: list[tuple[int, str, Any]] = []
    with psycopg.connect(dsn) as conn:
        for row in store.all_rows(conn):
            manifest = reconciler.manifest(row)
            kube.put_object("CronJob", NAMESPACE, manifest)
            stored = kube.get_object("CronJob", NAMESPACE, manifest["metadata"]["name"])
            assert stored is not None
            updates.append(
                (int(stored["metadata"]["generation"]), stored["metadata"]["name"], row.id)
            )
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE orchestrator_pipeline_schedules SET k8s_generation = %s,"
                " k8s_cronjob_name = %s, sync_status = 'synced', last_synced_at = now()"
                " WHERE id = %s",
                updates,
            )


def reports(log_path: Path) -> list[dict[str, Any]]:
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"tick ran"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        reconcile = (entry.get("tasks") or {}).get("reconcile")
        if isinstance(reconcile, dict):
            found.append(reconcile)
    return found


def wait_reports(log_path: Path, count: int, timeout: float, proc: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = reports(log_path)
        if len(got) >= count:
            return got
        if proc.poll() is not None:
            raise RuntimeError(f"scheduler exited {proc.returncode}:\n{tail(log_path)}")
        time.sleep(0.05)
    raise RuntimeError(f"no reconcile report #{count} within {timeout}s:\n{tail(log_path)}")


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def counts(kube: KubernetesStandIn) -> tuple[int, int]:
    lists = sum(1 for c in kube.calls if c.method == "GET" and c.path.endswith("/cronjobs"))
    return lists, sum(kube.writes.values())


def run_size(
    deps: Dependencies,
    kube: KubernetesStandIn,
    kubeconfig: Path,
    workdir: Path,
    n: int,
    *,
    create: bool,
    passes: int,
) -> dict[str, Any]:
    dsn = deps.env["DATABASE_URL"]
    kube.reset()
    kube.calls.clear()
    say(f"{n:,} schedules: inserting rows ...")
    insert_rows(dsn, n)
    if not create:
        say(f"{n:,} schedules: putting converged CronJobs in place ...")
        converge_directly(dsn, kube)
    log_path = workdir / f"scheduler-{n}.log"
    env = base_env(
        deps,
        {
            "KUBECONFIG": str(kubeconfig),
            "K8S_NAMESPACE": NAMESPACE,
            "AI_PIPELINE_IMAGE": IMAGE,
            "CONFIG_SERVICE_URL": CONFIG_URL,
            "ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS": "3600",
            "ORCHESTRATOR_SCHEDULER_METRICS_PORT": str(free_port()),
            "ORCHESTRATOR_METRICS_HOST": "127.0.0.1",
        },
    )
    proc = start_group([*orchestrator_command(), "scheduler"], env, log_path)
    result: dict[str, Any] = {"schedules": n}
    try:
        first = wait_reports(log_path, 1, 900, proc)[0]
        if create:
            result["create"] = {
                "created": first["created"],
                "seconds": round(first["duration_seconds"], 2),
                "per_second": round(first["created"] / first["duration_seconds"], 1),
                "errors": first["errors"],
            }
            say(
                f"  created {first['created']:,} CronJobs in {first['duration_seconds']:.1f} s"
                f" ({result['create']['per_second']:,.0f}/s, {first['errors']} errors)"
            )
        converged = []
        for i in range(passes):
            lists_before, writes_before = counts(kube)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_notify('orchestrator_schedules', '')")
            report = wait_reports(log_path, 2 + i, 300, proc)[-1]
            lists_after, writes_after = counts(kube)
            converged.append(
                {
                    "seconds": round(report["duration_seconds"], 3),
                    "list_seconds": round(report["list_seconds"], 3),
                    "list_calls": lists_after - lists_before,
                    "writes": writes_after - writes_before,
                    "rows_recorded": report["rows_recorded"],
                    "unchanged": report["unchanged"],
                }
            )
        result["converged_passes"] = converged
        result["memory_kib"] = memory_kib(proc.pid)
    finally:
        stop_group(proc)
    best = min(p["seconds"] for p in converged)
    worst = max(p["seconds"] for p in converged)
    mem = result["memory_kib"]
    say(
        f"  converged pass {best:.2f}-{worst:.2f} s, LIST calls"
        f" {converged[-1]['list_calls']}, writes {sum(p['writes'] for p in converged)},"
        f" scheduler RSS {mem['VmRSS'] / 1024:.0f} MiB (peak {mem['VmHWM'] / 1024:.0f} MiB)"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--create", type=int, default=10000, help="size created from scratch")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="orch-reconcile-bench-"))
    kube = KubernetesStandIn().start()
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(kube.kubeconfig(NAMESPACE))
    results: list[dict[str, Any]] = []
    try:
        with dependencies(workdir, config_service=False) as deps:
            for n in sizes:
                results.append(
                    run_size(
                        deps,
                        kube,
                        kubeconfig,
                        workdir,
                        n,
                        create=n == args.create,
                        passes=args.passes,
                    )
                )
    finally:
        kube.stop()
    summary = {"machine": Machine.detect().__dict__, "results": results}
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"reconcile_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
