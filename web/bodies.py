"""Reading request bodies and query strings into pydantic models.

Bodies are read from the bounded stream once, as bytes (the webhook routes need the
raw bytes for signatures), then parsed here: malformed JSON → 400, schema violation →
422 naming the fields. The `BodyLimit` middleware has already capped the size.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import falcon
from pydantic import BaseModel, ValidationError

from orchestrator.json_limits import MAX_JSON_DEPTH, finite_float, too_deep, unstorable_field
from web.errors import Unprocessable, from_validation_error

M = TypeVar("M", bound=BaseModel)


def raw_body(req: falcon.Request) -> bytes:
    cached = req.context.get("raw_body")
    if cached is None:
        cached = req.bounded_stream.read() if req.content_length else b""
        req.context.raw_body = cached
    return bytes(cached)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body(req: falcon.Request, model: type[M]) -> M:
    raw = raw_body(req)
    if not raw.strip():
        raise falcon.HTTPBadRequest(title="Bad Request", description="a JSON body is required")
    try:
        data: Any = json.loads(raw, parse_constant=_not_json, parse_float=finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise falcon.HTTPBadRequest(
            title="Bad Request", description="the body is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise falcon.HTTPBadRequest(
            title="Bad Request", description="the body must be a JSON object"
        )
    if too_deep(raw, data):
        raise falcon.HTTPBadRequest(
            title="Bad Request",
            description=f"the body nests deeper than {MAX_JSON_DEPTH} levels",
        )
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, where="body") from None
    field = unstorable_field(data)
    if field is not None:
        raise Unprocessable(
            f"invalid body: {field}",
            [
                {
                    "field": field,
                    "message": "must not contain U+0000 or unpaired surrogates",
                    "type": "value_error",
                }
            ],
        )
    return parsed


def query(req: falcon.Request, model: type[M]) -> M:
    """Query parameters into `model`; unknown parameters are refused (422) so a typo in
    a filter is not silently ignored."""
    params: dict[str, Any] = {}
    for key, value in req.params.items():
        if isinstance(value, list):
            raise from_validation_error(
                ValidationError.from_exception_data(
                    model.__name__,
                    [{"type": "string_type", "loc": (key,), "input": value}],
                ),
                where="query",
            )
        params[key] = value
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise from_validation_error(exc, where="query") from None
