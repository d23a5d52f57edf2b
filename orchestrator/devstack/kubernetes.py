"""Stand-in of the Kubernetes API server, reached through the official client.

This first version answers discovery (`/version`, `/api`, `/apis`) and answers every
resource path with the API server's own `Status` 404, so a client pointed at it fails
the way a real cluster without those objects does. The schedules capability grows it
into the full CronJob/Deployment/Service store (SPEC §8)."""

from __future__ import annotations

from orchestrator.devstack.standin import Request, Response, StandIn


class KubernetesStandIn(StandIn):
    name = "kubernetes"

    def routes(self) -> None:
        # Complete objects: the 37.x client validates responses, not only requests.
        self.route(
            "GET",
            r"/version/?",
            lambda _r: Response(
                200,
                {
                    "major": "1",
                    "minor": "31",
                    "gitVersion": "v1.31.0-standin",
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            ),
        )
        self.route(
            "GET",
            r"/api",
            lambda _r: Response(
                200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
            ),
        )
        self.route(
            "GET",
            r"/apis",
            lambda _r: Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        )

    def not_found(self, req: Request) -> Response:
        return Response(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"the server could not find the requested resource ({req.path})",
                "reason": "NotFound",
                "details": {},
                "code": 404,
            },
        )

    def kubeconfig(self, namespace: str) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: standin\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: standin\n  user:\n    token: standin\n"
            "contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n"
            f"    namespace: {namespace}\n"
            "current-context: standin\n"
        )
