"""`orchestrator` — one console script for every process (SPEC §2).

Each subcommand checks the variables its process needs first; a missing or invalid
one ends the process with one line naming it and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence

from orchestrator.settings import (
    InvalidSetting,
    MissingSetting,
    Role,
    Settings,
    load_settings,
    secret_masker,
)


def _settings(role: Role | None) -> Settings:
    settings = load_settings()
    if role is not None:
        settings.require(role)
    return settings


def _auto_migrate(settings: Settings) -> None:
    if settings.orchestrator_auto_create_tables:
        from orchestrator.db.migrations import apply

        apply(settings.dsn)


def cmd_migrate(args: argparse.Namespace) -> int:
    from orchestrator.db.migrations import apply

    settings = _settings("migrate")
    result = apply(settings.dsn)
    if result.applied:
        print(f"applied {len(result.applied)} migration(s): {', '.join(result.applied)}")
    else:
        print(f"schema is current ({result.already} migration(s) applied)")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    settings = _settings("web")
    _auto_migrate(settings)
    from orchestrator.db.migrations import migration_ids

    migration_ids()  # /ready compares against these: fail now, in one line, if absent
    from web.server import WebServer, prepare_metrics_dir

    bound_port = int(args.bind.rsplit(":", 1)[1]) if args.bind else settings.port
    prepare_metrics_dir(bound_port)
    WebServer(
        settings,
        bind=args.bind,
        workers=args.workers or settings.orchestrator_web_workers,
        threads=args.threads or settings.orchestrator_web_threads,
    ).run()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings("worker")
    _auto_migrate(settings)
    from orchestrator.queues import QUEUES

    queues = [q.strip() for q in (args.queues or ",".join(QUEUES)).split(",") if q.strip()]
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        raise InvalidSetting(
            f"--queues: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}"
        )
    port = settings.worker_metrics_port
    # The Prometheus middleware reads these at import: set them before dramatiq starts,
    # one directory per port so two worker masters on a host never share one (NOTES).
    prom_dir = os.path.join(tempfile.gettempdir(), f"orchestrator-worker-metrics-{port}")
    shutil.rmtree(prom_dir, ignore_errors=True)
    os.makedirs(prom_dir, exist_ok=True)
    env = {
        **os.environ,
        "dramatiq_prom_port": str(port),
        "dramatiq_prom_host": settings.orchestrator_metrics_host,
        "dramatiq_prom_db": prom_dir,
        "PROMETHEUS_MULTIPROC_DIR": prom_dir,
        "dramatiq_worker_timeout": os.environ.get("dramatiq_worker_timeout", "100"),
    }
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.app",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--worker-shutdown-timeout",
        str(settings.orchestrator_worker_shutdown_timeout_seconds * 1000),
        "--queues",
        *queues,
    ]
    os.execve(sys.executable, argv, env)
    return 0  # pragma: no cover - execve does not return


def cmd_scheduler(args: argparse.Namespace) -> int:
    settings = _settings("scheduler")
    _auto_migrate(settings)
    from orchestrator.db.pool import create_pool
    from orchestrator.logs import configure_logging
    from scheduler.main import SchedulerMetrics, default_tasks, run

    configure_logging("scheduler", settings.orchestrator_log_level, secret_masker(settings))
    metrics = SchedulerMetrics()
    tasks = default_tasks(settings, metrics)  # no cluster configuration: exit 2 here
    pool = create_pool(settings, name="scheduler", min_size=1)
    pool.open(wait=False)
    return run(settings, pool, tasks, metrics)


def cmd_dev(args: argparse.Namespace) -> int:
    from orchestrator.devstack.runner import DevStack

    settings = _settings(None)
    return DevStack(
        settings, dev_dir=args.dir or settings.orchestrator_dev_dir, port=args.port
    ).run()


def cmd_webhook_send(args: argparse.Namespace) -> int:
    from cli.webhook_send import run

    return run(args)


def cmd_provision(args: argparse.Namespace) -> int:
    from cli.provision import run

    return run(args)


def _bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="IncidentFox orchestrator: webhooks, provisioning, schedules, audit.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, help_: str, fn: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        return p

    add(
        "migrate",
        "apply pending database migrations (safe from several replicas at once)",
        cmd_migrate,
    )

    web = add("web", "serve the HTTP API under gunicorn on $PORT (default 8070)", cmd_web)
    web.add_argument(
        "--workers",
        type=int,
        help="gunicorn worker processes (default $ORCHESTRATOR_WEB_WORKERS or 2)",
    )
    web.add_argument(
        "--threads", type=int, help="threads per worker (default $ORCHESTRATOR_WEB_THREADS or 8)"
    )
    web.add_argument("--bind", type=_bind, help="host:port to bind instead of 0.0.0.0:$PORT")

    worker = add(
        "worker", "run a Dramatiq worker; metrics on $ORCHESTRATOR_WORKER_METRICS_PORT", cmd_worker
    )
    worker.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    worker.add_argument("--threads", type=int, default=8, help="threads per process (default 8)")
    worker.add_argument(
        "--queues",
        help="comma-separated queues to consume (default: webhooks,agents,provisioning,default)",
    )

    add(
        "scheduler",
        "run the scheduler (reconcile, relay, retention) under an advisory lock",
        cmd_scheduler,
    )

    dev = add(
        "dev",
        "run the whole stack locally: embedded Postgres/Redis, peer stand-ins, "
        "web + worker + scheduler",
        cmd_dev,
    )
    dev.add_argument(
        "--dir", help="state folder (default $ORCHESTRATOR_DEV_DIR or .orchestrator-dev)"
    )
    dev.add_argument("--port", type=int, help="web port (default $PORT or 8070)")

    from cli.webhook_send import add_webhook_commands

    add_webhook_commands(sub, cmd_webhook_send)

    from cli.provision import add_provision_commands

    add_provision_commands(sub, cmd_provision)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (MissingSetting, InvalidSetting) as exc:
        print(f"orchestrator {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
