"""Client of the Config Service (PEERS.md "Config Service").

This issue needs `GET /api/v1/auth/me`; later capabilities add their calls here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx
from cachetools import TTLCache
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from orchestrator.errors import PeerRejected, PeerUnavailable, status_is_transient
from orchestrator.redaction import redact_peer_text


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


class RoutingMatch(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    found: bool
    org_id: str | None = None
    team_node_id: str | None = None
    matched_by: str | None = None
    matched_value: str | None = None
    tried: list[str] = []


class EffectiveConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    node_id: str | None = None
    effective_config: dict[str, Any] = {}


class TeamTokenEntry(BaseModel):
    """One row of a team's own token list. It does not say whether the token expired."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token_id: str
    revoked_at: str | None = None


class OrgTokenEntry(BaseModel):
    """One row of the org's token list, the only list that knows expiry."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token_id: str
    team_node_id: str | None = None
    status: str | None = None


_TEAM_TOKENS = TypeAdapter(list[TeamTokenEntry])
_ORG_TOKENS = TypeAdapter(list[OrgTokenEntry])


class InvalidCredential(PeerRejected):
    """The Config Service does not accept this credential (401)."""

    reason = "invalid_credential"


class ConfigServiceClient:
    """Thin synchronous client. One instance per process; it owns an `httpx.Client`
    with explicit timeouts so that no call can block a worker thread indefinitely."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
        admin_token: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._admin_token = admin_token
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


INTERNAL = {"X-Internal-Service": "orchestrator"}


