"""Client of the Agent Service (PEERS.md): `POST {agent}/agents/{name}/run`.

HTTP 200 with `success:false` is a failed run (permanent); 404 is an unknown agent
(permanent); connection errors, timeouts, 429 and 5xx are transient. The call carries
the run id as `X-Correlation-ID`, which stays the same across retries, so the agent
can tell a redelivery from a new run.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import PeerRejected, PeerUnavailable, status_is_transient
from orchestrator.redaction import redact_peer_text


class AgentFailed(PeerRejected):
    reason = "agent_failed"


class AgentResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    success: bool
    agent: str | None = None
    run_id: str | None = None
    correlation_id: str | None = None
    duration_seconds: float | None = None
    output: Any = None
    error: str | None = None


class AgentClient:
    def __init__(self, *, client: httpx.Client | None = None) -> None:
        self._http = client or httpx.Client(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )

    def close(self) -> None:
        self._http.close()

    def run(
        self,
        base_url: str,
        agent_name: str,
        *,
        team_token: str,
        correlation_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> AgentResult:
        try:
            response = self._http.post(
                f"{base_url.rstrip('/')}/agents/{agent_name}/run",
                json=body,
                headers={
                    "X-IncidentFox-Team-Token": team_token,
                    "X-Correlation-ID": correlation_id,
                },
                # The agent may take up to its own timeout; give the socket a margin.
                timeout=httpx.Timeout(timeout + min(15.0, timeout * 0.1), connect=5.0),
            )
        except httpx.TransportError as exc:
            raise PeerUnavailable(f"agent unreachable: {type(exc).__name__}") from None
        if status_is_transient(response.status_code):
            raise PeerUnavailable(f"agent answered {response.status_code}")
        if response.status_code == 404:
            raise AgentFailed(f"unknown agent {agent_name}")
        if response.status_code != 200:
            raise AgentFailed(f"agent answered {response.status_code}")
        try:
            result = AgentResult.model_validate(response.json())
        except (ValueError, ValidationError):
            raise AgentFailed("agent sent an unreadable answer") from None
        if not result.success:
            error = redact_peer_text(result.error or "success:false", team_token)
            raise AgentFailed(f"agent run failed: {error}"[:1000])
        return result
