"""`/api/v1/admin/webhooks/events`: list (filters, cursor), one event with its payload
and history, and replay (re-dispatch, audited). Permission `admin:events`; an org admin
sees only its org's events (unrouted events belong to no org: super-admins only)."""

from __future__ import annotations

import uuid

import falcon
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.events import store
from orchestrator.events.replay import replay
from orchestrator.webhooks.model import SourceName
from web.auth import admin_of
from web.openapi import Operation
from web.resources.base import AdminResource
from web.schemas import ID_PATTERN, PageQuery
from workers.messages import webhook_event

PERMISSION = "admin:events"


class EventsQuery(PageQuery):
    source: SourceName | None = None
    status: store.EventStatus | None = None
    org_id: str | None = Field(default=None, pattern=ID_PATTERN)
    team_node_id: str | None = Field(default=None, pattern=ID_PATTERN)


class EventsPage(BaseModel):
    items: list[store.EventSummary]
    next_cursor: str | None


class Replayed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str
    status: str


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise falcon.HTTPNotFound(title="Not Found", description="no such event") from None


class Events(AdminResource):
    openapi = [
        Operation(
            "GET",
            "Webhook events, newest first (no payloads)",
            permission=PERMISSION,
            query=EventsQuery,
            responses={200: EventsPage},
            tags=("events",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._answer_org_page(req, resp, EventsQuery, store.page)


class Event(AdminResource):
    openapi = [
        Operation(
            "GET",
            "One webhook event with its payload and status history",
            permission=PERMISSION,
            responses={200: store.EventDetail},
            tags=("events",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        admin = admin_of(req)
        with self._s.pool.connection() as conn:
            event = store.get(conn, _uuid(event_id))
        if event is None or not admin.may_act_in(event.org_id):
            # Another org's event is as invisible as a missing one.
            raise falcon.HTTPNotFound(title="Not Found", description="no such event")
        resp.media = event.model_dump(mode="json")


class EventReplay(AdminResource):
    openapi = [
        Operation(
            "POST",
            "Re-dispatch an event (audited)",
            permission=PERMISSION,
            responses={202: Replayed},
            tags=("events",),
        )
    ]

    def on_post(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        admin = admin_of(req)
        with self._s.pool.connection() as conn:
            event = replay(
                conn,
                _uuid(event_id),
                admin=admin,
                request_id=req.context.get("request_id"),
                enqueue=lambda eid: self._s.broker.enqueue(webhook_event(eid)),
            )
        if event is None:
            raise falcon.HTTPNotFound(title="Not Found", description="no such event")
        resp.status = falcon.HTTP_202
        resp.media = {"event_id": str(event.event_id), "status": "queued"}
