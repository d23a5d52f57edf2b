"""Webhook events: `/dashboard/events` (filters: source, status, org, team),
`/dashboard/events/{id}` (payload and headers masked, status history, the agent runs it
started, its team) and its replay button — the same audited replay as
`POST /api/v1/admin/webhooks/events/{id}/replay`, which also needs `admin:events`.

An org admin sees its own org's events only; unrouted events belong to no org and
are shown to super-admins alone."""

from __future__ import annotations

import uuid
from typing import Any

import falcon

from orchestrator.dashboard import links
from orchestrator.dashboard.overview import EVENT_STATUSES
from orchestrator.events import store
from orchestrator.events.replay import replay
from orchestrator.webhooks.model import SOURCE_NAMES
from web.dashboard.base import (
    DashboardResource,
    PageError,
    bad_cursor,
    filters,
    html_page,
    notice,
)
from web.resources.events import EventsQuery
from workers.messages import webhook_event

REPLAY_PERMISSION = "admin:events"


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PageError(404, "Not found", "No such event.") from None


class Events(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer = self.page_viewer(req, resp)
        q = filters(req, EventsQuery)
        selected: dict[str, Any] = q.model_dump(
            include={"source", "status", "org_id", "team_node_id"}
        )
        if not viewer.super_admin:
            selected["org_id"] = viewer.admin.org_id
        try:
            with self._d.services.pool.connection() as conn:
                items, next_cursor = store.page(
                    conn, filters=selected, limit=q.limit, cursor=q.cursor
                )
        except ValueError:
            raise bad_cursor() from None
        self.render(
            resp,
            "events.html",
            viewer=viewer,
            section="events",
            items=items,
            selected=selected,
            sources=SOURCE_NAMES,
            statuses=EVENT_STATUSES,
            next_cursor=next_cursor,
            paged=bool(q.cursor),
        )


class Event(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        viewer = self.page_viewer(req, resp)
        parsed = _event_id(event_id)
        with self._d.services.pool.connection() as conn:
            event = store.get(conn, parsed)
            if event is None or not viewer.admin.may_act_in(event.org_id):
                raise PageError(404, "Not found", "No such event.")
            started = links.agent_runs_of_event(conn, parsed)
        self.render(
            resp,
            "event.html",
            viewer=viewer,
            section="events",
            notice=notice(req),
            event=event,
            agent_runs=started,
            can_replay=viewer.admin.has(REPLAY_PERMISSION),
        )


class EventReplay(DashboardResource):
    @html_page
    def on_post(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        viewer, _ = self.action_viewer(req, resp)
        if not viewer.admin.has(REPLAY_PERMISSION):
            raise PageError(403, "Not allowed", f"Replaying events needs {REPLAY_PERMISSION}.")
        parsed = _event_id(event_id)
        with self._d.services.pool.connection() as conn:
            event = replay(
                conn,
                parsed,
                admin=viewer.admin,
                request_id=req.context.get("request_id"),
                enqueue=lambda eid: self._d.services.broker.enqueue(webhook_event(eid)),
            )
        if event is None:
            raise PageError(404, "Not found", "No such event.")
        raise falcon.HTTPSeeOther(f"/dashboard/events/{event.event_id}?notice=replayed")
