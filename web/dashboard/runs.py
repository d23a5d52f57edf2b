"""Provisioning runs (`/dashboard/runs`, one run with its step timeline at
`/dashboard/runs/{id}`) and agent runs (`/dashboard/agent-runs[/{id}]`).

An org admin sees its own org's runs only; another org's run is as invisible as a
missing one. A provisioning run's new team token is never shown nor delivered here:
the pages read runs through `runs.get`/`runs.page`, which do not return it, and never
call `deliver_token` (SPEC §5: only the first API read by `admin:provision` gets it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import falcon

from orchestrator import agent_runs
from orchestrator.provisioning import runs
from web.dashboard.base import DashboardResource, PageError, bad_cursor, filters, html_page
from web.resources.agent_runs import AgentRunsQuery
from web.resources.provisioning import RunsQuery

TIMELINE_WIDTH = 1000


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PageError(404, "Not found", f"No such {what}.") from None


@dataclass(frozen=True)
class Bar:
    """A step's bar on the run's timeline, in units of `TIMELINE_WIDTH`."""

    step: runs.Step
    x: int
    width: int


def timeline(run: runs.Run, now: datetime) -> list[Bar]:
    """Each step that started, placed between the run's start and its end (or now);
    the span stretches to cover every step, so a clock skew never hides one."""
    started = [s.started_at for s in run.steps if s.started_at is not None]
    finished = [s.finished_at for s in run.steps if s.finished_at is not None]
    start = min([run.started_at or run.created_at, *started])
    end = max([run.finished_at or now, *finished])
    span = max((end - start).total_seconds(), 0.001)
    bars = []
    for step in run.steps:
        if step.started_at is None:
            continue
        left = max((step.started_at - start).total_seconds(), 0.0)
        right = max(((step.finished_at or end) - start).total_seconds(), left)
        x = min(int(left / span * TIMELINE_WIDTH), TIMELINE_WIDTH - 4)
        width = max(int((right - left) / span * TIMELINE_WIDTH), 4)
        bars.append(Bar(step, x, min(width, TIMELINE_WIDTH - x)))
    return bars


class ProvisioningRuns(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer = self.page_viewer(req, resp)
        q = filters(req, RunsQuery)
        selected: dict[str, Any] = q.model_dump(
            include={"org_id", "team_node_id", "status", "kind"}
        )
        if not viewer.super_admin:
            selected["org_id"] = viewer.admin.org_id
        try:
            with self._d.services.pool.connection() as conn:
                items, next_cursor = runs.page(
                    conn, filters=selected, limit=q.limit, cursor=q.cursor
                )
        except ValueError:
            raise bad_cursor() from None
        self.render(
            resp,
            "runs.html",
            viewer=viewer,
            section="runs",
            items=items,
            selected=selected,
            statuses=get_args(runs.RunStatus),
            next_cursor=next_cursor,
            paged=bool(q.cursor),
        )


class ProvisioningRun(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        viewer = self.page_viewer(req, resp)
        with self._d.services.pool.connection() as conn:
            run = runs.get(conn, _uuid(run_id, "provisioning run"))
        if run is None or not viewer.admin.may_act_in(run.org_id):
            raise PageError(404, "Not found", "No such provisioning run.")
        self.render(
            resp,
            "run.html",
            viewer=viewer,
            section="runs",
            run=run,
            bars={bar.step.name: bar for bar in timeline(run, self._d.now())},
            width=TIMELINE_WIDTH,
        )


class AgentRuns(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        viewer = self.page_viewer(req, resp)
        q = filters(req, AgentRunsQuery)
        selected: dict[str, Any] = q.model_dump(
            include={"org_id", "team_node_id", "status", "trigger_source"}
        )
        if not viewer.super_admin:
            selected["org_id"] = viewer.admin.org_id
        try:
            with self._d.services.pool.connection() as conn:
                items, next_cursor = agent_runs.page(
                    conn, filters=selected, limit=q.limit, cursor=q.cursor
                )
        except ValueError:
            raise bad_cursor() from None
        self.render(
            resp,
            "agent_runs.html",
            viewer=viewer,
            section="agent-runs",
            items=items,
            selected=selected,
            statuses=get_args(agent_runs.RunStatus),
            sources=get_args(agent_runs.TriggerSource),
            next_cursor=next_cursor,
            paged=bool(q.cursor),
        )


class AgentRun(DashboardResource):
    @html_page
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        viewer = self.page_viewer(req, resp)
        with self._d.services.pool.connection() as conn:
            run = agent_runs.get(conn, _uuid(run_id, "agent run"))
        if run is None or not viewer.admin.may_act_in(run.org_id):
            raise PageError(404, "Not found", "No such agent run.")
        self.render(resp, "agent_run.html", viewer=viewer, section="agent-runs", run=run)
