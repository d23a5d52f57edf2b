"""Stand-in of the Agent Service (PEERS.md): `POST /agents/{agent_name}/run`.

Records every call in `runs` (agent, headers, team token, correlation id, JSON body,
the status answered) and answers like the real service:

- 200 `{"success": true, "agent", "run_id", "correlation_id", "duration_seconds",
  "output"}` — without `output` when the request named `output_destinations` (the real
  agent posts there itself);
- 404 for an agent not in `known_agents` (when that set is given);
- **500** when `X-IncidentFox-Team-Token` is missing, or rejected by `valid_tokens` (a
  set, or a callable such as `ConfigServiceStandIn.is_team_credential`) — the real quirk;
- 422 without a `message`.

Behaviours, set from Python (`set_behaviour`) or over HTTP (`POST /_standin/behaviour`
with the same keys): `ok`; `fail_500`; `success_false` (200 with `"success": false,
"error"`, which is a failed run); `slow` (answers `ok` after `delay` seconds; only the
request's own thread sleeps). `times` limits a behaviour to that many runs, after which
the stand-in is back to `ok`. `GET /_standin/runs` lists the recorded runs.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.devstack.standin import Request, Response, StandIn

MODES = ("ok", "fail_500", "success_false", "slow")


@dataclass
class Behaviour:
    mode: str = "ok"
    delay: float = 0.0
    times: int | None = None
    error: str = "stand-in agent failure"


class AgentStandIn(StandIn):
    name = "agent"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state_lock = threading.Lock()
        self.runs: list[dict[str, Any]] = []
        self.behaviour = Behaviour()
        self.known_agents: set[str] | None = None
        self.valid_tokens: set[str] | Callable[[str], bool] | None = None
        super().__init__(host, port)

    def routes(self) -> None:
        self.route("POST", r"/agents/(?P<agent>[^/]+)/run", self._run)
        self.route("POST", r"/_standin/behaviour", self._set_behaviour)
        self.route("GET", r"/_standin/runs", self._get_runs)

    # -- Python API -------------------------------------------------------------------
    def set_behaviour(
        self,
        mode: str = "ok",
        *,
        delay: float = 0.0,
        times: int | None = None,
        error: str = "stand-in agent failure",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0")
        with self._state_lock:
            self.behaviour = Behaviour(mode, float(delay), times, error)

    def runs_snapshot(self) -> list[dict[str, Any]]:
        with self._state_lock:
            return copy.deepcopy(self.runs)

    def _take_behaviour(self) -> Behaviour:
        """The behaviour for this run; counts it against `times`."""
        with self._state_lock:
            current = self.behaviour
            if current.mode == "ok" or current.times is None:
                return Behaviour(current.mode, current.delay, None, current.error)
            if current.times <= 0:
                self.behaviour = Behaviour()
                return Behaviour()
            current.times -= 1
            taken = Behaviour(current.mode, current.delay, None, current.error)
            if current.times == 0:
                self.behaviour = Behaviour()
            return taken

    def _token_is_valid(self, token: str) -> bool:
        check = self.valid_tokens
        if check is None:
            return True
        if callable(check):
            return bool(check(token))
        return token in check

    # -- routes -----------------------------------------------------------------------
    def _run(self, req: Request) -> Response:
        started = time.monotonic()
        agent = req.params["agent"]
        try:
            body = req.json()
        except ValueError:
            body = None
        record: dict[str, Any] = {
            "agent": agent,
            "headers": dict(req.headers),
            "team_token": req.headers.get("x-incidentfox-team-token"),
            "correlation_id": req.headers.get("x-correlation-id"),
            "body": body,
            "received_at": time.time(),
            "status": None,
        }
        with self._state_lock:
            self.runs.append(record)
        response = self._answer(req, agent, body, started)
        with self._state_lock:
            record["status"] = response.status
        return response

    def _answer(self, req: Request, agent: str, body: Any, started: float) -> Response:
        known = self.known_agents
        if known is not None and agent not in known:
            return Response(404, {"detail": f"Agent '{agent}' not found"})
        token = req.headers.get("x-incidentfox-team-token")
        if not token or not self._token_is_valid(token):
            return Response(500, {"detail": "Internal Server Error"})
        if not isinstance(body, dict) or not body.get("message"):
            return Response(
                422,
                {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["body", "message"],
                            "msg": "Field required",
                        }
                    ]
                },
            )
        behaviour = self._take_behaviour()
        if behaviour.mode == "fail_500":
            return Response(500, {"detail": "Internal Server Error"})
        if behaviour.mode == "slow" and behaviour.delay > 0:
            time.sleep(behaviour.delay)
        answer: dict[str, Any] = {
            "success": True,
            "agent": agent,
            "run_id": uuid.uuid4().hex,
            "correlation_id": req.headers.get("x-correlation-id"),
            "duration_seconds": round(time.monotonic() - started, 3),
        }
        if behaviour.mode == "success_false":
            answer["success"] = False
            answer["error"] = behaviour.error
            return Response(200, answer)
        if not body.get("output_destinations"):
            message = str(body["message"])[:200]
            answer["output"] = f"stand-in agent {agent} handled: {message}"
        return Response(200, answer)

    def _set_behaviour(self, req: Request) -> Response:
        try:
            options = req.json() or {}
            if not isinstance(options, dict):
                raise ValueError("a JSON object is expected")
            self.set_behaviour(**options)
        except (ValueError, TypeError) as exc:
            return Response(400, {"detail": str(exc)})
        return Response(200, {"ok": True})

    def _get_runs(self, req: Request) -> Response:
        return Response(200, {"runs": self.runs_snapshot()})
