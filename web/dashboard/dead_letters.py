"""`/dashboard/dead`: dead letters with their actor, masked arguments, retries,
traceback and time of death; requeue and delete one, or requeue those ticked — each
action audited through the same code as `/api/v1/admin/jobs/dead/*`. Queues span every
organization, so like the jobs API this page is for super-admins only."""

from __future__ import annotations

import re
from typing import Any

import falcon

from orchestrator import dead_letters, job_failures
from orchestrator.queues import QUEUES
from web.dashboard.base import (
    DashboardResource,
    PageError,
    bad_cursor,
    filters,
    first,
    html_page,
    notice,
    require_super_admin,
)
from web.dashboard.render import query_string
from web.resources.jobs import audit_letter, find_letter
from web.schemas import MESSAGE_ID, DeadQuery

MAX_BULK = 500


def _back(form: dict[str, list[str]], code: str, n: int) -> str:
    queue = first(form, "queue")
    return "/dashboard/dead" + query_string(
        {"queue": queue if queue in QUEUES else None, "notice": f"{code}:{n}"}
    )


class DeadLetters(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer = self.page_viewer(req, resp)
        require_super_admin(viewer)
        q = filters(req, DeadQuery)
        if q.cursor and not q.cursor.isdigit():
            raise bad_cursor()
        offset = int(q.cursor) if q.cursor else 0
        s = self._d.services
        letters, more = dead_letters.list_dead(
            s.redis, s.namespace, queue=q.queue, limit=q.limit, offset=offset
        )
        failures: dict[str, dict[str, Any]] = {}
        if letters:
            with s.pool.connection() as conn:
                failures = job_failures.failures_of(conn, [d.message_id for d in letters])
        depths, _ = dead_letters.queue_depths(s.redis, s.namespace)
        self.render(
            resp,
            "dead.html",
            viewer=viewer,
            section="dead",
            notice=notice(req),
            rows=[(d, failures.get(d.message_id)) for d in letters],
            counts={d.name: d.dead for d in depths},
            queues=QUEUES,
            q=q,
            next_cursor=str(offset + q.limit) if more else None,
        )


class _Action(DashboardResource):
    def _letter(self, message_id: str) -> dead_letters.DeadLetter | None:
        try:
            return find_letter(self._d.services, message_id)
        except falcon.HTTPNotFound:
            return None


class DeadLetterRequeue(_Action):
    @html_page
    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        viewer, form = self.action_viewer(req, resp)
        require_super_admin(viewer)
        letter = self._letter(message_id)
        if letter is None:
            raise falcon.HTTPSeeOther(_back(form, "gone", 1))
        s = self._d.services
        dead_letters.requeue_dead(s.redis, s.namespace, s.broker, letter)
        audit_letter(s, viewer.admin, req, "job.requeued", letter)
        raise falcon.HTTPSeeOther(_back(form, "requeued", 1))


class DeadLetterDelete(_Action):
    @html_page
    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        viewer, form = self.action_viewer(req, resp)
        require_super_admin(viewer)
        letter = self._letter(message_id)
        if letter is None:
            raise falcon.HTTPSeeOther(_back(form, "gone", 1))
        s = self._d.services
        dead_letters.delete_dead(s.redis, s.namespace, letter)
        audit_letter(s, viewer.admin, req, "job.deleted", letter)
        raise falcon.HTTPSeeOther(_back(form, "deleted", 1))


class DeadLettersBulkRequeue(_Action):
    @html_page
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer, form = self.action_viewer(req, resp)
        require_super_admin(viewer)
        ids = list(dict.fromkeys(form.get("message_id", [])))
        if not ids:
            raise PageError(400, "Nothing selected", "Tick the dead letters to requeue.")
        if len(ids) > MAX_BULK or not all(re.match(MESSAGE_ID, i) for i in ids):
            raise PageError(400, "Bad selection", f"Select at most {MAX_BULK} dead letters.")
        s = self._d.services
        requeued: list[Any] = []
        for message_id in ids:
            letter = self._letter(message_id)
            if letter is None:
                continue
            dead_letters.requeue_dead(s.redis, s.namespace, s.broker, letter)
            audit_letter(s, viewer.admin, req, "job.requeued", letter)
            requeued.append(letter.message_id)
        if requeued:
            raise falcon.HTTPSeeOther(_back(form, "requeued", len(requeued)))
        raise falcon.HTTPSeeOther(_back(form, "gone", len(ids)))
