"""Stand-in of the Config Service (PEERS.md), for `orchestrator dev` and the tests.

It speaks the real contract, quirks included: every success is 200, errors are
`{"detail": ...}`, `/api/v1/auth/me` answers with all keys present and says
`Missing Bearer token` / `Invalid token` on 401. Credentials are registered with
`add_super_admin`, `add_org_admin`, `add_team_token` and `add_principal` (fine-grained
OIDC admins). Later capabilities grow it with nodes, config, tokens and routing.
"""

from __future__ import annotations

import secrets
from typing import Any

from orchestrator.devstack.standin import Request, Response, StandIn

_PRINCIPAL_KEYS = (
    "role",
    "auth_kind",
    "org_id",
    "team_node_id",
    "subject",
    "email",
    "can_write",
    "permissions",
    "visitor_session_id",
)


class ConfigServiceStandIn(StandIn):
    name = "config-service"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.principals: dict[str, dict[str, Any]] = {}
        super().__init__(host, port)

    def routes(self) -> None:
        self.route("GET", r"/api/v1/auth/me", self._auth_me)
        self.route("GET", r"/health", lambda _r: Response(200, {"status": "healthy"}))

    # -- credentials ------------------------------------------------------------------
    def add_principal(self, token: str, **principal: Any) -> str:
        record = dict.fromkeys(_PRINCIPAL_KEYS)
        record.update(principal)
        record["permissions"] = list(record.get("permissions") or [])
        self.principals[token] = record
        return token

    def add_super_admin(self, token: str | None = None, *, subject: str = "super-admin") -> str:
        token = token or secrets.token_urlsafe(24).replace(".", "_")
        if "." in token:
            raise ValueError("a super-admin token has no '.' in it")
        return self.add_principal(
            token,
            role="admin",
            auth_kind="admin_token",
            subject=subject,
            can_write=True,
            permissions=["admin:*"],
        )

    def add_org_admin(self, org_id: str, token: str | None = None) -> str:
        token = token or f"{secrets.token_hex(8)}.{secrets.token_urlsafe(24)}"
        return self.add_principal(
            token,
            role="admin",
            auth_kind="admin_token",
            org_id=org_id,
            subject=f"org-admin:{org_id}",
            can_write=True,
            permissions=["admin:*"],
        )

    def add_team_token(self, org_id: str, team_node_id: str) -> str:
        token = f"{secrets.token_hex(16)}.{secrets.token_urlsafe(24)}"
        return self.add_principal(
            token,
            role="team",
            auth_kind="team_token",
            org_id=org_id,
            team_node_id=team_node_id,
            subject=f"team:{team_node_id}",
            can_write=True,
            permissions=["team:read", "team:write"],
        )

    def revoke(self, token: str) -> None:
        self.principals.pop(token, None)

    # -- routes -----------------------------------------------------------------------
    def _auth_me(self, req: Request) -> Response:
        token = req.bearer()
        if not token:
            return Response(401, {"detail": "Missing Bearer token"})
        principal = self.principals.get(token)
        if principal is None:
            return Response(401, {"detail": "Invalid token"})
        return Response(200, dict(principal))
