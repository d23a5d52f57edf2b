"""The AI Pipeline's one call the orchestrator makes (PEERS.md): bootstrap a team.

`POST /api/v1/teams/{team}/bootstrap` with the internal admin token as bearer; any
2xx JSON object is success. Errors follow the same rule as every peer: connection
errors, timeouts, 429 and 5xx are transient, other 4xx permanent."""

from __future__ import annotations

from typing import Any

import httpx

from orchestrator.errors import PeerRejected, PeerUnavailable, status_is_transient
from orchestrator.redaction import redact_peer_text


class AiPipelineClient:
    def __init__(self, base_url: str, admin_token: str, *, timeout: float = 10.0) -> None:
        self._admin_token = admin_token
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            headers={"Authorization": f"Bearer {admin_token}"},
        )

    def close(self) -> None:
        self._http.close()

    def bootstrap(self, team_node_id: str) -> dict[str, Any]:
        path = f"/api/v1/teams/{team_node_id}/bootstrap"
        try:
            response = self._http.post(path)
        except httpx.TransportError as exc:
            raise PeerUnavailable(f"AI Pipeline unreachable: {type(exc).__name__}") from None
        if status_is_transient(response.status_code):
            raise PeerUnavailable(f"AI Pipeline answered {response.status_code} on bootstrap")
        if not 200 <= response.status_code < 300:
            # Masked before cutting: the admin token we sent must not come back (whole or
            # in part) in an error we store or log.
            detail = redact_peer_text(response.text[:2000], self._admin_token)[:200]
            raise PeerRejected(
                f"AI Pipeline answered {response.status_code} on bootstrap: {detail}"
            )
        try:
            data = response.json()
        except ValueError:
            raise PeerUnavailable("AI Pipeline sent invalid JSON on bootstrap") from None
        return data if isinstance(data, dict) else {"answer": data}
