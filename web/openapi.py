"""`/openapi.json`, generated from the routes the app really serves and the pydantic
models their responders use — never written by hand, so it cannot drift.

Each resource class carries `openapi: list[Operation]`; `build_document` walks the
app's route table and turns those into an OpenAPI 3.1 document. The same declarations
decide authentication (`web.auth.Authentication` enforces each operation's `auth` and
`permission`), so what the document promises is what is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.schemas import ErrorBody

# "dashboard": the dashboard's own JSON, for its pages only — the session cookie, never
# a bearer token (SPEC §4.3).
Auth = Literal["none", "admin", "internal", "dashboard"]


@dataclass(frozen=True)
class Operation:
    method: str
    summary: str
    auth: Auth = "admin"
    permission: str | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    content_type: str = "application/json"


_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")

_ERROR_CODES = {
    "admin": (400, 401, 403, 404, 411, 413, 422, 503),
    "internal": (400, 401, 404, 411, 413, 422),
    "dashboard": (401, 403, 503),
    "none": (),
}


def build_document(routes: list[tuple[str, Any]], *, version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorBody}
    for _path, resource in routes:
        for op in getattr(resource, "openapi", []):
            models.update(m for m in (op.query, op.body, *op.responses.values()) if m)
    _, schemas = models_json_schema(
        [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    components = schemas.get("$defs", {})

    paths: dict[str, Any] = {}
    for path, resource in routes:
        ops = getattr(resource, "openapi", [])
        if not ops:
            continue
        entry = paths.setdefault(_PARAM.sub(r"{\1}", path), {})
        for op in ops:
            entry[op.method.lower()] = _operation(path, op)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IncidentFox Orchestrator",
            "version": version,
            "description": "Admin, internal and operational API of the orchestrator.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "adminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Admin token verified by the Config Service /api/v1/auth/me",
                },
                "adminHeader": {"type": "apiKey", "in": "header", "name": "X-Admin-Token"},
                "internalBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "ORCHESTRATOR_INTERNAL_TOKEN",
                },
                "dashboardSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "orch_dashboard",
                    "description": "Session cookie set by POST /dashboard/login",
                },
            },
        },
    }


def _operation(path: str, op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": _operation_id(op.method, path),
        "parameters": params,
        "responses": {},
    }
    if op.tags:
        out["tags"] = list(op.tags)
    if op.permission:
        out["description"] = f"Requires permission `{op.permission}` (or `admin:*`)."
    if op.auth == "admin":
        out["security"] = [{"adminBearer": []}, {"adminHeader": []}]
    elif op.auth == "internal":
        out["security"] = [{"internalBearer": []}]
    elif op.auth == "dashboard":
        out["security"] = [{"dashboardSession": []}]
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    for code, model in sorted(op.responses.items()):
        resp: dict[str, Any] = {"description": _describe(code)}
        if model is not None:
            resp["content"] = {op.content_type: {"schema": _ref(model)}}
        out["responses"][str(code)] = resp
    for code in _ERROR_CODES[op.auth]:
        if op.body is None and code in (411, 413):
            continue
        out["responses"].setdefault(
            str(code),
            {
                "description": _describe(code),
                "content": {"application/json": {"schema": _ref(ErrorBody)}},
            },
        )
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation_id(method: str, path: str) -> str:
    words = [w for w in re.split(r"[/{}_.-]+", path) if w and w not in ("api", "v1")]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def _describe(code: int) -> str:
    return {
        200: "OK",
        201: "Created",
        202: "Accepted",
        204: "No Content",
        400: "Malformed request",
        401: "Missing or invalid credential",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        411: "Content-Length required",
        413: "Body too large",
        422: "Validation failed",
        503: "A dependency is unavailable",
    }.get(code, "Response")
