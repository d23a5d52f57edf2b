"""Stand-in of the AI Pipeline (PEERS.md): `POST /api/v1/teams/{team}/bootstrap`
with a bearer admin token; 401 without one."""

from __future__ import annotations

import uuid

from orchestrator.devstack.standin import Request, Response, StandIn


class AiPipelineStandIn(StandIn):
    name = "ai-pipeline"

    def routes(self) -> None:
        self.route("POST", r"/api/v1/teams/(?P<team>[^/]+)/bootstrap", self._bootstrap)

    def _bootstrap(self, req: Request) -> Response:
        if not req.bearer():
            return Response(401, {"detail": "Not authenticated"})
        return Response(
            200,
            {"run_id": uuid.uuid4().hex, "status": "queued", "team_node_id": req.params["team"]},
        )
