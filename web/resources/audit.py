"""`GET /api/v1/admin/audit`: the audit trail, newest first, org-scoped."""

from __future__ import annotations

import falcon

from orchestrator import audit
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
        self._answer_org_page(req, resp, AuditQuery, audit.page)
