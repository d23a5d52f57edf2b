"""Uniform JSON errors (SPEC §4): `{"title","description","request_id"}`, plus the
offending fields on 422. The catch-all logs the exception with the request id and
answers a bare 500: no traceback, class name or message leaves the process."""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon
from pydantic import ValidationError

from orchestrator.logs import request_id_var

log = logging.getLogger("orchestrator.web")


class Unprocessable(falcon.HTTPUnprocessableEntity):
    """422 carrying the list of offending fields."""

    def __init__(self, description: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(title="Unprocessable Entity", description=description)
        self.errors = errors


def bad_cursor() -> Unprocessable:
    return Unprocessable(
        "invalid query: cursor",
        [{"field": "cursor", "message": "malformed cursor", "type": "value_error"}],
    )


def from_validation_error(exc: ValidationError, *, where: str) -> Unprocessable:
    errors = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or where,
            # pydantic prefixes a validator's own message with "Value error, ".
            "message": err["msg"].removeprefix("Value error, "),
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    names = ", ".join(e["field"] for e in errors[:5])
    return Unprocessable(f"invalid {where}: {names}", errors)


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def serialize_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    code = exc.status_code
    body: dict[str, Any] = {
        "title": _TITLES.get(code) or (exc.title or "Error"),
        "description": exc.description or exc.title or _TITLES.get(code, "error"),
        "request_id": request_id_var.get() or req.context.get("request_id"),
    }
    errors = getattr(exc, "errors", None)
    if errors:
        body["errors"] = errors
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body)


def handle_dependency_down(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]
) -> None:
    """Postgres or Redis unreachable: the client may retry, so 503, not 500."""
    log.warning(
        "dependency unavailable",
        extra={"route": req.uri_template or "unmatched", "error": type(exc).__name__},
    )
    raise falcon.HTTPServiceUnavailable(
        title="Service Unavailable",
        description="a backing service (database or queue) is unavailable; retry later",
        headers={"Retry-After": "5"},
    )


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]
) -> None:
    log.exception(
        "unhandled error", extra={"route": req.uri_template or "unmatched", "method": req.method}
    )
    raise falcon.HTTPInternalServerError(
        title="Internal Server Error",
        description="an internal error occurred; quote the request id when reporting it",
    )
