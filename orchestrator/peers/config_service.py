"""Client of the Config Service (PEERS.md "Config Service").

This issue needs `GET /api/v1/auth/me`; later capabilities add their calls here.
"""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import PeerRejected, PeerUnavailable, status_is_transient


class Principal(BaseModel):
    """What `/api/v1/auth/me` says about a credential. All keys are always present."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: Literal["admin", "team"] | str
    auth_kind: str | None = None
    org_id: str | None = None
    team_node_id: str | None = None
    subject: str | None = None
    email: str | None = None
    can_write: bool | None = None
    permissions: tuple[str, ...] = ()
    visitor_session_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this principal (never the token)."""
        who = self.email or self.subject or self.auth_kind or "unknown"
        return f"{self.role}:{who}" + (f"@{self.org_id}" if self.org_id else "")


class InvalidCredential(PeerRejected):
    """The Config Service does not accept this credential (401)."""

    reason = "invalid_credential"


class ConfigServiceClient:
    """Thin synchronous client. One instance per process; it owns an `httpx.Client`
    with explicit timeouts so that no call can block a worker thread indefinitely."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self._http = client or httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    def close(self) -> None:
        self._http.close()

    def auth_me(self, token: str, *, request_id: str | None = None) -> Principal:
        """The principal behind `token`; `InvalidCredential` on 401, `PeerUnavailable`
        when the service is unreachable, slow or failing."""
        headers = {"Authorization": f"Bearer {token}"}
        if request_id:
            headers["X-Request-Id"] = request_id
        try:
            response = self._http.get("/api/v1/auth/me", headers=headers)
        except httpx.TransportError as exc:
            raise PeerUnavailable(f"config service unreachable: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise InvalidCredential(_detail(response) or "invalid token")
        if status_is_transient(response.status_code):
            raise PeerUnavailable(f"config service answered {response.status_code}")
        if response.status_code != 200:
            raise PeerRejected(f"config service answered {response.status_code}")
        try:
            return Principal.model_validate(response.json())
        except (ValueError, ValidationError):
            raise PeerUnavailable("config service sent an unreadable /auth/me answer") from None


def _detail(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail else None
