"""Shapes of the web tier's answers and requests that are not domain objects, used both
by responders and by the generated `/openapi.json`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# Dramatiq message ids are UUIDs; Redis ids of dead letters too.
MESSAGE_ID = r"^[A-Za-z0-9-]{1,64}$"


class ErrorField(BaseModel):
    field: str
    message: str
    type: str


class ErrorBody(BaseModel):
    title: str
    description: str
    request_id: str | None
    errors: list[ErrorField] | None = None


class Health(BaseModel):
    status: Literal["ok"]


class ReadyChecks(BaseModel):
    postgres: str
    redis: str
    migrations: str


class Ready(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: ReadyChecks


class NoQuery(BaseModel):
    """For routes that take no query parameters: any given is a mistake worth a 422."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512)


class AuditQuery(PageQuery):
    org_id: str | None = Field(default=None, pattern=ID_PATTERN)
    action: str | None = Field(default=None, pattern=r"^[a-z0-9._-]{1,64}$")


class AuditItem(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    org_id: str | None
    team_node_id: str | None
    subject: str | None
    request_id: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditItem]
    next_cursor: str | None


class QueueDepthOut(BaseModel):
    name: str
    ready: int
    delayed: int
    in_progress: int
    dead: int


class QueuesOut(BaseModel):
    queues: list[QueueDepthOut]
    workers_alive: int


class DeadQuery(PageQuery):
    queue: Literal["webhooks", "agents", "provisioning", "default"] | None = None


class DeadLetterOut(BaseModel):
    message_id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    retries: int
    died_at: str
    error: str | None
    traceback: str | None


class DeadPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class BulkRequeue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_ids: list[Annotated[str, Field(pattern=MESSAGE_ID)]] = Field(
        min_length=1, max_length=500
    )


class RequeueResult(BaseModel):
    requeued: list[str]
    not_found: list[str]
