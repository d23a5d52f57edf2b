"""Request-wide rules of SPEC §4: request ids, body limits, metrics.

Each middleware is one concern; `create_app` lists them explicitly in order.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import falcon

from orchestrator.logs import request_id_var
from web.metrics import WebMetrics

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestId:
    """Echo a sane client `X-Request-ID`, otherwise mint one; expose it to logs and
    error bodies through a context variable."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-ID")
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex
        req.context.request_id = request_id
        req.context.request_id_token = request_id_var.set(request_id)
        resp.set_header("X-Request-ID", request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        request_id = req.context.get("request_id")
        if request_id:
            resp.set_header("X-Request-ID", request_id)
        token = req.context.get("request_id_token")
        if token is not None:
            request_id_var.reset(token)


class BodyLimit:
    """Refuse what cannot be bounded (chunked → 411) or is too large (→ 413) before any
    responder reads a byte. Runs after routing so unknown paths stay 404."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None or req.method not in _BODY_METHODS:
            return
        length = req.content_length  # raises HTTPInvalidHeader (400) when malformed
        if length is None:
            if "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
                raise falcon.HTTPLengthRequired(
                    title="Length Required",
                    description=(
                        "send the body with a Content-Length header (chunked bodies are refused)"
                    ),
                )
            return
        if length > self.max_bytes:
            raise falcon.HTTPContentTooLarge(
                title="Payload Too Large",
                description=f"request body is {length} bytes; the limit is {self.max_bytes}",
            )


class Metrics:
    """Count and time every request by method, route template and status. Route
    templates (`/api/v1/admin/jobs/dead/{message_id}`), never raw paths, keep the label
    set bounded."""

    def __init__(self, metrics: WebMetrics) -> None:
        self.metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = req.context.get("started")
        if started is None:
            return
        route = req.uri_template if resource is not None and req.uri_template else "unmatched"
        method = req.method if req.method in _KNOWN_METHODS else "OTHER"
        status = str(resp.status_code if hasattr(resp, "status_code") else resp.status)[:3]
        self.metrics.observe(method, route, status, time.perf_counter() - started)


_KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
