"""`/dashboard` (the overview page) and `/dashboard/api/overview` (the same figures as
JSON, which the page fetches every few seconds to redraw its charts and counters
without a reload). Both take the session cookie only."""

from __future__ import annotations

import falcon

from orchestrator.auth.admin import AuthUnavailable
from orchestrator.dashboard import overview
from orchestrator.queues import QUEUES
from orchestrator.webhooks.model import SOURCE_NAMES
from web.dashboard.base import PERMISSION, DashboardResource, Viewer, html_page, notice
from web.openapi import Operation

REFRESH_SECONDS = 5


class _OverviewSource(DashboardResource):
    def overview(self, viewer: Viewer) -> overview.Overview:
        with self._d.services.pool.connection() as conn:
            return overview.build(
                conn,
                self._d.services.redis,
                self._d.services.namespace,
                org_id=viewer.admin.org_id,
                include_jobs=viewer.super_admin,
                now=self._d.now(),
            )


class OverviewPage(_OverviewSource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer = self.page_viewer(req, resp)
        data = self.overview(viewer)
        self.render(
            resp,
            "overview.html",
            viewer=viewer,
            section="overview",
            notice=notice(req),
            o=data,
            data=data.model_dump(mode="json"),
            queues=QUEUES,
            sources=SOURCE_NAMES,
            event_statuses=overview.EVENT_STATUSES,
            run_statuses=overview.RUN_STATUSES,
            refresh_seconds=REFRESH_SECONDS,
        )


class OverviewData(_OverviewSource):
    openapi = [
        Operation(
            "GET",
            "The dashboard overview as JSON (dashboard session cookie only; the overview"
            " page refreshes itself from it)",
            auth="dashboard",
            permission=PERMISSION,
            responses={200: overview.Overview},
            tags=("dashboard",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            viewer = self.viewer(req, resp)
        except AuthUnavailable:
            raise falcon.HTTPServiceUnavailable(
                title="Service Unavailable",
                description="cannot verify the session: config service unavailable",
            ) from None
        if viewer is None:
            raise falcon.HTTPUnauthorized(
                title="Unauthorized",
                description="no dashboard session: sign in at /dashboard/login",
            )
        resp.cache_control = ["no-store"]
        resp.media = self.overview(viewer).model_dump(mode="json")