class ConfigServiceWorkerCalls:
    """The calls workers make with `ORCHESTRATOR_INTERNAL_ADMIN_TOKEN` (admin routes)
    or `X-Internal-Service` (internal routes). Every answer is read through a model.

    Answers are cached per process for `cache_seconds` (routing, effective config) and
    for ten minutes (impersonation tokens, valid fifteen): without it three of the four
    HTTP calls an event costs would repeat for every event of a busy team. A routing or
    config change therefore reaches the workers within `cache_seconds`.
    """

    IMPERSONATION_SECONDS = 600.0

    def __init__(
        self, client: ConfigServiceClient, admin_token: str, *, cache_seconds: float = 30.0
    ) -> None:
        self._http = client._http  # one connection pool per process
        self._admin_token = admin_token
        self._admin = {"Authorization": f"Bearer {admin_token}"}
        self._cache_seconds = cache_seconds
        ttl = max(cache_seconds, 1e-9)
        self._routing: TTLCache[Any, RoutingMatch] = TTLCache(10_000, ttl)
        self._configs: TTLCache[str, EffectiveConfig] = TTLCache(10_000, ttl)
        self._tokens: TTLCache[tuple[str, str], str] = TTLCache(10_000, self.IMPERSONATION_SECONDS)
        self._lock = threading.Lock()

    def _cached(
        self, cache: TTLCache[Any, Any], key: Any, load: Callable[[], T], *, always: bool = False
    ) -> T:
        if self._cache_seconds <= 0 and not always:
            return load()
        with self._lock:
            if key in cache:
                hit: T = cache[key]
                return hit
        value = load()
        with self._lock:
            cache[key] = value
        return value

    def routing_lookup(
        self, identifiers: dict[str, str], org_id: str | None = None
    ) -> RoutingMatch:
        key = (tuple(sorted(identifiers.items())), org_id)
        return self._cached(self._routing, key, lambda: self._routing_lookup(identifiers, org_id))

    def _routing_lookup(self, identifiers: dict[str, str], org_id: str | None) -> RoutingMatch:
        body: dict[str, Any] = {"identifiers": identifiers}
        if org_id:
            body["org_id"] = org_id
        data = self._call("POST", "/api/v1/internal/routing/lookup", json=body, headers=INTERNAL)
        return _model(RoutingMatch, data, "routing lookup")

    def impersonation_token(self, org_id: str, team_node_id: str) -> str:
        return self._cached(
            self._tokens,
            (org_id, team_node_id),
            lambda: self._impersonation_token(org_id, team_node_id),
            always=True,
        )

    def _impersonation_token(self, org_id: str, team_node_id: str) -> str:
        data = self._call(
            "POST",
            f"/api/v1/admin/orgs/{org_id}/teams/{team_node_id}/impersonation-token",
            headers=self._admin,
        )
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise PeerUnavailable("config service sent no impersonation token")
        return token

    def effective_config(self, team_token: str) -> EffectiveConfig:
        return self._cached(self._configs, team_token, lambda: self._effective_config(team_token))

    def _effective_config(self, team_token: str) -> EffectiveConfig:
        data = self._call(
            "GET", "/api/v1/config/me", headers={"Authorization": f"Bearer {team_token}"}
        )
        return _model(EffectiveConfig, data, "config/me")

    # -- provisioning (admin routes, never cached: each answer decides a write) ---------
    def ensure_node(
        self, org_id: str, node_id: str, node_type: str, *, parent_id: str | None, name: str | None
    ) -> bool:
        """Create the node unless it exists; True when this call created it. The service
        answers 400 `Node already exists` for a duplicate, which is success here."""
        path = f"/api/v1/admin/orgs/{org_id}/nodes"
        body: dict[str, Any] = {"node_id": node_id, "node_type": node_type}
        if parent_id is not None:
            body["parent_id"] = parent_id
        if name:
            body["name"] = name
        try:
            self._call("POST", path, json=body, headers=self._admin)
        except PeerRejected as exc:
            if "already exists" in str(exc):
                return False
            raise
        return True

    def node_config(self, org_id: str, node_id: str) -> dict[str, Any]:
        """The node's own config (not the effective, inherited one)."""
        data = self._call(
            "GET", f"/api/v1/admin/orgs/{org_id}/nodes/{node_id}/config", headers=self._admin
        )
        config = data.get("config") if isinstance(data, dict) else None
        if not isinstance(config, dict):
            raise PeerUnavailable("config service sent an unreadable node config")
        return config

    def patch_node_config(self, org_id: str, node_id: str, patch: dict[str, Any]) -> None:
        """Merge `patch` into the node's config (dicts merge, lists and scalars replace).
        A change held for approval did not happen: that is a permanent failure."""
        data = self._call(
            "PUT",
            f"/api/v1/admin/orgs/{org_id}/nodes/{node_id}/config",
            json={"patch": patch},
            headers=self._admin,
        )
        if isinstance(data, dict) and data.get("status") == "pending_approval":
            raise PeerRejected(
                "config service holds the change for approval (security policy); nothing"
                " was written",
                reason="config_pending_approval",
            )

    def unrevoked_team_tokens(self, org_id: str, team_node_id: str) -> list[str]:
        """Ids of the team's tokens that nobody revoked; some may have expired. Read from
        the team's own list, whose length is that team's history only."""
        data = self._call(
            "GET", f"/api/v1/admin/orgs/{org_id}/teams/{team_node_id}/tokens", headers=self._admin
        )
        try:
            tokens = _TEAM_TOKENS.validate_python(data)
        except ValidationError:
            raise PeerUnavailable("config service sent an unreadable team token list") from None
        return [t.token_id for t in tokens if t.revoked_at is None]

    def active_team_tokens(self, org_id: str, team_node_id: str) -> list[str]:
        """Ids of the team's active tokens: unrevoked and unexpired.

        Only the org's list marks expiry, and it holds every token the org ever had,
        revoked ones included, so it grows for as long as the org lives. It is read only
        when the team's own list leaves the question open (an unrevoked token exists);
        a team whose tokens are all revoked never pays for the org's history."""
        if not self.unrevoked_team_tokens(org_id, team_node_id):
            return []
        data = self._call("GET", f"/api/v1/admin/orgs/{org_id}/tokens", headers=self._admin)
        try:
            tokens = _ORG_TOKENS.validate_python(
                data.get("tokens") if isinstance(data, dict) else None
            )
        except ValidationError:
            raise PeerUnavailable("config service sent an unreadable token list") from None
        return [
            t.token_id for t in tokens if t.team_node_id == team_node_id and t.status == "active"
        ]

    def issue_team_token(self, org_id: str, team_node_id: str) -> str:
        data = self._call(
            "POST", f"/api/v1/admin/orgs/{org_id}/teams/{team_node_id}/tokens", headers=self._admin
        )
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or "." not in token:
            raise PeerUnavailable("config service sent no team token")
        return token

    def revoke_team_tokens(self, org_id: str, token_ids: list[str]) -> None:
        if token_ids:
            self._call(
                "POST",
                f"/api/v1/admin/orgs/{org_id}/tokens/bulk-revoke",
                json={"token_ids": token_ids},
                headers=self._admin,
            )

    def routing_owner(self, org_id: str, key: str, value: str) -> RoutingMatch:
        """Which team of the org owns one identifier, asked fresh (never from cache)."""
        return self._routing_lookup({key: value}, org_id)

    def feedback(self, body: dict[str, Any]) -> None:
        self._call("POST", "/api/v1/internal/feedback", json=body, headers=INTERNAL)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise PeerUnavailable(f"config service unreachable: {type(exc).__name__}") from None
        if status_is_transient(response.status_code):
            raise PeerUnavailable(f"config service answered {response.status_code} on {path}")
        if response.status_code != 200:
            # The admin token we sent must not come back in an error we store or log.
            detail = redact_peer_text(_detail(response) or "", self._admin_token)
            raise PeerRejected(
                f"config service answered {response.status_code} on {path}: {detail}"[:500]
            )
        try:
            return response.json()
        except ValueError:
            raise PeerUnavailable(f"config service sent invalid JSON on {path}") from None


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _model(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise PeerUnavailable(f"config service sent an unreadable {what} answer") from None
