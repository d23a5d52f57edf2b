"""What every dashboard page shares: the dashboard's collaborators, who is looking
(the session gate), HTML error pages, forms, filters and notices.

The gate is the dashboard's half of SPEC §4.3's rule: pages and their actions accept
the session cookie and nothing else — an `Authorization` header is ignored here, as
the cookie is ignored by the JSON admin API. Every request re-authorizes the session's
token for `admin:jobs` (the dashboard's permission), and every POST must carry the
session's CSRF token.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

import falcon
import psycopg
import psycopg_pool
import redis
from pydantic import BaseModel, ValidationError

from orchestrator.auth.admin import Admin, AdminAuthenticator, AuthError, AuthUnavailable
from orchestrator.settings import Settings
from web.bodies import raw_body
from web.dashboard.csrf import FIELD, HEADER, Csrf
from web.dashboard.render import Renderer
from web.dashboard.session import COOKIE, COOKIE_PATH, Session, SessionStore
from web.dashboard.sign_in_limit import FailedSignIns
from web.dashboard.static import StaticFiles
from web.services import Services

PERMISSION = "admin:jobs"
LOGIN_PATH = "/dashboard/login"
SUPER_ADMIN_ONLY = "Queues and dead letters span every organization: super-admins only."

log = logging.getLogger("orchestrator.dashboard")

M = TypeVar("M", bound=BaseModel)


@dataclass
class Dashboard:
    """The collaborators every dashboard resource receives."""

    settings: Settings
    services: Services
    authenticator: AdminAuthenticator
    sessions: SessionStore
    csrf: Csrf
    renderer: Renderer
    static: StaticFiles
    sign_in_limit: FailedSignIns
    now: Callable[[], datetime]


@dataclass(frozen=True)
class Viewer:
    """The signed-in admin behind a request, with the CSRF token its forms carry."""

    admin: Admin
    session: Session
    csrf_token: str

    @property
    def super_admin(self) -> bool:
        return self.admin.org_id is None


@dataclass(frozen=True)
class Notice:
    kind: str
    text: str


_NOTICES = {
    "requeued": ("ok", "Requeued {n} dead letter(s)."),
    "deleted": ("ok", "Deleted the dead letter."),
    "gone": ("warn", "{n} dead letter(s) were gone already (requeued or deleted elsewhere)."),
    "replayed": ("ok", "The event is queued for dispatch again."),
    "logged_out": ("ok", "Signed out."),
    "expired": ("warn", "Your session ended; sign in again."),
}


class PageError(Exception):
    """Answered as an HTML page with `status`."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


_DEPENDENCY_ERRORS = (
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    redis.ConnectionError,
    redis.TimeoutError,
)

R = TypeVar("R", bound=Callable[..., None])


def html_page(responder: R) -> R:
    """Errors of a page become HTML pages (the app's handlers answer JSON): refusals
    with their status, an unreachable Config Service, Postgres or Redis with 503."""

    @functools.wraps(responder)
    def wrapped(
        self: DashboardResource, req: falcon.Request, resp: falcon.Response, **kw: Any
    ) -> None:
        try:
            responder(self, req, resp, **kw)
        except PageError as exc:
            self.error(resp, exc.status, exc.title, exc.message)
        except AuthUnavailable:
            self.error(
                resp, 503, "Cannot verify your session", "The Config Service is unavailable."
            )
        except _DEPENDENCY_ERRORS as exc:
            log.warning("dashboard dependency unavailable", extra={"error": type(exc).__name__})
            self.error(
                resp,
                503,
                "A backing service is unavailable",
                "Postgres or Redis did not answer; this page will work again when they do.",
            )

    return wrapped  # type: ignore[return-value]


