"""A small threaded HTTP server that the peer stand-ins are built on.

Each stand-in is a real HTTP server on loopback, so the orchestrator reaches it exactly
as it reaches the real peer. Routes are `(method, regex) → handler`. Every stand-in
accepts injected faults (latency, an error status, a dropped connection), set from
Python in tests or over HTTP at `POST /_standin/faults` by a harness in another process.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None


@dataclass
class Response:
    status: int
    body: Any = None  # serialized as JSON; bytes are sent as they are (already JSON)
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class Faults:
    """Injected misbehaviour. `status`/`drop` apply to the next `times` requests (None:
    until cleared) whose path matches `path` (a regex; None: every path)."""

    latency: float = 0.0
    status: int | None = None
    drop: bool = False
    times: int | None = None
    path: str | None = None

    def matches(self, path: str) -> bool:
        return self.path is None or re.search(self.path, path) is not None


class _Server(ThreadingHTTPServer):
    """A real peer listens with a production backlog; socketserver's default of 5 made
    ten simultaneous requests (a burst of admin calls, each verifying its token) overflow
    the accept queue on a busy machine: the dropped SYN is retried after 1 s, then 3 s,
    past the peer timeout, and the orchestrator answered 503 for a healthy peer."""

    request_queue_size = 128
    daemon_threads = True


class StandIn:
    """Base of every stand-in: routing, JSON, faults, a record of calls."""

    name = "standin"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults = Faults()
        self.calls: list[Request] = []
        self._lock = threading.Lock()
        self.routes()
        self.route("POST", r"/_standin/faults", self._set_faults)
        self.route("GET", r"/_standin/calls", self._get_calls)
        self._server = _Server((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    # -- definition -----------------------------------------------------------------
    def routes(self) -> None:
        """Subclasses add their routes here."""

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    # -- lifecycle ------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"standin-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() of a never-started server blocks forever
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def set_faults(self, **kwargs: Any) -> None:
        with self._lock:
            self.faults = Faults(**kwargs)

    def clear_faults(self) -> None:
        self.set_faults()

    # -- dispatch -------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        if not req.path.startswith("/_standin/"):
            with self._lock:
                self.calls.append(req)
                faults = self.faults
                active = faults.matches(req.path) and (faults.times is None or faults.times > 0)
                if active and (faults.status or faults.drop) and faults.times is not None:
                    faults.times -= 1
            if faults.latency and faults.matches(req.path):
                time.sleep(faults.latency)
            if active and faults.drop:
                raise ConnectionAbortedError("fault: dropped connection")
            if active and faults.status:
                return self.fault_response(req, faults.status)
        allowed = []
        for method, pattern, handler in self._routes:
            match = pattern.match(req.path)
            if match:
                if method != req.method:
                    allowed.append(method)
                    continue
                req.params = match.groupdict()
                return handler(req)
        if allowed:
            return self.method_not_allowed(req, allowed)
        return self.not_found(req)

    # Hooks for a peer whose errors have another shape than FastAPI's `{"detail": ...}`.
    def fault_response(self, req: Request, status: int) -> Response:
        return Response(status, {"detail": "injected fault"})

    def method_not_allowed(self, req: Request, allowed: list[str]) -> Response:
        return Response(405, {"detail": "Method Not Allowed"})

    def not_found(self, req: Request) -> Response:
        return Response(404, {"detail": "Not Found"})

    def _set_faults(self, req: Request) -> Response:
        self.set_faults(**(req.json() or {}))
        return Response(200, {"ok": True})

    def _get_calls(self, req: Request) -> Response:
        with self._lock:
            calls = [{"method": c.method, "path": c.path} for c in self.calls]
        return Response(200, {"calls": calls})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Answer at once: with Nagle on, every keep-alive call waits ~40 ms for a
            # delayed ACK.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    resp = standin.dispatch(req)
                except ConnectionAbortedError:
                    self.close_connection = True
                    self.connection.close()
                    return
                if resp.body is None:
                    payload = b""
                elif isinstance(resp.body, bytes):  # already JSON
                    payload = resp.body
                else:
                    payload = json.dumps(resp.body).encode()
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                request_id = req.headers.get("x-request-id")
                if request_id:
                    self.send_header("X-Request-Id", request_id)
                for key, value in resp.headers.items():
                    self.send_header(key, value)
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout is shorter than an injected
                    # latency): nothing to answer, and nothing worth a traceback.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return _Handler
