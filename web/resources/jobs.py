"""`/api/v1/admin/jobs/*`: queue depths, dead letters, requeue and delete (SPEC §4.3).

Every requeue and delete is audited with the acting admin."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import falcon

from orchestrator import audit, dead_letters, job_failures
from orchestrator.auth.admin import Admin
from web.auth import admin_of
from web.bodies import json_body, query
from web.errors import bad_cursor
from web.openapi import Operation
from web.resources.base import AdminResource
from web.schemas import (
    MESSAGE_ID,
    BulkRequeue,
    DeadPage,
    DeadQuery,
    NoQuery,
    QueuesOut,
    RequeueResult,
)
from web.services import Services

PERMISSION = "admin:jobs"


def _jobs_admin(req: falcon.Request) -> Admin:
    admin = admin_of(req)
    # Queues are shared by every org: only a super-admin may see or move them.
    if admin.org_id is not None:
        raise falcon.HTTPForbidden(
            title="Forbidden", description="queues span every organization: super-admin only"
        )
    return admin


class Queues(AdminResource):
    openapi = [
        Operation(
            "GET",
            "Queue depths and live workers",
            permission=PERMISSION,
            responses={200: QueuesOut},
            tags=("jobs",),
        ),
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _jobs_admin(req)
        query(req, NoQuery)
        depths, workers = dead_letters.queue_depths(self._s.redis, self._s.namespace)
        resp.media = {"queues": [d.__dict__ for d in depths], "workers_alive": workers}


class DeadLetters(AdminResource):
    openapi = [
        Operation(
            "GET",
            "Dead letters, newest first",
            permission=PERMISSION,
            query=DeadQuery,
            responses={200: DeadPage},
            tags=("jobs",),
        ),
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _jobs_admin(req)
        q = query(req, DeadQuery)
        try:
            offset = int(q.cursor) if q.cursor else 0
            if offset < 0:
                raise ValueError
        except ValueError:
            raise bad_cursor() from None
        letters, more = dead_letters.list_dead(
            self._s.redis, self._s.namespace, queue=q.queue, limit=q.limit, offset=offset
        )
        failures: dict[str, dict[str, Any]] = {}
        if letters:
            with self._s.pool.connection() as conn:
                failures = job_failures.failures_of(conn, [d.message_id for d in letters])
        resp.media = {
            "items": [_letter(d, failures.get(d.message_id)) for d in letters],
            "next_cursor": str(offset + q.limit) if more else None,
        }


class DeadLetter(AdminResource):
    openapi = [
        Operation(
            "DELETE",
            "Delete a dead letter (audited)",
            permission=PERMISSION,
            responses={204: None},
            tags=("jobs",),
        ),
    ]

    def on_delete(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        admin = _jobs_admin(req)
        letter = find_letter(self._s, message_id)
        dead_letters.delete_dead(self._s.redis, self._s.namespace, letter)
        audit_letter(self._s, admin, req, "job.deleted", letter)
        resp.status = falcon.HTTP_204


class DeadLetterRequeue(AdminResource):
    openapi = [
        Operation(
            "POST",
            "Requeue one dead letter (audited)",
            permission=PERMISSION,
            responses={202: RequeueResult},
            tags=("jobs",),
        ),
    ]

    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        admin = _jobs_admin(req)
        letter = find_letter(self._s, message_id)
        dead_letters.requeue_dead(self._s.redis, self._s.namespace, self._s.broker, letter)
        audit_letter(self._s, admin, req, "job.requeued", letter)
        resp.status = falcon.HTTP_202
        resp.media = {"requeued": [letter.message_id], "not_found": []}


class DeadLettersBulkRequeue(AdminResource):
    openapi = [
        Operation(
            "POST",
            "Requeue several dead letters (audited)",
            permission=PERMISSION,
            body=BulkRequeue,
            responses={202: RequeueResult},
            tags=("jobs",),
        ),
    ]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        admin = _jobs_admin(req)
        body = json_body(req, BulkRequeue)
        requeued, missing = [], []
        for message_id in dict.fromkeys(body.message_ids):
            letter = dead_letters.find_dead(self._s.redis, self._s.namespace, message_id)
            if letter is None:
                missing.append(message_id)
                continue
            dead_letters.requeue_dead(self._s.redis, self._s.namespace, self._s.broker, letter)
            audit_letter(self._s, admin, req, "job.requeued", letter)
            requeued.append(letter.message_id)
        resp.status = falcon.HTTP_202
        resp.media = {"requeued": requeued, "not_found": missing}


def find_letter(services: Services, message_id: str) -> dead_letters.DeadLetter:
    """The dead letter by message id or Redis id, or 404 (shared with the dashboard's
    requeue and delete, so both roads find letters the same way)."""
    letter = (
        dead_letters.find_dead(services.redis, services.namespace, message_id)
        if re.match(MESSAGE_ID, message_id)
        else None
    )
    if letter is None:
        raise falcon.HTTPNotFound(title="Not Found", description="no such dead letter")
    return letter


def audit_letter(
    services: Services,
    admin: Admin,
    req: falcon.Request,
    action: str,
    letter: dead_letters.DeadLetter,
) -> None:
    """One audit row per requeue or delete, the same from the API and the dashboard."""
    with services.pool.connection() as conn:
        audit.record(
            conn,
            actor=admin.actor,
            action=action,
            subject=letter.message_id,
            request_id=req.context.get("request_id"),
            detail={"queue": letter.queue, "actor": letter.actor, "retries": letter.retries},
        )


def _letter(d: dead_letters.DeadLetter, failure: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "message_id": d.message_id,
        "queue": d.queue,
        "actor": d.actor,
        "args": d.args,
        "kwargs": d.kwargs,
        "retries": d.retries,
        "died_at": datetime.fromtimestamp(d.died_at, UTC).isoformat(),
        "error": failure["error"] if failure else None,
        "traceback": failure["traceback"] if failure else None,
    }
