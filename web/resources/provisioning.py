"""`/api/v1/admin/provision/*`: request provisioning and deprovisioning runs and read
them (SPEC §4.3, §5). Writes need `admin:provision`, reads `admin:provision:read`; an
org admin acts and reads only inside its org. The one read that delivers a new team
token is the first read of the succeeded run by a principal with `admin:provision`."""

from __future__ import annotations

import uuid

import falcon
from cryptography.fernet import InvalidToken
from pydantic import BaseModel, Field

from orchestrator.provisioning import runs
from orchestrator.provisioning.request import DeprovisionRequest, ProvisionRequest
from orchestrator.provisioning.submit import submit
from web.auth import admin_of
from web.bodies import json_body, query
from web.openapi import Operation
from web.resources.base import AdminResource
from web.schemas import ID_PATTERN, NoQuery, PageQuery
from workers.messages import provisioning_run

WRITE = "admin:provision"
READ = "admin:provision:read"
RUNS_PATH = "/api/v1/admin/provision/runs"


class RunsQuery(PageQuery):
    org_id: str | None = Field(default=None, pattern=ID_PATTERN)
    team_node_id: str | None = Field(default=None, pattern=ID_PATTERN)
    status: runs.RunStatus | None = None
    kind: runs.RunKind | None = None


class RunOut(BaseModel):
    provisioning_run_id: uuid.UUID
    kind: runs.RunKind
    org_id: str
    team_node_id: str
    status: runs.RunStatus
    steps: list[runs.Step]
    error: str | None
    team_token: str | None = None
    created_at: str
    updated_at: str


class RunsPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


class _Submit(AdminResource):
    def _submit(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: ProvisionRequest | DeprovisionRequest,
    ) -> None:
        admin = admin_of(req)
        admin.require_org(request.org_id)
        with self._s.pool.connection() as conn:
            try:
                run, created = submit(
                    conn,
                    request,
                    actor=admin.actor,
                    request_id=req.context.get("request_id"),
                    enqueue=lambda rid: self._s.broker.enqueue(provisioning_run(rid)),
                )
            except runs.IdempotencyConflict as exc:
                raise falcon.HTTPConflict(title="Conflict", description=str(exc)) from None
        resp.status = falcon.HTTP_202 if created else falcon.HTTP_200
        resp.location = f"{RUNS_PATH}/{run.provisioning_run_id}"
        resp.media = run.public()


class ProvisionTeam(_Submit):
    openapi = [
        Operation(
            "POST",
            "Provision a team (202 + run; same idempotency key → 200 with that run)",
            permission=WRITE,
            body=ProvisionRequest,
            responses={202: RunOut, 200: RunOut, 409: None},
            tags=("provisioning",),
        ),
        Operation(
            "DELETE",
            "Deprovision a team: revoke tokens, clear routing, delete schedules and objects",
            permission=WRITE,
            body=DeprovisionRequest,
            responses={202: RunOut, 200: RunOut, 409: None},
            tags=("provisioning",),
        ),
    ]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._submit(req, resp, json_body(req, ProvisionRequest))

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._submit(req, resp, json_body(req, DeprovisionRequest))


class Runs(AdminResource):
    openapi = [
        Operation(
            "GET",
            "Provisioning runs, newest first (never a team token)",
            permission=READ,
            query=RunsQuery,
            responses={200: RunsPage},
            tags=("provisioning",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._answer_org_page(req, resp, RunsQuery, runs.page, runs.Run.public)


class Run(AdminResource):
    openapi = [
        Operation(
            "GET",
            "One run with its steps; the first read of a succeeded run that issued a team"
            " token returns it (`team_token`) to a principal with admin:provision, once",
            permission=READ,
            responses={200: RunOut},
            tags=("provisioning",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        admin = admin_of(req)
        query(req, NoQuery)
        try:
            rid = uuid.UUID(run_id)
        except ValueError:
            raise falcon.HTTPNotFound(title="Not Found", description="no such run") from None
        token: str | None = None
        with self._s.pool.connection() as conn:
            run = runs.get(conn, rid)
            if run is None or not admin.may_act_in(run.org_id):
                raise falcon.HTTPNotFound(title="Not Found", description="no such run")
            if run.token_pending and run.status == "succeeded" and admin.has(WRITE):
                encrypted = runs.deliver_token(conn, rid)
                if encrypted is not None:
                    token = self._decrypt(encrypted)
        resp.set_header("Cache-Control", "no-store")
        resp.media = run.public(team_token=token)

    def _decrypt(self, encrypted: str) -> str | None:
        try:
            return self._s.fernet.decrypt(encrypted.encode()).decode()
        except InvalidToken:
            # Encrypted under a key since rotated away: gone for good, say so plainly.
            raise falcon.HTTPConflict(
                title="Conflict",
                description="the team token was encrypted with a previous"
                " ORCHESTRATOR_SECRET_KEY and cannot be delivered; provision again with"
                " rotate_token",
            ) from None
