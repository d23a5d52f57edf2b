"""Admin auth for responders: read the credential, ask the domain authenticator, map
its errors to HTTP. The JSON admin API takes bearer tokens (or `X-Admin-Token`) only."""

from __future__ import annotations

import falcon

from orchestrator.auth.admin import Admin, AdminAuthenticator, AuthError


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


def require_admin(
    authenticator: AdminAuthenticator,
    req: falcon.Request,
    permission: str,
    *,
    org_id: str | None = None,
    org_scoped: bool = False,
) -> Admin:
    """The verified admin, allowed `permission` (and inside `org_id` when `org_scoped`)."""
    try:
        admin = authenticator.authorize(
            bearer_token(req), permission, request_id=req.context.get("request_id")
        )
        if org_scoped:
            admin.require_org(org_id)
    except AuthError as exc:
        raise _http(exc) from None
    return admin


def _http(exc: AuthError) -> falcon.HTTPError:
    if exc.status == 401:
        return falcon.HTTPUnauthorized(
            title="Unauthorized", description=str(exc), challenges=["Bearer"]
        )
    if exc.status == 403:
        return falcon.HTTPForbidden(title="Forbidden", description=str(exc))
    return falcon.HTTPServiceUnavailable(title="Service Unavailable", description=str(exc))
