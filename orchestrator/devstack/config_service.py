"""Stand-in of the Config Service (PEERS.md), for `orchestrator dev` and the tests.

It speaks the real contract, quirks included, so the orchestrator works unchanged
against the real service:

- every success is 200 (never 201); errors are `{"detail": ...}`; validation errors are
  FastAPI-shaped (`{"detail": [{"type", "loc", "msg", "input"}]}`); `X-Request-Id` is
  echoed (base class).
- `/api/v1/auth/me` answers with all keys present and says `Missing Bearer token` /
  `Invalid token` on 401.
- admin routes read `Authorization: Bearer` (preferred) or `X-Admin-Token`; missing →
  401 `Missing admin token`; team tokens, impersonation JWTs and unknown tokens → 401
  `Invalid admin token`. **Quirk:** an org admin token is accepted on the routes of
  *every* org — the service does not enforce the org, the orchestrator must.
- nodes: an existing node → 400 (not 409); deleting a node or its config → 405.
- config patches merge dicts recursively; lists and scalars replace; null is stored.
  `require_approval_for` switches on the approval policy: a patch touching one of
  those keys answers 200 `{"status": "pending_approval", ...}` and changes nothing.
- issuing a team token for a node that does not exist → 500 (the real foreign-key
  failure); revoking is idempotent and 200 for unknown ids.
- `/api/v1/internal/*` checks only that `X-Internal-Service` is present.
- routing lookup: fixed key priority regardless of request order, exact case-sensitive
  match after trimming, only team nodes' own `routing` lists, first match in node
  creation order (no uniqueness enforced).

Python helpers for tests and `orchestrator dev`: `add_super_admin`, `add_org_admin`,
`add_team_token`, `add_principal` (fine-grained OIDC admins), `revoke`, `add_node`,
`patch_config`, `seed_team`, `config_of`, `expire_token`, `is_team_credential`, and the
records `feedback`, `pending_changes`. All state is guarded by one re-entrant lock (the
server is threaded).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
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

# Keys tried by the routing lookup, highest priority first (request key → config list).
ROUTING_PRIORITY: tuple[tuple[str, str], ...] = (
    ("incidentio_team_id", "incidentio_team_ids"),
    ("pagerduty_service_id", "pagerduty_service_ids"),
    ("slack_channel_id", "slack_channel_ids"),
    ("github_repo", "github_repos"),
    ("coralogix_team_name", "coralogix_team_names"),
    ("incidentio_alert_source_id", "incidentio_alert_source_ids"),
    ("service", "services"),
)
ROUTING_LISTS = tuple(field for _, field in ROUTING_PRIORITY)

# Approval-policy categories as the real service names them, and the config keys each
# covers. Any other entry of `require_approval_for` is taken as a (dotted) config key.
APPROVAL_CATEGORIES: dict[str, tuple[str, ...]] = {
    "prompts": ("custom_prompt", "system_prompt"),
    "prompt": ("custom_prompt", "system_prompt"),
    "tools": ("enabled_tools",),
}

IMPERSONATION_TTL = timedelta(minutes=15)
DEFAULT_EFFECTIVE_CONFIG: dict[str, Any] = {"entrance_agent": "planner"}

_ORG = r"/api/v1/admin/orgs/(?P<org>[^/]+)"
_TEAM = _ORG + r"/teams/(?P<team>[^/]+)"
_NODE = _ORG + r"/nodes/(?P<node>[^/]+)"


def _now() -> datetime:
    """Naive UTC, as the real service stores and serializes its timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The Config Service merge: dicts merge recursively, lists and scalars replace,
    null is stored as null. Returns a new dict; neither argument is changed."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _key_paths(patch: dict[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in patch.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from _key_paths(value, path + ".")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- FastAPI-shaped validation errors -------------------------------------------------------


