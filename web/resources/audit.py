"""`GET /api/v1/admin/audit`: the audit trail, newest first, org-scoped."""

from __future__ import annotations

import falcon

from orchestrator import audit
from web.auth import require_admin
from web.bodies import query
from web.errors import bad_cursor
from web.openapi import Operation
from web.resources.base import AdminResource
from web.schemas import AuditPage, AuditQuery

PERMISSION = "admin:events"


class AuditLog(AdminResource):
    openapi = [
        Operation(
            "GET",
            "Audit trail (newest first)",
            permission=PERMISSION,
            query=AuditQuery,
            responses={200: AuditPage},
            tags=("audit",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = query(req, AuditQuery)
        admin = require_admin(
            self._auth, req, PERMISSION, org_id=q.org_id, org_scoped=q.org_id is not None
        )
        # An org-bound admin without a filter sees its own org only.
        org_id = q.org_id if q.org_id is not None else admin.org_id
        try:
            with self._s.pool.connection() as conn:
                entries, next_cursor = audit.page(
                    conn, org_id=org_id, action=q.action, limit=q.limit, cursor=q.cursor
                )
        except ValueError:
            raise bad_cursor() from None
        resp.media = {
            "items": [e.model_dump(mode="json") for e in entries],
            "next_cursor": next_cursor,
        }
