"""The job dashboard (SPEC §9, README "Dashboard"): server-rendered pages behind an
admin-token login, for operators answering "is it healthy, what failed, why, and can I
retry it".

`routes(...)` gives `create_app` the dashboard's routes. Pages read through the domain
(`orchestrator.dashboard`, the stores, the dead-letter functions) and act through the
same audited code as the JSON admin API; this package only adds sessions, CSRF,
templates and static files.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import Any

from orchestrator.auth.admin import AdminAuthenticator
from orchestrator.settings import Settings, secret_masker
from web.dashboard import dead_letters, events, login, overview, runs, schedules, teams
from web.dashboard.base import Dashboard
from web.dashboard.csrf import Csrf
from web.dashboard.render import Renderer
from web.dashboard.session import SessionStore
from web.dashboard.sign_in_limit import FailedSignIns
from web.dashboard.static import StaticFiles
from web.services import Services

log = logging.getLogger("orchestrator.dashboard")


@functools.cache
def _static() -> StaticFiles:
    return StaticFiles()


def routes(
    settings: Settings, services: Services, authenticator: AdminAuthenticator
) -> list[tuple[str, Any]]:
    """The dashboard's (path, resource) pairs; none without `ORCHESTRATOR_SECRET_KEY`,
    which signs its sessions (the web process refuses to start without it anyway)."""
    if settings.orchestrator_secret_key is None:
        log.warning("ORCHESTRATOR_SECRET_KEY is unset: the dashboard is not served")
        return []
    secret = settings.orchestrator_secret_key.get_secret_value()
    static = _static()
    d = Dashboard(
        settings=settings,
        services=services,
        authenticator=authenticator,
        sessions=SessionStore(
            services.redis,
            services.namespace,
            secret,
            idle_seconds=settings.orchestrator_dashboard_session_idle_minutes * 60,
            max_age_seconds=settings.orchestrator_dashboard_session_max_hours * 3600,
        ),
        csrf=Csrf(secret),
        renderer=Renderer(static, secret_masker(settings)),
        static=static,
        sign_in_limit=FailedSignIns(
            settings.redis_dsn, login.FAILED_SIGN_IN_RATE, namespace=services.namespace
        ),
        now=lambda: datetime.now(UTC),
    )
    return [
        ("/dashboard", overview.OverviewPage(d)),
        ("/dashboard/api/overview", overview.OverviewData(d)),
        ("/dashboard/login", login.Login(d)),
        ("/dashboard/logout", login.Logout(d)),
        ("/dashboard/dead", dead_letters.DeadLetters(d)),
        ("/dashboard/dead/requeue", dead_letters.DeadLettersBulkRequeue(d)),
        ("/dashboard/dead/{message_id}/requeue", dead_letters.DeadLetterRequeue(d)),
        ("/dashboard/dead/{message_id}/delete", dead_letters.DeadLetterDelete(d)),
        ("/dashboard/runs", runs.ProvisioningRuns(d)),
        ("/dashboard/runs/{run_id}", runs.ProvisioningRun(d)),
        ("/dashboard/agent-runs", runs.AgentRuns(d)),
        ("/dashboard/agent-runs/{run_id}", runs.AgentRun(d)),
        ("/dashboard/events", events.Events(d)),
        ("/dashboard/events/{event_id}", events.Event(d)),
        ("/dashboard/events/{event_id}/replay", events.EventReplay(d)),
        ("/dashboard/schedules", schedules.Schedules(d)),
        ("/dashboard/teams/{org_id}/{team_node_id}", teams.Team(d)),
        ("/dashboard/static/{name:path}", static),
    ]
