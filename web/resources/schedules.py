"""`/api/v1/admin/orgs/{org_id}/teams/{team_node_id}/schedules[/{schedule_id}]`: a team's
pipeline schedules (SPEC §4.3). Permission `admin:schedules`, inside the admin's org.
Every change is audited; the reconciler hears it through the table's NOTIFY and brings
the CronJob in line within seconds."""

from __future__ import annotations

import re
import uuid
from typing import Any

import falcon
from pydantic import BaseModel

from orchestrator import audit
from orchestrator.auth.admin import Admin
from orchestrator.schedules import store
from orchestrator.schedules.model import Schedule, ScheduleCreate, ScheduleUpdate
from web.auth import admin_of
from web.bodies import json_body, query
from web.errors import Unprocessable
from web.openapi import Operation
from web.resources.base import AdminResource
from web.schemas import ID_PATTERN, NoQuery

PERMISSION = "admin:schedules"
_ID = re.compile(ID_PATTERN)


class SchedulePage(BaseModel):
    items: list[Schedule]
    next_cursor: str | None


def _team(org_id: str, team_node_id: str) -> None:
    """Path ids follow the same rule as body ids (SPEC §10): anything else is a 422."""
    bad = [
        {
            "field": name,
            "message": "must be 1-64 characters of A-Z a-z 0-9 . _ -",
            "type": "pattern",
        }
        for name, value in (("org_id", org_id), ("team_node_id", team_node_id))
        if not _ID.match(value)
    ]
    if bad:
        raise Unprocessable(f"invalid path: {', '.join(b['field'] for b in bad)}", bad)


def _schedule_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise falcon.HTTPNotFound(title="Not Found", description="no such schedule") from None


def _not_found() -> falcon.HTTPNotFound:
    return falcon.HTTPNotFound(title="Not Found", description="no such schedule")


def _operation(
    method: str,
    summary: str,
    responses: dict[int, type[BaseModel] | None],
    *,
    body: type[BaseModel] | None = None,
) -> Operation:
    """Every schedule operation needs `admin:schedules` and is listed under `schedules`."""
    return Operation(
        method,
        summary,
        permission=PERMISSION,
        body=body,
        responses=responses,
        tags=("schedules",),
    )


class _ScheduleResource(AdminResource):
    def _admin(self, req: falcon.Request, org_id: str, team_node_id: str) -> Admin:
        admin = admin_of(req)
        admin.require_org(org_id)
        _team(org_id, team_node_id)
        query(req, NoQuery)  # a team has at most three schedules: nothing to filter or page
        return admin

    @staticmethod
    def _audit(
        conn: Any, req: falcon.Request, admin: Admin, action: str, schedule: Schedule, **detail: Any
    ) -> None:
        audit.record(
            conn,
            actor=admin.actor,
            action=action,
            org_id=schedule.org_id,
            team_node_id=schedule.team_node_id,
            subject=str(schedule.schedule_id),
            request_id=req.context.get("request_id"),
            detail={"schedule_type": schedule.schedule_type, **detail},
        )


class Schedules(_ScheduleResource):
    openapi = [
        _operation("GET", "A team's pipeline schedules with their sync state", {200: SchedulePage}),
        _operation(
            "POST",
            "Create a schedule (one per type); its CronJob follows within seconds",
            {201: Schedule, 409: None},
            body=ScheduleCreate,
        ),
    ]

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, org_id: str, team_node_id: str
    ) -> None:
        self._admin(req, org_id, team_node_id)
        with self._s.pool.connection() as conn:
            items = store.list_for_team(conn, org_id, team_node_id)
        # At most one schedule per type: a team's list is always one page.
        resp.media = {"items": [i.model_dump(mode="json") for i in items], "next_cursor": None}

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, org_id: str, team_node_id: str
    ) -> None:
        admin = self._admin(req, org_id, team_node_id)
        body = json_body(req, ScheduleCreate)
        with self._s.pool.connection() as conn, conn.transaction():
            try:
                schedule = store.create(conn, org_id, team_node_id, body)
            except store.ScheduleExists as exc:
                raise falcon.HTTPConflict(title="Conflict", description=str(exc)) from None
            self._audit(
                conn,
                req,
                admin,
                "schedule.created",
                schedule,
                cron_expression=schedule.cron_expression,
                timezone=schedule.timezone,
                enabled=schedule.enabled,
            )
        resp.status = falcon.HTTP_201
        resp.location = f"{req.path}/{schedule.schedule_id}"
        resp.media = schedule.model_dump(mode="json")


class ScheduleItem(_ScheduleResource):
    openapi = [
        _operation("GET", "One schedule", {200: Schedule}),
        _operation(
            "PATCH",
            "Change cron expression, time zone or enabled (the type is fixed)",
            {200: Schedule},
            body=ScheduleUpdate,
        ),
        _operation(
            "DELETE", "Delete a schedule; its CronJob is removed by the next pass", {204: None}
        ),
    ]

    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        org_id: str,
        team_node_id: str,
        schedule_id: str,
    ) -> None:
        self._admin(req, org_id, team_node_id)
        with self._s.pool.connection() as conn:
            schedule = store.get(conn, org_id, team_node_id, _schedule_id(schedule_id))
        if schedule is None:
            raise _not_found()
        resp.media = schedule.model_dump(mode="json")

    def on_patch(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        org_id: str,
        team_node_id: str,
        schedule_id: str,
    ) -> None:
        admin = self._admin(req, org_id, team_node_id)
        sid = _schedule_id(schedule_id)
        changes = json_body(req, ScheduleUpdate)
        with self._s.pool.connection() as conn, conn.transaction():
            before = store.get(conn, org_id, team_node_id, sid)
            schedule = store.update(conn, org_id, team_node_id, sid, changes)
            if before is None or schedule is None:
                raise _not_found()
            changed = {
                name: {"from": getattr(before, name), "to": getattr(schedule, name)}
                for name in changes.model_fields_set
            }
            self._audit(conn, req, admin, "schedule.updated", schedule, changes=changed)
        resp.media = schedule.model_dump(mode="json")

    def on_delete(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        org_id: str,
        team_node_id: str,
        schedule_id: str,
    ) -> None:
        admin = self._admin(req, org_id, team_node_id)
        with self._s.pool.connection() as conn, conn.transaction():
            schedule = store.delete(conn, org_id, team_node_id, _schedule_id(schedule_id))
            if schedule is None:
                raise _not_found()
            self._audit(
                conn,
                req,
                admin,
                "schedule.deleted",
                schedule,
                k8s_cronjob_name=schedule.k8s_cronjob_name,
            )
        resp.status = falcon.HTTP_204
