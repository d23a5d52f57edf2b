"""`orchestrator dev`: the whole stack on one machine (SPEC §2).

Starts what is not configured — embedded PostgreSQL and Redis, stand-ins of the Config
Service, Agent Service, AI Pipeline and Kubernetes API — applies migrations, then runs
`orchestrator web`, `orchestrator worker` and `orchestrator scheduler` as separate
processes, exactly as the Procfile does. Ctrl-C or SIGTERM stops every process and
server it started; so does any of the three processes dying.

State (database, Redis file, generated secrets, logs, kubeconfig) lives in one folder.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

from orchestrator.db.migrations import apply
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.ai_pipeline import AiPipelineStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedUnavailable,
    free_port,
)
from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.devstack.standin import StandIn
from orchestrator.settings import Settings

READY_TIMEOUT_SECONDS = 60
DEMO_ROUTING = {
    "slack_channel_ids": ["C123"],
    "github_repos": ["acme/demo"],
    "pagerduty_service_ids": ["PSAMPLE1"],
    "incidentio_alert_source_ids": ["01SAMPLEA1ERTS0VRCE0000000"],
    "coralogix_team_names": ["sample"],
    "services": ["sample-app", "checkout"],
}
STOP_GRACE_SECONDS = 15
PROCESSES = ("web", "worker", "scheduler")


# The webhook secret variables (SPEC §3) and whether the source uses Standard Webhooks,
# whose secrets are `whsec_<base64 of the key>`.
WEBHOOK_SECRET_VARIABLES = {
    "SLACK_SIGNING_SECRET": False,
    "GITHUB_WEBHOOK_SECRET": False,
    "PAGERDUTY_WEBHOOK_SECRET": False,
    "INCIDENTIO_WEBHOOK_SECRET": True,
    "GENERIC_WEBHOOK_SECRET": True,
    "CORALOGIX_WEBHOOK_TOKEN": False,
}


def new_webhook_secret(variable: str) -> str:
    if WEBHOOK_SECRET_VARIABLES[variable]:
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    source = variable.split("_", 1)[0].lower()
    return f"dev-{source}-" + secrets.token_hex(16)


@dataclass
class DevSecrets:
    """Generated once per dev folder and kept, so the admin token survives restarts.
    `webhook_secrets` (variable → secret) signs every webhook source the user has not
    configured; a secrets.json written before it existed gains them on the next start."""

    admin_token: str
    internal_token: str
    internal_admin_token: str
    secret_key: str
    webhook_secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load_or_create(cls, path: Path) -> DevSecrets:
        if path.exists():
            known = {f.name for f in fields(cls)}
            data = json.loads(path.read_text())
            made = cls(**{k: v for k, v in data.items() if k in known})
        else:
            from cryptography.fernet import Fernet

            made = cls(
                admin_token="dev-admin-" + secrets.token_hex(16),
                internal_token="dev-internal-" + secrets.token_hex(16),
                internal_admin_token="dev-internal-admin-" + secrets.token_hex(16),
                secret_key=Fernet.generate_key().decode(),
            )
        missing = [v for v in WEBHOOK_SECRET_VARIABLES if not made.webhook_secrets.get(v)]
        for variable in missing:
            made.webhook_secrets[variable] = new_webhook_secret(variable)
        if missing or not path.exists():
            path.write_text(json.dumps(made.__dict__, indent=2))
            path.chmod(0o600)
        return made


@dataclass
class DevStack:
    settings: Settings
    dev_dir: str | Path
    port: int | None = None
    out: IO[str] = field(default_factory=lambda: sys.stdout)

    def __post_init__(self) -> None:
        self.dir = Path(self.dev_dir).resolve()
        self.port = self.port or self.settings.port
        self._stop = threading.Event()
        self._postgres: EmbeddedPostgres | None = None
        self._redis: EmbeddedRedis | None = None
        self._standins: list[StandIn] = []
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- entry ------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        started = time.monotonic()
        try:
            self._check_port_free()
            env = self._start_dependencies()
            self._start_processes(env)
            if not self._wait_ready():
                return 0 if self._stop.is_set() else 1
            self._banner(env, time.monotonic() - started)
            return self._supervise()
        except (PortInUse, EmbeddedUnavailable) as exc:
            print(f"orchestrator dev: {exc}", file=sys.stderr)
            return 2
        finally:
            self.stop()

    # -- dependencies -------------------------------------------------------------------
    def _start_dependencies(self) -> dict[str, str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        dev = DevSecrets.load_or_create(self.dir / "secrets.json")
        env = {k: v for k, v in os.environ.items() if k != "PORT"}
        self._say("starting dependencies ...")

        if not os.environ.get("DATABASE_URL"):
            self._postgres = EmbeddedPostgres(self.dir / "pg")
            env["DATABASE_URL"] = self._postgres.start()
        if not os.environ.get("REDIS_URL"):
            self._redis = EmbeddedRedis(self.dir / "redis" / "redis.db")
            env["REDIS_URL"] = self._redis.start()

        if not os.environ.get("CONFIG_SERVICE_URL"):
            config = ConfigServiceStandIn()
            config.add_super_admin(dev.admin_token, subject="dev-admin")
            config.add_super_admin(dev.internal_admin_token, subject="orchestrator-internal")
            # A demo team owning the identifiers `orchestrator webhook send` uses by
            # default, so a sample event goes all the way to the agent stand-in.
            config.seed_team("demo", "demo-team", routing=DEMO_ROUTING, name="Demo team")
            env["CONFIG_SERVICE_URL"] = self._standin(config)
        if not os.environ.get("AGENT_API_URL"):
            env["AGENT_API_URL"] = self._standin(AgentStandIn())
        if not os.environ.get("AI_PIPELINE_API_URL"):
            env["AI_PIPELINE_API_URL"] = self._standin(AiPipelineStandIn())
        if not os.environ.get("KUBECONFIG"):
            # dev never falls back to ~/.kube/config: unset means the stand-in.
            kube = KubernetesStandIn()
            self._standin(kube)
            kubeconfig = self.dir / "kubeconfig"
            kubeconfig.write_text(kube.kubeconfig(self.settings.k8s_namespace))
            env["KUBECONFIG"] = str(kubeconfig)

        env.setdefault("ORCHESTRATOR_SECRET_KEY", dev.secret_key)
        env.setdefault("ORCHESTRATOR_INTERNAL_TOKEN", dev.internal_token)
        env.setdefault("ORCHESTRATOR_INTERNAL_ADMIN_TOKEN", dev.internal_admin_token)
        env.setdefault("ORCHESTRATOR_ADMIN_TOKEN", dev.admin_token)
        env.setdefault("AI_PIPELINE_IMAGE", "incidentfox/ai-pipeline:dev")
        env.setdefault("AGENT_IMAGE", "incidentfox/agent:dev")
        env.setdefault("ORCHESTRATOR_URL", f"http://127.0.0.1:{self.port}")
        for variable in WEBHOOK_SECRET_VARIABLES:
            if not env.get(variable, "").strip():  # the user's own secret wins
                env[variable] = dev.webhook_secrets[variable]
        env.setdefault("ORCHESTRATOR_WEB_WORKERS", "2")
        env.setdefault("ORCHESTRATOR_WEB_THREADS", "8")
        env["ORCHESTRATOR_WORKER_METRICS_PORT"] = str(free_port())
        env["ORCHESTRATOR_SCHEDULER_METRICS_PORT"] = str(free_port())
        env.setdefault("ORCHESTRATOR_METRICS_HOST", "127.0.0.1")
        env["PYTHONUNBUFFERED"] = "1"

        self._say("applying migrations ...")
        apply(env["DATABASE_URL"])
        return env

    def _standin(self, standin: StandIn) -> str:
        standin.start()
        self._standins.append(standin)
        return standin.url

    # -- processes ------------------------------------------------------------------------
    def _start_processes(self, env: dict[str, str]) -> None:
        commands = {
            "web": ["web", "--bind", f"127.0.0.1:{self.port}"],
            "worker": ["worker", "--processes", "1", "--threads", "4"],
            "scheduler": ["scheduler"],
        }
        for name in PROCESSES:
            log = open(self.dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - child owns it
            self._children[name] = subprocess.Popen(
                [*_orchestrator_command(), *commands[name]],
                env={**env, "PORT": str(self.port)} if name == "web" else env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: we stop it and all its children
            )
            log.close()
        self._write_state(env)

    def _wait_ready(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/ready"
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self._stop.is_set():
            dead = self._dead_child()
            if dead:
                self._say(
                    f"orchestrator {dead} exited during start-up; see "
                    f"{self.dir / 'logs' / (dead + '.log')}"
                )
                return False
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        if not self._stop.is_set():
            self._say(
                f"web did not become ready within {READY_TIMEOUT_SECONDS}s; see "
                f"{self.dir / 'logs' / 'web.log'}"
            )
        return False

    def _supervise(self) -> int:
        while not self._stop.wait(0.5):
            dead = self._dead_child()
            if dead:
                self._say(
                    f"orchestrator {dead} exited unexpectedly; stopping everything "
                    f"(logs: {self.dir / 'logs' / (dead + '.log')})"
                )
                return 1
        return 0

    def _dead_child(self) -> str | None:
        for name, proc in self._children.items():
            if proc.poll() is not None:
                return name
        return None

    # -- stop -------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Stop every process group, then the stand-ins and embedded servers."""
        if self._children:
            self._say("stopping ...")
        for proc in self._children.values():
            # The leader only: gunicorn and dramatiq masters stop their own children
            # gracefully, and a second SIGTERM would make dramatiq kill them at once.
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self._children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # leftovers of the group, if any
            if proc.poll() is None:
                proc.wait(timeout=5)
        self._children.clear()
        for standin in self._standins:
            standin.stop()
        self._standins.clear()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        state = self.dir / "state.json"
        if state.exists():
            state.unlink()

    # -- output ---------------------------------------------------------------------------------
    def _write_state(self, env: dict[str, str]) -> None:
        state = {
            "url": f"http://127.0.0.1:{self.port}",
            "pids": {n: p.pid for n, p in self._children.items()},
            "redis_pid": self._redis.pid if self._redis else None,
            "ports": {
                "web": self.port,
                "worker_metrics": int(env["ORCHESTRATOR_WORKER_METRICS_PORT"]),
                "scheduler_metrics": int(env["ORCHESTRATOR_SCHEDULER_METRICS_PORT"]),
                "redis": self._redis.port if self._redis else None,
                "standins": {s.name: s.port for s in self._standins},
            },
        }
        (self.dir / "state.json").write_text(json.dumps(state, indent=2))

    def _banner(self, env: dict[str, str], seconds: float) -> None:
        url = f"http://127.0.0.1:{self.port}"
        token = env["ORCHESTRATOR_ADMIN_TOKEN"]
        standins = ", ".join(f"{s.name} {s.url}" for s in self._standins) or "none"
        self._say(
            f"\n  Orchestrator is ready at {url}   (started in {seconds:.1f}s)\n"
            f"  admin token:  {token}\n"
            f"  dashboard:    {url}/dashboard   (sign in with the admin token)\n"
            f"  worker metrics: http://127.0.0.1:{env['ORCHESTRATOR_WORKER_METRICS_PORT']}"
            f"/metrics   scheduler metrics: "
            f"http://127.0.0.1:{env['ORCHESTRATOR_SCHEDULER_METRICS_PORT']}/metrics\n"
            f"  stand-ins:    {standins}\n"
            f"  logs:         {self.dir / 'logs'}/{{web,worker,scheduler}}.log\n\n"
            f"  Try it:\n"
            f"    curl -s {url}/ready\n"
            f"    curl -s -H 'Authorization: Bearer {token}' {url}/api/v1/admin/jobs/queues\n"
            f"    curl -s -H 'Authorization: Bearer {token}' {url}/api/v1/admin/audit\n"
            f"    curl -s {url}/openapi.json | python -m json.tool | less\n"
            f"    curl -s -X POST -H 'Authorization: Bearer {token}'"
            f" -H 'Content-Type: application/json'"
            f' -d \'{{"schedule_type":"ingestion","cron_expression":"0 */6 * * *"}}\''
            f" {url}/api/v1/admin/orgs/demo/teams/demo-team/schedules\n"
            f"      (the CronJob appears in the Kubernetes stand-in within a second:"
            f" {self._kube_list_hint()})\n\n"
            f"  Provision a team (steps shown live, the team token printed once):\n"
            f"    ORCHESTRATOR_URL={url} ORCHESTRATOR_ADMIN_TOKEN={token}"
            f" {self._command()} provision --org demo --team new-team"
            f" --slack-channel C0NEW --default-schedule\n\n"
            f"  Send a signed sample webhook event (other sources: "
            f"orchestrator webhook send --help):\n"
            f"    {self._send_example(env)}\n"
            f"  dev webhook secrets of every source: {self.dir / 'secrets.json'}\n\n"
            f"  Ctrl-C stops everything.\n"
        )

    @staticmethod
    def _command() -> str:
        argv = _orchestrator_command()  # the one of this install, by name when on PATH
        return "orchestrator" if shutil.which("orchestrator") == argv[0] else shlex.join(argv)

    def _kube_list_hint(self) -> str:
        kube = next((s for s in self._standins if s.name == "kubernetes"), None)
        if kube is None:
            return "kubectl get cronjobs"
        return f"curl -s {kube.url}/apis/batch/v1/namespaces/{self.settings.k8s_namespace}/cronjobs"

    def _send_example(self, env: dict[str, str]) -> str:
        """A `webhook send` command that works as pasted: the dev URL, and the dev
        signing secret unless the user set their own (then it is in their shell)."""
        assignments = [f"ORCHESTRATOR_URL=http://127.0.0.1:{self.port}"]
        if not os.environ.get("SLACK_SIGNING_SECRET", "").strip():
            assignments.append(f"SLACK_SIGNING_SECRET={env['SLACK_SIGNING_SECRET']}")
        return " ".join(
            [
                *(shlex.quote(a) for a in assignments),
                self._command(),
                "webhook send slack --channel C123 --text hello",
            ]
        )

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _check_port_free(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", int(self.port or 0)))
            except OSError:
                raise PortInUse(
                    f"port {self.port} is already in use; choose another with --port or PORT"
                ) from None


class PortInUse(Exception):
    pass


def _orchestrator_command() -> list[str]:
    script = Path(sys.executable).with_name("orchestrator")
    if script.exists():
        return [str(script)]
    found = shutil.which("orchestrator")
    return [found] if found else [sys.executable, "-m", "cli.main"]


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
