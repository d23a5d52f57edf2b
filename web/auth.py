"""Authentication of the admin and internal API (SPEC §4.3, §4.4), before anything
reads the request.

`Authentication` is a middleware: its `process_resource` runs after routing and the
`BodyLimit` checks (which read no byte of the request) and before any responder, so no
responder parses the query string, body or path of a caller nobody has authenticated. A
missing or forged credential is 401 and a credential without the operation's permission
403, however malformed the rest of the request; validating first answered strangers with
422s that named the parameters a route takes.

What a route demands is what its operations declare (`openapi`: `Operation.auth` and
`.permission`), so the served document and the enforcement cannot disagree. A method
the route does not serve (405, OPTIONS) needs the same credential, without a permission.
Routes that declare no `admin` or `internal` operation pass untouched: health, webhooks
(their resource checks signatures on the raw bytes) and the dashboard (session gate).

Checks that depend on the request's content — an org named in a query, body or path —
are the responder's, after parsing, with the admin from `admin_of(req)`. The JSON admin
API takes bearer tokens (or `X-Admin-Token`) only.
"""

from __future__ import annotations

import hmac
from typing import Any

import falcon

from orchestrator.auth.admin import ADMIN_STAR, Admin, AdminAuthenticator, AuthError
from web.openapi import Auth

_GUARDED: tuple[Auth, ...] = ("internal", "admin")


def authorization_bearer(req: falcon.Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, and nothing else."""
    scheme, _, value = (req.get_header("Authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def bearer_token(req: falcon.Request) -> str | None:
    """Admin credential: `Authorization: Bearer`, or `X-Admin-Token` when no
    Authorization header is sent."""
    if req.get_header("Authorization"):
        return authorization_bearer(req)
    token = req.get_header("X-Admin-Token")
    return token.strip() if token and token.strip() else None


class Authentication:
    """Parameters: `authenticator` verifies admin tokens and permissions;
    `internal_token` is `ORCHESTRATOR_INTERNAL_TOKEN` (None: the internal API is 404)."""

    def __init__(self, authenticator: AdminAuthenticator, internal_token: str | None) -> None:
        self._auth = authenticator
        self._internal = internal_token.encode() if internal_token else None

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        auth, permission = demanded(resource, req.method)
        if auth == "admin":
            self._admin(req, permission)
        elif auth == "internal":
            self._internal_caller(req)

    def _admin(self, req: falcon.Request, permission: str | None) -> None:
        token = bearer_token(req)
        request_id = req.context.get("request_id")
        if permission is None:  # a method the route does not serve: 405 once verified
            self._auth.verify(token, request_id=request_id)
            return
        req.context.admin = self._auth.authorize(token, permission, request_id=request_id)

    def _internal_caller(self, req: falcon.Request) -> None:
        if self._internal is None:
            raise falcon.HTTPNotFound(
                title="Not Found", description="the internal API is not configured"
            )
        given = (authorization_bearer(req) or "").encode()
        if not hmac.compare_digest(given, self._internal):
            raise falcon.HTTPUnauthorized(
                title="Unauthorized", description="invalid internal token", challenges=["Bearer"]
            )


def demanded(resource: Any, method: str) -> tuple[Auth, str | None]:
    """The credential a `method` request to `resource` needs, and the permission. An
    admin operation that names no permission needs `admin:*`."""
    operations = getattr(resource, "openapi", None) or []
    for op in operations:
        if op.method == method:
            return op.auth, (op.permission or ADMIN_STAR) if op.auth == "admin" else None
    declared = {op.auth for op in operations}
    for auth in _GUARDED:
        if auth in declared:
            return auth, None
    return "none", None


def admin_of(req: falcon.Request) -> Admin:
    """The admin `Authentication` verified and authorized for this request."""
    admin = req.context.get("admin")
    if not isinstance(admin, Admin):
        # Only a responder of a route that declares no admin operation gets here.
        raise RuntimeError("this route's operations declare no admin auth")
    return admin


def handle_auth_error(
    req: falcon.Request, resp: falcon.Response, exc: AuthError, params: dict[str, Any]
) -> None:
    """`AuthError`, from the middleware or a responder's org check, as its HTTP answer."""
    if exc.status == 401:
        raise falcon.HTTPUnauthorized(
            title="Unauthorized", description=str(exc), challenges=["Bearer"]
        )
    if exc.status == 403:
        raise falcon.HTTPForbidden(title="Forbidden", description=str(exc))
    raise falcon.HTTPServiceUnavailable(title="Service Unavailable", description=str(exc))
