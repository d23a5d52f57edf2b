"""`/dashboard/login` and `/dashboard/logout` (SPEC §10 "Dashboard").

The login form has one field, `token`, verified through the Config Service exactly as
every admin route verifies it and required to allow `admin:jobs`. A failure shows the
form again with one of three answers — invalid token (401), not allowed (403), cannot
verify now (503) — never more about the token. Failed attempts are limited per client
address (`FAILED_SIGN_IN_RATE`, then 429). Sign-ins and sign-outs are audited.
"""

from __future__ import annotations

import re

import falcon

from orchestrator import audit
from orchestrator.auth.admin import AuthUnavailable, Forbidden, MissingCredential, Rejected
from web.dashboard.base import (
    PERMISSION,
    DashboardResource,
    PageError,
    first,
    form_fields,
    html_page,
    notice,
)
from web.dashboard.csrf import FIELD, LOGIN_COOKIE, LOGIN_COOKIE_SECONDS

FAILED_SIGN_IN_RATE = "10/minute"
HOME = "/dashboard"
_NEXT = re.compile(r"^/dashboard(?:/[A-Za-z0-9._~/-]*)?(?:\?[A-Za-z0-9._~=&%+:-]*)?$")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a dashboard page only (no open redirect)."""
    if not value or not _NEXT.match(value) or "//" in value or value.startswith("/dashboard/login"):
        return HOME
    return value


def client_address(req: falcon.Request, trusted_hops: int) -> str:
    """The address failed sign-ins are counted against. Behind `trusted_hops` proxies
    that each append their peer to X-Forwarded-For, the client is the entry that many
    places from the right (with the peer itself last); entries further left are
    whatever the client wrote, so they are never used. With 0, the peer address: one
    shared limit for everyone behind a proxy, but one a client cannot dodge by
    forging the header."""
    route = [e.strip() for e in (req.get_header("X-Forwarded-For") or "").split(",")]
    route = [e for e in route if e] + [req.remote_addr or "unknown"]
    return route[max(0, len(route) - 1 - trusted_hops)]


class Login(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        target = safe_next(req.get_param("next"))
        if self.viewer(req, resp) is not None:
            raise falcon.HTTPSeeOther(target)
        self._form(req, resp, status=200, message=None, target=target)

    @html_page
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_fields(req)
        target = safe_next(first(form, "next"))
        nonces = req.get_cookie_values(LOGIN_COOKIE) or []
        if not any(
            self._d.csrf.matches(self._d.csrf.for_login(n), first(form, FIELD)) for n in nonces
        ):
            return self._form(
                req, resp, status=403, message="The form expired; sign in again.", target=target
            )
        address = client_address(req, self._d.settings.orchestrator_trusted_proxy_hops)
        wait = self._d.sign_in_limit.wait_seconds(address)
        if wait is not None:
            resp.set_header("Retry-After", str(int(wait)))
            return self._form(
                req,
                resp,
                status=429,
                message=f"Too many failed sign-ins; wait {int(wait)} s.",
                target=target,
            )
        token = (first(form, "token") or "").strip()
        try:
            admin = self._d.authenticator.authorize(
                token, PERMISSION, request_id=req.context.get("request_id")
            )
        except (Rejected, MissingCredential):
            self._d.sign_in_limit.failed(address)
            return self._form(req, resp, status=401, message="Invalid token.", target=target)
        except Forbidden:
            self._d.sign_in_limit.failed(address)
            return self._form(
                req,
                resp,
                status=403,
                message=f"This token may not use the dashboard (it needs {PERMISSION}).",
                target=target,
            )
        except AuthUnavailable:
            return self._form(
                req,
                resp,
                status=503,
                message="Cannot verify tokens now: the Config Service is unavailable.",
                target=target,
            )
        cookie, session = self._d.sessions.create(token, admin)
        with self._d.services.pool.connection() as conn:
            audit.record(
                conn,
                actor=admin.actor,
                action="dashboard.login",
                org_id=admin.org_id,
                request_id=req.context.get("request_id"),
                detail={"token_fingerprint": session.fingerprint},
            )
        self.set_session_cookie(req, resp, cookie)
        resp.unset_cookie(LOGIN_COOKIE, path="/dashboard/login", same_site="Strict")
        raise falcon.HTTPSeeOther(target)

    def _form(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        *,
        status: int,
        message: str | None,
        target: str,
    ) -> None:
        """The form with a fresh login nonce (cookie) and its CSRF token."""
        nonce = self._d.csrf.new_nonce()
        resp.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_COOKIE_SECONDS,
            path="/dashboard/login",
            secure=self.secure_cookies(req),
            http_only=True,
            same_site="Strict",
        )
        self.render(
            resp,
            "login.html",
            status=status,
            message=message,
            notice=notice(req),
            csrf_token=self._d.csrf.for_login(nonce),
            next=target,
        )


class Logout(DashboardResource):
    @html_page
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer = self.viewer(req, resp)
        if viewer is not None:
            if not self._d.csrf.matches(viewer.csrf_token, first(form_fields(req), FIELD)):
                raise PageError(
                    403,
                    "Refused: missing or invalid CSRF token",
                    "Sign out from a dashboard page of your session.",
                )
            self._d.sessions.destroy(viewer.session)
            self._d.authenticator.forget(viewer.session.token)
            with self._d.services.pool.connection() as conn:
                audit.record(
                    conn,
                    actor=viewer.admin.actor,
                    action="dashboard.logout",
                    org_id=viewer.admin.org_id,
                    request_id=req.context.get("request_id"),
                    detail={"token_fingerprint": viewer.session.fingerprint},
                )
        self.clear_session_cookie(req, resp)
        raise falcon.HTTPSeeOther("/dashboard/login?notice=logged_out")
