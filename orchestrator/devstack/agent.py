"""Stand-in of the Agent Service (PEERS.md): `POST /agents/{agent_name}/run`.

Records every call (headers and body) and answers like the real service: 200 with
`success:true`, or what a test asks for through faults. The webhook capability grows it
(slow runs, `success:false`, unknown agents)."""

from __future__ import annotations

import uuid

from orchestrator.devstack.standin import Request, Response, StandIn


class AgentStandIn(StandIn):
    name = "agent"

    def routes(self) -> None:
        self.route("POST", r"/agents/(?P<agent>[^/]+)/run", self._run)

    def _run(self, req: Request) -> Response:
        if not req.headers.get("x-incidentfox-team-token"):
            return Response(500, {"detail": "Internal Server Error"})
        body = req.json() or {}
        if not isinstance(body, dict) or not body.get("message"):
            return Response(
                422, {"detail": [{"loc": ["body", "message"], "msg": "field required"}]}
            )
        return Response(
            200,
            {
                "success": True,
                "agent": req.params["agent"],
                "run_id": uuid.uuid4().hex,
                "correlation_id": req.headers.get("x-correlation-id"),
                "duration_seconds": 0.0,
                "output": f"stand-in agent {req.params['agent']} handled: {body['message'][:200]}",
            },
        )
