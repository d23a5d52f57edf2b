"""`/api/v1/admin/agents/run` and `/api/v1/admin/agents/runs[/{id}]` (SPEC §4.3):
start an agent run for a team, list runs, read one. Permission `admin:agent:run` for
all three (the SPEC names no separate read permission); an org admin acts and reads
only inside its org — another org's run is as invisible as a missing one.

`Prefer: wait=N` (N ≤ 60) keeps the request open until the run finishes: 200 with the
run, else the ordinary 202. A waiting request occupies a gunicorn thread (not a
database connection), so at most half of a process's threads wait at once; beyond
that, and whenever the run could not be enqueued, the answer is an immediate 202
without `Preference-Applied`, keeping threads free for webhook acknowledgements.
"""

from __future__ import annotations

import threading
import uuid

import falcon
import psycopg
import psycopg_pool
from pydantic import BaseModel, Field

from orchestrator import admin_agent_runs, agent_runs
from orchestrator.admin_agent_runs import AgentRunRequest
from orchestrator.agent_runs import AgentRun, AgentRunSummary, RunStatus, TriggerSource
from orchestrator.breaker import Breaker
from orchestrator.settings import Settings
from web.auth import admin_of
from web.bodies import json_body
from web.openapi import Operation
from web.prefer import wait_seconds
from web.resources.base import AdminResource
from web.schemas import ID_PATTERN, PageQuery
from web.services import Services
from workers.messages import agent_run

PERMISSION = "admin:agent:run"
RUNS_PATH = "/api/v1/admin/agents/runs"


class AgentRunsQuery(PageQuery):
    org_id: str | None = Field(default=None, pattern=ID_PATTERN)
    team_node_id: str | None = Field(default=None, pattern=ID_PATTERN)
    status: RunStatus | None = None
    trigger_source: TriggerSource | None = None


class AgentRunsPage(BaseModel):
    items: list[AgentRunSummary]
    next_cursor: str | None


class AgentRunAccepted(BaseModel):
    agent_run_id: uuid.UUID
    status: str


def _not_found() -> falcon.HTTPNotFound:
    return falcon.HTTPNotFound(title="Not Found", description="no such agent run")


class AgentRunStart(AdminResource):
    openapi = [
        Operation(
            "POST",
            "Start an agent run for a team (audited); `Prefer: wait=N` (N ≤ 60) answers"
            " 200 with the finished run if it finishes in time",
            permission=PERMISSION,
            body=AgentRunRequest,
            responses={200: AgentRun, 202: AgentRunAccepted},
            tags=("agent runs",),
        )
    ]

    def __init__(self, services: Services, settings: Settings) -> None:
        super().__init__(services)
        self._settings = settings
        self._breaker = Breaker()
        self._waiters = threading.BoundedSemaphore(max(1, settings.orchestrator_web_threads // 2))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        admin = admin_of(req)
        body = json_body(req, AgentRunRequest)
        admin.require_org(body.org_id)
        wait = wait_seconds(req.get_header("Prefer"), cap=admin_agent_runs.MAX_WAIT_SECONDS)
        submitted = admin_agent_runs.submit(
            self._s.pool,
            self._settings,
            body,
            actor=admin.actor,
            request_id=req.context.get("request_id"),
            enqueue=lambda run_id: self._s.broker.enqueue(agent_run(run_id)),
            breaker=self._breaker,
        )
        run_id = submitted.run_id
        resp.location = f"{RUNS_PATH}/{run_id}"
        status = "queued"
        if wait and submitted.enqueued and self._waiters.acquire(blocking=False):
            try:
                resp.append_header("Preference-Applied", f"wait={wait}")
                finished = admin_agent_runs.wait_finished(self._s.pool, run_id, wait)
            finally:
                self._waiters.release()
            if finished is not None:
                resp.media = finished.model_dump(mode="json")
                return
            status = self._current_status(run_id) or status
        resp.status = falcon.HTTP_202
        resp.media = {"agent_run_id": str(run_id), "status": status}

    def _current_status(self, run_id: uuid.UUID) -> str | None:
        try:
            with self._s.pool.connection() as conn:
                return agent_runs.status_of(conn, run_id)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
            return None  # the run is stored; its status here is a courtesy


class AgentRuns(AdminResource):
    openapi = [
        Operation(
            "GET",
            "Agent runs, newest first (without request and result)",
            permission=PERMISSION,
            query=AgentRunsQuery,
            responses={200: AgentRunsPage},
            tags=("agent runs",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._answer_org_page(req, resp, AgentRunsQuery, agent_runs.page)


class AgentRunItem(AdminResource):
    openapi = [
        Operation(
            "GET",
            "One agent run with its request, result and error",
            permission=PERMISSION,
            responses={200: AgentRun},
            tags=("agent runs",),
        )
    ]

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        admin = admin_of(req)
        run = admin_agent_runs.get(self._s.pool, run_id)
        if run is None or not admin.may_act_in(run.org_id):
            raise _not_found()
        resp.media = run.model_dump(mode="json")
