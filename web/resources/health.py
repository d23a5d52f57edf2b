"""`/health`, `/ready`, `/metrics` and `/openapi.json` (SPEC §4.1): public, no auth."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import falcon

from web.metrics import exposition
from web.openapi import Operation
from web.schemas import Health as HealthOut
from web.schemas import Ready as ReadyOut


class Health:
    """Alive: touches no dependency, so a slow database never restarts the pod."""

    openapi = [Operation("GET", "Process liveness", auth="none", responses={200: HealthOut})]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    """Ready: Postgres, Redis and the schema all answer; 503 names what does not."""

    openapi = [
        Operation(
            "GET",
            "Readiness of Postgres, Redis and migrations",
            auth="none",
            responses={200: ReadyOut, 503: ReadyOut},
        )
    ]

    def __init__(self, checks: Callable[[], dict[str, str]]) -> None:
        self._checks = checks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = self._checks()
        ok = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ok else falcon.HTTP_503
        resp.media = {"status": "ready" if ok else "unavailable", "checks": checks}


class Metrics:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, content_type = exposition()
        resp.content_type = content_type
        resp.data = body


class OpenApi:
    def __init__(self, document: Callable[[], dict[str, Any]]) -> None:
        self._document = document
        self._cached: bytes | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._cached is None:
            self._cached = json.dumps(self._document()).encode()
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._cached
