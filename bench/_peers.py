"""The peers of the webhook benchmark in a process of their own, so that their CPU is
not charged to the benchmark or the stack: the Config Service stand-in (the internal
admin token registered as a super admin, one team whose routing owns the benchmark's
repository) and the Agent stand-in (team tokens checked against the Config Service,
as the real agent does). Both are the devstack stand-ins unchanged except that their
sockets set TCP_NODELAY (see `_without_nagle`).

    python bench/_peers.py --admin-token T --org acme --team payments \
                           --github-repo Codertocat/Hello-World [--max-seconds 3600]

Prints one JSON line `{"config_url", "agent_url", "pid"}` on stdout once both listen on
127.0.0.1, then serves until SIGTERM / SIGINT, until its parent goes away, or for
`--max-seconds` at most. Besides the stand-ins' own routes, the agent answers
`GET /_bench/received?since=N` (correlation id, `time.time()` when the call arrived,
status answered — from the N-th recorded run on) and `GET /_bench/stats` (calls per
path of both stand-ins).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from types import FrameType
from typing import Any

from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.standin import Request, Response

PARENT_POLL_SECONDS = 0.5


def _without_nagle(handler: type[BaseHTTPRequestHandler]) -> type[BaseHTTPRequestHandler]:
    """The stand-ins' handler with TCP_NODELAY. `http.server` writes the headers and the
    body of a response in two sends; with Nagle on, the body waits for the client's
    delayed ACK — 40 ms per call on Linux, which no real peer (uvicorn, gunicorn set
    TCP_NODELAY) costs. Measured here: ~46 ms per Config Service call with Nagle, ~2 ms
    without."""
    return type(f"{handler.__name__}NoDelay", (handler,), {"disable_nagle_algorithm": True})


class BenchConfigService(ConfigServiceStandIn):
    """The Config Service stand-in, unchanged but for TCP_NODELAY."""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _without_nagle(super()._handler_class())


class BenchAgent(AgentStandIn):
    """The Agent stand-in, unchanged but for TCP_NODELAY, plus two read-only routes for
    the benchmark."""

    def __init__(self, config: ConfigServiceStandIn) -> None:
        self._config = config
        super().__init__()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _without_nagle(super()._handler_class())

    def routes(self) -> None:
        super().routes()
        self.route("GET", r"/_bench/received", self._received)
        self.route("GET", r"/_bench/stats", self._stats)

    def _received(self, req: Request) -> Response:
        since = int((req.query.get("since") or ["0"])[0])
        with self._state_lock:
            runs = [[r["correlation_id"], r["received_at"], r["status"]] for r in self.runs[since:]]
        return Response(200, {"since": since, "runs": runs})

    def _stats(self, req: Request) -> Response:
        with self._config._lock:
            config_calls = Counter(f"{c.method} {c.path}" for c in self._config.calls)
        with self._lock:
            agent_calls = Counter(f"{c.method} {c.path}" for c in self.calls)
        return Response(200, {"config_service": dict(config_calls), "agent": dict(agent_calls)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--org", default="acme")
    parser.add_argument("--team", default="payments")
    parser.add_argument("--github-repo", required=True)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    parent = os.getppid()
    config = BenchConfigService()
    config.add_super_admin(args.admin_token, subject="orchestrator-internal")
    config.seed_team(args.org, args.team, routing={"github_repos": [args.github_repo]})
    agent = BenchAgent(config)
    agent.valid_tokens = config.is_team_credential
    started: list[Any] = []
    try:
        started.append(config.start())
        started.append(agent.start())
        line = {"config_url": config.url, "agent_url": agent.url, "pid": os.getpid()}
        print(json.dumps(line), flush=True)
        deadline = time.monotonic() + args.max_seconds
        while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
            stop.wait(PARENT_POLL_SECONDS)
    finally:
        for standin in reversed(started):
            standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
