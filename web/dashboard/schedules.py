"""`/dashboard/schedules`: every team's pipeline schedules with their sync state
(pending / synced / error), last sync, last run and the reconciler's last error —
filterable, so "what failed to reach Kubernetes" is one click from the overview."""

from __future__ import annotations

from typing import Any

import falcon
from pydantic import Field

from orchestrator.dashboard import schedules
from orchestrator.schedules.model import SCHEDULE_TYPES, ScheduleType, SyncStatus
from web.dashboard.base import DashboardResource, bad_cursor, filters, html_page
from web.schemas import ID_PATTERN, PageQuery


class SchedulesQuery(PageQuery):
    org_id: str | None = Field(default=None, pattern=ID_PATTERN)
    team_node_id: str | None = Field(default=None, pattern=ID_PATTERN)
    schedule_type: ScheduleType | None = None
    sync_status: SyncStatus | None = None


class Schedules(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer = self.page_viewer(req, resp)
        q = filters(req, SchedulesQuery)
        selected: dict[str, Any] = q.model_dump(include=set(schedules.FILTERS))
        if not viewer.super_admin:
            selected["org_id"] = viewer.admin.org_id
        try:
            with self._d.services.pool.connection() as conn:
                items, next_cursor = schedules.page(
                    conn, filters=selected, limit=q.limit, cursor=q.cursor
                )
                counts = schedules.sync_counts(conn, org_id=viewer.admin.org_id)
        except ValueError:
            raise bad_cursor() from None
        self.render(
            resp,
            "schedules.html",
            viewer=viewer,
            section="schedules",
            items=items,
            counts=counts,
            selected=selected,
            types=SCHEDULE_TYPES,
            next_cursor=next_cursor,
            paged=bool(q.cursor),
        )
