"""`/dashboard/teams/{org_id}/{team_node_id}`: one team at a glance — its schedules,
latest provisioning runs, agent runs and webhook events, each linking to the full
filtered list. Where the links from an event or a run lead."""

from __future__ import annotations

import re

import falcon

from orchestrator import agent_runs
from orchestrator.events import store as events
from orchestrator.provisioning import runs
from orchestrator.schedules import store as schedules
from web.dashboard.base import DashboardResource, PageError, html_page
from web.schemas import ID_PATTERN

LATEST = 10


class Team(DashboardResource):
    @html_page
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, org_id: str, team_node_id: str
    ) -> None:
        viewer = self.page_viewer(req, resp)
        if not (re.match(ID_PATTERN, org_id) and re.match(ID_PATTERN, team_node_id)):
            raise PageError(404, "Not found", "No such team.")
        if not viewer.admin.may_act_in(org_id):
            raise PageError(404, "Not found", "No such team.")
        team: dict[str, str | None] = {"org_id": org_id, "team_node_id": team_node_id}
        with self._d.services.pool.connection() as conn:
            team_schedules = schedules.list_for_team(conn, org_id, team_node_id)
            team_runs, _ = runs.page(conn, filters=team, limit=LATEST, cursor=None)
            team_agent_runs, _ = agent_runs.page(conn, filters=team, limit=LATEST, cursor=None)
            team_events, _ = events.page(conn, filters=team, limit=LATEST, cursor=None)
        self.render(
            resp,
            "team.html",
            viewer=viewer,
            section=None,
            team=team,
            schedules=team_schedules,
            runs=team_runs,
            agent_runs=team_agent_runs,
            events=team_events,
        )