class DashboardResource:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    # -- who is looking ---------------------------------------------------------------
    def viewer(self, req: falcon.Request, resp: falcon.Response) -> Viewer | None:
        """The session's admin, re-authorized now; None without a live session. A
        session whose token the Config Service no longer accepts (or no longer allows
        the dashboard) is ended. `AuthUnavailable` passes through (503)."""
        for cookie in req.get_cookie_values(COOKIE) or []:
            session = self._d.sessions.load(cookie)
            if session is None:
                continue
            try:
                admin = self._d.authenticator.authorize(
                    session.token, PERMISSION, request_id=req.context.get("request_id")
                )
            except AuthUnavailable:
                raise
            except AuthError:
                self._d.sessions.destroy(session)
                self.clear_session_cookie(req, resp)
                return None
            return Viewer(admin, session, self._d.csrf.for_session(session.session_id))
        return None

    def page_viewer(self, req: falcon.Request, resp: falcon.Response) -> Viewer:
        """For GET pages: the viewer, or a redirect to the login form (which returns
        here afterwards)."""
        viewer = self.viewer(req, resp)
        if viewer is None:
            raise falcon.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(req.relative_uri, safe='')}")
        return viewer

    def action_viewer(
        self, req: falcon.Request, resp: falcon.Response
    ) -> tuple[Viewer, dict[str, list[str]]]:
        """For POST actions: the viewer whose CSRF token the request carries, and the
        action's form — read only once the session is known to be live."""
        viewer = self.viewer(req, resp)
        if viewer is None:
            raise PageError(401, "Signed out", "Your session has ended; sign in again.")
        form = form_fields(req)
        given = first(form, FIELD) or req.get_header(HEADER)
        if not self._d.csrf.matches(viewer.csrf_token, given):
            raise PageError(
                403,
                "Refused: missing or invalid CSRF token",
                "This action did not come from a dashboard page of your session. Reload"
                " the page and try again.",
            )
        return viewer, form

    # -- cookies ----------------------------------------------------------------------
    def secure_cookies(self, req: falcon.Request) -> bool:
        forced = self._d.settings.orchestrator_dashboard_secure_cookie
        return forced if forced is not None else req.forwarded_scheme == "https"

    def set_session_cookie(self, req: falcon.Request, resp: falcon.Response, value: str) -> None:
        resp.set_cookie(
            COOKIE,
            value,
            max_age=int(self._d.sessions.max_age_seconds),
            path=COOKIE_PATH,
            secure=self.secure_cookies(req),
            http_only=True,
            same_site="Strict",
        )

    def clear_session_cookie(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.unset_cookie(COOKIE, path=COOKIE_PATH, same_site="Strict")

    # -- rendering --------------------------------------------------------------------
    def render(self, resp: falcon.Response, template: str, **context: Any) -> None:
        self._d.renderer.render(resp, template, **context)

    def error(self, resp: falcon.Response, status: int, title: str, message: str) -> None:
        self._d.renderer.render(
            resp, "error.html", status=status, title=title, message=message, viewer=None
        )


def require_super_admin(viewer: Viewer) -> None:
    if not viewer.super_admin:
        raise PageError(403, "Super-admins only", SUPER_ADMIN_ONLY)


def form_fields(req: falcon.Request) -> dict[str, list[str]]:
    """A urlencoded form body (the `BodyLimit` middleware has capped its size)."""
    try:
        return parse_qs(
            raw_body(req).decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=1000
        )
    except ValueError:
        raise PageError(400, "Bad form", "The form has too many fields.") from None


def first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def filters(req: falcon.Request, model: type[M]) -> M:
    """The page's filters from the query string (blank fields mean "any"), validated by
    the same model as the JSON API's; a bad one is a 400 page naming it."""
    params: dict[str, Any] = {}
    for key, value in req.params.items():
        if key == "notice" or value == "":
            continue
        if isinstance(value, list):
            raise PageError(400, "Invalid filter", f"{key} was given more than once.")
        params[key] = value
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        names = ", ".join(
            ".".join(str(p) for p in e["loc"]) or "query" for e in exc.errors(include_url=False)
        )
        raise PageError(400, "Invalid filter", f"Check: {names}.") from None


def notice(req: falcon.Request) -> Notice | None:
    """The outcome of the action that redirected here (`?notice=requeued:3`): fixed
    texts only, so a link cannot make the page say anything else."""
    code, _, count = (req.get_param("notice") or "").partition(":")
    found = _NOTICES.get(code)
    if found is None:
        return None
    n = int(count) if count.isdigit() and len(count) < 6 else 1
    return Notice(found[0], found[1].format(n=n))


def bad_cursor() -> PageError:
    return PageError(400, "Invalid page link", "The page cursor is malformed; start again.")