def _error(loc: list[str | int], type_: str, msg: str, value: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": type_, "loc": loc, "msg": msg}
    if type_ != "missing" or value is not None:
        item["input"] = value
    return item


def _unprocessable(errors: list[dict[str, Any]]) -> Response:
    return Response(422, {"detail": errors})


def _json_body(req: Request) -> tuple[Any, Response | None]:
    """The parsed body, or the 422 FastAPI gives for a missing / malformed body."""
    if not req.body:
        return None, _unprocessable([_error(["body"], "missing", "Field required")])
    try:
        return json.loads(req.body), None
    except ValueError as exc:
        return None, _unprocessable(
            [_error(["body", 0], "json_invalid", "JSON decode error", {"error": str(exc)})]
        )


def _object_body(req: Request) -> tuple[dict[str, Any], Response | None]:
    body, problem = _json_body(req)
    if problem is not None:
        return {}, problem
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        return {}, _unprocessable([_error(["body"], "model_attributes_type", msg, body)])
    return body, None


def _check_str(
    body: dict[str, Any],
    name: str,
    errors: list[dict[str, Any]],
    *,
    required: bool,
    min_length: int = 0,
    max_length: int | None = None,
) -> None:
    loc: list[str | int] = ["body", name]
    if name not in body or (body[name] is None and not required):
        if required:
            errors.append(_error(loc, "missing", "Field required", body))
        return
    value = body[name]
    if not isinstance(value, str):
        errors.append(_error(loc, "string_type", "Input should be a valid string", value))
    elif len(value) < min_length:
        msg = f"String should have at least {min_length} character{'s' * (min_length != 1)}"
        errors.append(_error(loc, "string_too_short", msg, value))
    elif max_length is not None and len(value) > max_length:
        errors.append(
            _error(
                loc, "string_too_long", f"String should have at most {max_length} characters", value
            )
        )


class ConfigServiceStandIn(StandIn):
    name = "config-service"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state_lock = threading.RLock()
        self.principals: dict[str, dict[str, Any]] = {}
        self._expiry: dict[str, datetime] = {}  # credential → when it stops working
        self.nodes: dict[tuple[str, str], dict[str, Any]] = {}  # in creation order
        self.configs: dict[tuple[str, str], dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}  # token_id → record, in issue order
        self.feedback: list[dict[str, Any]] = []
        self.pending_changes: list[dict[str, Any]] = []
        self.require_approval_for: set[str] = set()
        self.team_token_ttl: timedelta | None = None
        self._jwt_secret = secrets.token_bytes(32)
        super().__init__(host, port)

    def routes(self) -> None:
        self.route("GET", r"/api/v1/auth/me", self._auth_me)
        self.route("GET", r"/health", lambda _r: Response(200, {"status": "healthy"}))
        self.route("GET", r"/api/v1/config/me", self._config_me)
        self.route("POST", _ORG + r"/nodes", self._create_node)
        self.route("GET", _ORG + r"/nodes", self._list_nodes)
        self.route("GET", _NODE, self._get_node)
        self.route("PUT", _NODE + r"/config", self._put_config)
        self.route("GET", _NODE + r"/config", self._get_config)
        self.route("POST", _TEAM + r"/tokens", self._issue_token)
        self.route("GET", _TEAM + r"/tokens", self._list_team_tokens)
        self.route("POST", _TEAM + r"/tokens/(?P<token_id>[^/]+)/revoke", self._revoke_token)
        self.route("POST", _TEAM + r"/impersonation-token", self._impersonation_token)
        self.route("GET", _ORG + r"/tokens", self._list_org_tokens)
        self.route("POST", _ORG + r"/tokens/bulk-revoke", self._bulk_revoke)
        self.route("POST", r"/api/v1/internal/routing/lookup", self._routing_lookup)
        self.route("POST", r"/api/v1/internal/feedback", self._record_feedback)
        self.route("GET", r"/_standin/feedback", self._get_feedback)

    # -- credentials ------------------------------------------------------------------
    def add_principal(self, token: str, **principal: Any) -> str:
        record = dict.fromkeys(_PRINCIPAL_KEYS)
        record.update(principal)
        record["permissions"] = list(record.get("permissions") or [])
        with self._state_lock:
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

    def add_team_token(
        self, org_id: str, team_node_id: str, *, issued_by: str | None = "standin"
    ) -> str:
        """A team token as `POST …/teams/{team}/tokens` issues it (listed in the token
        lists too), without requiring the team node to exist."""
        token_id = secrets.token_hex(16)
        token = f"{token_id}.{secrets.token_urlsafe(24)}"
        issued_at = _now()
        expires_at = issued_at + self.team_token_ttl if self.team_token_ttl else None
        with self._state_lock:
            self.tokens[token_id] = {
                "token_id": token_id,
                "org_id": org_id,
                "team_node_id": team_node_id,
                "issued_at": issued_at,
                "expires_at": expires_at,
                "revoked_at": None,
                "last_used_at": None,
                "issued_by": issued_by,
                "label": None,
                "permissions": ["team:read", "team:write"],
                "token": token,
            }
            if expires_at is not None:
                self._expiry[token] = expires_at
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

    def add_impersonation_token(
        self, org_id: str, team_node_id: str, *, subject: str = "super-admin"
    ) -> tuple[str, datetime]:
        """A read-only team JWT (HS256, three base64url parts) valid 15 minutes."""
        now = int(time.time())
        exp = now + int(IMPERSONATION_TTL.total_seconds())
        claims = {
            "iss": "incidentfox-config-service",
            "aud": "incidentfox-agent-runtime",
            "sub": subject,
            "email": None,
            "org_id": org_id,
            "team_node_id": team_node_id,
            "ifx_kind": "team_impersonation",
            "scope": ["team:read"],
            "iat": now,
            "exp": exp,
            "jti": uuid.uuid4().hex,
        }
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._jwt_secret, f"{header}.{payload}".encode(), hashlib.sha256)
        token = f"{header}.{payload}.{_b64url(signature.digest())}"
        expires_at = datetime.fromtimestamp(exp, UTC).replace(tzinfo=None)
        with self._state_lock:
            self._expiry[token] = expires_at
            self.add_principal(
                token,
                role="team",
                auth_kind="impersonation",
                org_id=org_id,
                team_node_id=team_node_id,
                subject=subject,
                can_write=False,
                permissions=["team:read"],
            )
        return token, expires_at

    def revoke(self, token: str) -> None:
        """Make a credential invalid at once (a team token is also marked revoked)."""
        with self._state_lock:
            self.principals.pop(token, None)
            record = self.tokens.get(token.partition(".")[0])
            if record is not None and record["token"] == token and record["revoked_at"] is None:
                record["revoked_at"] = _now()

    def expire_token(self, token_id: str) -> None:
        """Let a team token expire now: `status: expired`, no longer accepted."""
        with self._state_lock:
            record = self.tokens[token_id]
            record["expires_at"] = _now() - timedelta(seconds=1)
            self._expiry[record["token"]] = record["expires_at"]

    def principal(self, token: str) -> dict[str, Any] | None:
        """What `/auth/me` would say about `token` (None: 401)."""
        with self._state_lock:
            found = self.principals.get(token)
            expires_at = self._expiry.get(token)
            if found is None or (expires_at is not None and _now() >= expires_at):
                return None
            return dict(found)

    def is_team_credential(self, token: str) -> bool:
        """A valid team token or impersonation JWT (e.g. `AgentStandIn.valid_tokens`)."""
        found = self.principal(token)
        return found is not None and found["role"] == "team"

    # -- nodes and config (Python) ----------------------------------------------------
    def add_node(
        self,
        org_id: str,
        node_id: str,
        node_type: str,
        parent_id: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Create a node and its empty config; ValueError as the real service raises it."""
        with self._state_lock:
            if (org_id, node_id) in self.nodes:
                raise ValueError(f"Node already exists: {node_id}")
            if parent_id is not None and (org_id, parent_id) not in self.nodes:
                raise ValueError(f"Parent not found: {parent_id}")
            node = {
                "org_id": org_id,
                "node_id": node_id,
                "parent_id": parent_id,
                "node_type": node_type,
                "name": name,
            }
            self.nodes[(org_id, node_id)] = node
            self.configs[(org_id, node_id)] = {}
            return dict(node)

    def patch_config(self, org_id: str, node_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge `patch` into the node's own config (no approval policy); its new config."""
        with self._state_lock:
            if (org_id, node_id) not in self.configs:
                raise ValueError(f"Node configuration not found: {org_id}/{node_id}")
            merged = deep_merge(self.configs[(org_id, node_id)], patch)
            self.configs[(org_id, node_id)] = merged
            return copy.deepcopy(merged)

    def config_of(self, org_id: str, node_id: str) -> dict[str, Any] | None:
        with self._state_lock:
            found = self.configs.get((org_id, node_id))
            return copy.deepcopy(found) if found is not None else None

    def seed_team(
        self,
        org_id: str,
        team_node_id: str,
        *,
        routing: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        org_config: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Ensure the org root and the team node exist, merge `config` and `routing`
        into the team's own config (and `org_config` into the org's); the team config."""
        with self._state_lock:
            if (org_id, org_id) not in self.nodes:
                self.add_node(org_id, org_id, "org", name=org_id)
            if (org_id, team_node_id) not in self.nodes:
                self.add_node(org_id, team_node_id, "team", parent_id=org_id, name=name)
            if org_config:
                self.patch_config(org_id, org_id, org_config)
            if config:
                self.patch_config(org_id, team_node_id, config)
            if routing is not None:
                self.patch_config(org_id, team_node_id, {"routing": routing})
            return self.config_of(org_id, team_node_id) or {}

    def effective_config(self, org_id: str, node_id: str) -> tuple[dict[str, Any], list[str]]:
        """Defaults, then each ancestor's own config from the root down; and the lineage.
        A node that does not exist contributes nothing (its org root still does)."""
        with self._state_lock:
            lineage = self._lineage(org_id, node_id)
            if not lineage:
                lineage = self._lineage(org_id, org_id)
                hierarchy = [*lineage, node_id] if node_id not in lineage else lineage
            else:
                hierarchy = lineage
            effective = copy.deepcopy(DEFAULT_EFFECTIVE_CONFIG)
            for ancestor in lineage:
                effective = deep_merge(effective, self.configs.get((org_id, ancestor)) or {})
            return effective, hierarchy

    def _lineage(self, org_id: str, node_id: str) -> list[str]:
        chain: list[str] = []
        current: str | None = node_id
        while current is not None and (org_id, current) in self.nodes and current not in chain:
            chain.append(current)
            current = self.nodes[(org_id, current)]["parent_id"]
        chain.reverse()
        return chain

    # -- auth helpers -----------------------------------------------------------------
    def _admin(self, req: Request) -> tuple[dict[str, Any] | None, Response | None]:
        """Admin auth as the real service does it (Bearer first, then X-Admin-Token).
        Deliberately no org check: an org admin passes on every org's routes."""
        authorization = req.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            raw = authorization.split(" ", 1)[1].strip()
        else:
            raw = req.headers.get("x-admin-token", "").strip()
        if not raw:
            return None, Response(401, {"detail": "Missing admin token"})
        found = self.principal(raw)
        if found is None or found["role"] != "admin":
            return None, Response(401, {"detail": "Invalid admin token"})
        return found, None

    @staticmethod
    def _internal(req: Request) -> Response | None:
        if not req.headers.get("x-internal-service"):
            return Response(401, {"detail": "Missing internal service header"})
        return None

    # -- routes: auth and effective config --------------------------------------------
    def _auth_me(self, req: Request) -> Response:
        token = req.bearer()
        if not token:
            return Response(401, {"detail": "Missing Bearer token"})
        found = self.principal(token)
        if found is None:
            return Response(401, {"detail": "Invalid token"})
        return Response(200, found)

    def _config_me(self, req: Request) -> Response:
        token = req.bearer()
        found = self.principal(token) if token else None
        if found is None or found["role"] != "team":
            detail = (
                "Authentication required: provide either Bearer token or "
                "X-Org-Id/X-Team-Node-Id headers"
            )
            return Response(401, {"detail": detail})
        effective, hierarchy = self.effective_config(found["org_id"], found["team_node_id"])
        return Response(
            200,
            {
                "node_id": found["team_node_id"],
                "effective_config": effective,
                "computed_at": _iso(_now()),
                "hierarchy": hierarchy,
            },
        )

    # -- routes: nodes and config -----------------------------------------------------
    def _create_node(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        body, problem = _object_body(req)
        if problem:
            return problem
        errors: list[dict[str, Any]] = []
        _check_str(body, "node_id", errors, required=True, min_length=1, max_length=128)
        _check_str(body, "parent_id", errors, required=False, max_length=128)
        if "node_type" not in body:
            errors.append(_error(["body", "node_type"], "missing", "Field required", body))
        elif body["node_type"] not in ("org", "team"):
            errors.append(
                _error(
                    ["body", "node_type"],
                    "enum",
                    "Input should be 'org' or 'team'",
                    body["node_type"],
                )
            )
        _check_str(body, "name", errors, required=False, max_length=256)
        if errors:
            return _unprocessable(errors)
        org_id = req.params["org"]
        try:
            node = self.add_node(
                org_id, body["node_id"], body["node_type"], body.get("parent_id"), body.get("name")
            )
        except ValueError as exc:
            return Response(400, {"detail": str(exc)})
        # No templates are seeded here, so none is ever applied.
        return Response(200, {**node, "template_applied": False})

    def _list_nodes(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        org_id = req.params["org"]
        with self._state_lock:
            nodes = [dict(n) for (org, _), n in self.nodes.items() if org == org_id]
        return Response(200, nodes)

    def _get_node(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        with self._state_lock:
            node = self.nodes.get((req.params["org"], req.params["node"]))
            node = dict(node) if node is not None else None
        if node is None:
            return Response(404, {"detail": f"Node not found: {req.params['node']}"})
        return Response(200, node)

    def _get_config(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        # The real service answers an empty config for a node it does not know.
        return Response(
            200, {"config": self.config_of(req.params["org"], req.params["node"]) or {}}
        )

    def _put_config(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        body, problem = _object_body(req)
        if problem:
            return problem
        patch = body.get("patch", {})
        if not isinstance(patch, dict):
            return _unprocessable(
                [
                    _error(
                        ["body", "patch"], "dict_type", "Input should be a valid dictionary", patch
                    )
                ]
            )
        org_id, node_id = req.params["org"], req.params["node"]
        bypass = req.headers.get("x-bypass-approval", "").lower() == "true"
        with self._state_lock:
            if (org_id, node_id) not in self.configs:
                detail = f"Node configuration not found: {org_id}/{node_id}"
                return Response(400, {"detail": detail})
            touched = None if bypass else self._needs_approval(patch)
            if touched is not None:
                change = {
                    "pending_change_id": uuid.uuid4().hex,
                    "org_id": org_id,
                    "node_id": node_id,
                    "change_path": touched,
                    "proposed_value": copy.deepcopy(patch),
                    "requested_by": req.headers.get("x-admin-actor", "admin"),
                }
                self.pending_changes.append(change)
                return Response(
                    200,
                    {
                        "status": "pending_approval",
                        "message": f"Changes to {touched} require approval",
                        "pending_change_id": change["pending_change_id"],
                    },
                )
            merged = self.patch_config(org_id, node_id, patch)
        return Response(200, {"config": merged})

    def _needs_approval(self, patch: dict[str, Any]) -> str | None:
        """The first key of `patch` that the approval policy covers, if any."""
        guarded: set[str] = set()
        for entry in self.require_approval_for:
            guarded.update(APPROVAL_CATEGORIES.get(entry, (entry,)))
        for path in _key_paths(patch):
            for key in guarded:
                if path == key or path.startswith(key + "."):
                    return key
        return None

    # -- routes: tokens ---------------------------------------------------------------
    def _issue_token(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        org_id, team = req.params["org"], req.params["team"]
        with self._state_lock:
            if (org_id, team) not in self.nodes:
                # The real service fails on its foreign key: an unhandled error, a 500.
                return Response(500, {"detail": "Internal Server Error"})
            token = self.add_team_token(
                org_id, team, issued_by=req.headers.get("x-admin-actor", "admin")
            )
            issued_at = self.tokens[token.partition(".")[0]]["issued_at"]
        return Response(200, {"token": token, "issued_at": _iso(issued_at)})

    def _list_team_tokens(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        org_id, team = req.params["org"], req.params["team"]
        with self._state_lock:
            rows = [
                {
                    "token_id": t["token_id"],
                    "issued_at": _iso(t["issued_at"]),
                    "revoked_at": _iso(t["revoked_at"]),
                    "issued_by": t["issued_by"],
                }
                for t in reversed(self.tokens.values())
                if t["org_id"] == org_id and t["team_node_id"] == team
            ]
        return Response(200, rows)

    def _list_org_tokens(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        org_id = req.params["org"]
        now = _now()
        with self._state_lock:
            if (org_id, org_id) not in self.nodes:
                return Response(404, {"detail": "Organization not found"})
            rows = []
            for t in reversed(self.tokens.values()):
                if t["org_id"] != org_id:
                    continue
                if t["revoked_at"] is not None:
                    status = "revoked"
                elif t["expires_at"] is not None and t["expires_at"] <= now:
                    status = "expired"
                else:
                    status = "active"
                rows.append(
                    {
                        "token_id": t["token_id"],
                        "team_node_id": t["team_node_id"],
                        "issued_at": _iso(t["issued_at"]),
                        "expires_at": _iso(t["expires_at"]),
                        "revoked_at": _iso(t["revoked_at"]),
                        "last_used_at": _iso(t["last_used_at"]),
                        "issued_by": t["issued_by"],
                        "label": t["label"],
                        "permissions": list(t["permissions"]),
                        "status": status,
                    }
                )
        return Response(200, {"tokens": rows, "total": len(rows)})

    def _revoke_record(self, record: dict[str, Any]) -> bool:
        """Revoke one token record; False if it already was."""
        self.principals.pop(record["token"], None)
        if record["revoked_at"] is not None:
            return False
        record["revoked_at"] = _now()
        return True

    def _revoke_token(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        org_id, team, token_id = req.params["org"], req.params["team"], req.params["token_id"]
        with self._state_lock:
            record = self.tokens.get(token_id)
            if record is not None and (record["org_id"], record["team_node_id"]) == (org_id, team):
                self._revoke_record(record)
        return Response(200, {"status": "ok"})

    def _bulk_revoke(self, req: Request) -> Response:
        _, denied = self._admin(req)
        if denied:
            return denied
        body, problem = _object_body(req)
        if problem:
            return problem
        token_ids = body.get("token_ids", [])
        if not isinstance(token_ids, list) or not token_ids:
            return Response(400, {"detail": "token_ids must be a non-empty list"})
        org_id = req.params["org"]
        with self._state_lock:
            records = [self.tokens.get(t) if isinstance(t, str) else None for t in token_ids]
            for token_id, record in zip(token_ids, records, strict=True):
                if record is not None and record["org_id"] != org_id:
                    detail = f"Token {token_id} does not belong to organization"
                    return Response(403, {"detail": detail})
            revoked = sum(self._revoke_record(r) for r in records if r is not None)
        return Response(
            200, {"status": "ok", "revoked_count": revoked, "total_requested": len(token_ids)}
        )

    def _impersonation_token(self, req: Request) -> Response:
        admin, denied = self._admin(req)
        if denied or admin is None:
            return denied or Response(401, {"detail": "Invalid admin token"})
        # Like the real service, this does not check that the team exists.
        token, expires_at = self.add_impersonation_token(
            req.params["org"], req.params["team"], subject=admin["subject"] or "admin"
        )
        return Response(200, {"token": token, "expires_at": _iso(expires_at)})

    # -- routes: internal -------------------------------------------------------------
    def _routing_lookup(self, req: Request) -> Response:
        denied = self._internal(req)
        if denied:
            return denied
        body, problem = _object_body(req)
        if problem:
            return problem
        errors: list[dict[str, Any]] = []
        identifiers = body.get("identifiers")
        if "identifiers" not in body:
            errors.append(_error(["body", "identifiers"], "missing", "Field required", body))
        elif not isinstance(identifiers, dict):
            errors.append(
                _error(
                    ["body", "identifiers"],
                    "dict_type",
                    "Input should be a valid dictionary",
                    identifiers,
                )
            )
        else:
            for key, value in identifiers.items():
                if not isinstance(value, str):
                    errors.append(
                        _error(
                            ["body", "identifiers", key],
                            "string_type",
                            "Input should be a valid string",
                            value,
                        )
                    )
        _check_str(body, "org_id", errors, required=False)
        if errors or not isinstance(identifiers, dict):
            return _unprocessable(errors)
        org_filter = body.get("org_id") or None
        tried: list[str] = []
        with self._state_lock:
            teams = [
                (org, node_id, self.configs.get((org, node_id)) or {})
                for (org, node_id), node in self.nodes.items()
                if node["node_type"] == "team" and (org_filter is None or org == org_filter)
            ]
            for key, field in ROUTING_PRIORITY:
                value = identifiers.get(key)
                if not value:
                    continue
                tried.append(key)
                wanted = value.strip()
                for org, node_id, config in teams:
                    routing = config.get("routing")
                    values = routing.get(field) if isinstance(routing, dict) else None
                    if not isinstance(values, list):
                        continue
                    if any(isinstance(v, str) and v.strip() == wanted for v in values):
                        return Response(
                            200,
                            {
                                "found": True,
                                "org_id": org,
                                "team_node_id": node_id,
                                "team_token": None,
                                "matched_by": key,
                                "matched_value": value,
                                "tried": tried,
                            },
                        )
        return Response(
            200,
            {
                "found": False,
                "org_id": None,
                "team_node_id": None,
                "team_token": None,
                "matched_by": None,
                "matched_value": None,
                "tried": tried,
            },
        )

    def _record_feedback(self, req: Request) -> Response:
        denied = self._internal(req)
        if denied:
            return denied
        body, problem = _object_body(req)
        if problem:
            return problem
        errors: list[dict[str, Any]] = []
        _check_str(body, "run_id", errors, required=True)
        _check_str(body, "feedback", errors, required=True)
        for optional in ("correlation_id", "user_id", "source"):
            _check_str(body, optional, errors, required=False)
        if errors:
            return _unprocessable(errors)
        record = {
            "id": uuid.uuid4().hex,
            "run_id": body["run_id"],
            "feedback": body["feedback"],
            "correlation_id": body.get("correlation_id"),
            "user_id": body.get("user_id"),
            "source": body.get("source") or "unknown",
            "created_at": _iso(_now()),
        }
        with self._state_lock:
            self.feedback.append(record)
        return Response(
            200,
            {
                "status": "ok",
                "id": record["id"],
                "run_id": record["run_id"],
                "feedback_type": record["feedback"],
                "source": record["source"],
                "created_at": record["created_at"],
            },
        )

    def _get_feedback(self, req: Request) -> Response:
        with self._state_lock:
            return Response(200, {"feedback": copy.deepcopy(self.feedback)})


__all__ = ["ROUTING_LISTS", "ROUTING_PRIORITY", "ConfigServiceStandIn", "deep_merge"]
