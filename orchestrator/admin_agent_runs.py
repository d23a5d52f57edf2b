"""Agent runs an admin asks for (`POST /api/v1/admin/agents/run`, SPEC §4.3).

The request becomes a durable run row (`trigger_source = api`, `queued`) and an audit
row in one transaction; its message is enqueued after the commit. Enqueueing after the
commit means a worker never sees a message whose row is not yet visible, and a Redis
outage (or a crash between commit and enqueue) leaves a `queued` row that the
scheduler's relay enqueues later (`ORCHESTRATOR_RELAY_AFTER_SECONDS`): the run is
never lost, so it is accepted either way.

A worker then runs it through `agent_dispatch.call_agent`, the same code as webhook
runs: advisory lock per run, impersonation token, effective config, dedicated-URL
rule. Transient failures (connection errors, timeouts, 429, 5xx) leave the run
`running` with the last error noted and are raised for the broker to retry with
backoff; on the last attempt — by the message's retry count or by the run's own
attempt counter, whichever comes first — and on any permanent failure (404 unknown
agent, other 4xx, `success:false`) the run ends `failed` with the reason.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from orchestrator import agent_dispatch, agent_runs, audit
from orchestrator.agent_dispatch import AgentDispatchDeps, AgentPlan
from orchestrator.agent_runs import AgentRun
from orchestrator.breaker import Breaker
from orchestrator.errors import PermanentError, is_transient
from orchestrator.events.store import storable
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator.agents")

TRIGGER_SOURCE = "api"
ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# A path segment of `/agents/{name}/run`: starts with a letter or digit, so "." and ".."
# (which URL normalisation would turn into another path) are impossible.
AGENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
MAX_MESSAGE_CHARS = 65_536
MAX_TIMEOUT_SECONDS = 3600
MAX_TURNS = 500
MAX_WAIT_SECONDS = 60


class AgentRunRequest(BaseModel):
    """The body of `POST /api/v1/admin/agents/run`. `timeout` and `max_turns` default to
    the generic source's settings (`ORCHESTRATOR_GENERIC_AGENT_TIMEOUT_SECONDS`,
    `ORCHESTRATOR_GENERIC_AGENT_MAX_TURNS`): an admin run is the generic trigger that
    no webhook source describes better."""

    model_config = ConfigDict(extra="forbid")

    org_id: str = Field(pattern=ID_PATTERN)
    team_node_id: str = Field(pattern=ID_PATTERN)
    agent_name: str = Field(pattern=AGENT_NAME_PATTERN)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    context: dict[str, Any] = Field(default_factory=dict)
    # Strict: JSON `true` is not the number 1 (pydantic's lax ints would take it).
    timeout: StrictInt | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SECONDS)
    max_turns: StrictInt | None = Field(default=None, ge=1, le=MAX_TURNS)

    @field_validator("message")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain more than whitespace")
        _require_storable(value)
        return value

    @field_validator("context")
    @classmethod
    def _context_storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        _require_storable(value)
        return value


def _require_storable(value: Any) -> None:
    # Postgres text and JSONB cannot hold U+0000 or lone surrogates; refuse them here
    # (422) instead of failing the insert (500).
    if storable(value, mask=False)[1]:
        raise ValueError("must not contain U+0000 or unpaired surrogates")


@dataclass(frozen=True)
class Submitted:
    run_id: uuid.UUID
    enqueued: bool


def submit(
    pool: ConnectionPool[Connection[Any]],
    settings: Settings,
    request: AgentRunRequest,
    *,
    actor: str,
    request_id: str | None,
    enqueue: Callable[[str], object],
    breaker: Breaker,
) -> Submitted:
    """Store the run and its audit row, then enqueue it. A refused enqueue trips
    `breaker` (later requests skip Redis for its cooldown instead of each paying a
    timeout) and leaves the run to the relay."""
    stored = {
        "message": request.message,
        "context": request.context,
        "timeout": request.timeout or settings.agent_timeout("generic"),
        "max_turns": request.max_turns or settings.agent_max_turns("generic"),
    }
    with pool.connection() as conn, conn.transaction():
        run_id = agent_runs.create(
            conn,
            org_id=request.org_id,
            team_node_id=request.team_node_id,
            agent_name=request.agent_name,
            trigger_source=TRIGGER_SOURCE,
            request=stored,
        )
        audit.record(
            conn,
            actor=actor,
            action="agent_run.requested",
            org_id=request.org_id,
            team_node_id=request.team_node_id,
            subject=str(run_id),
            request_id=request_id,
            detail={
                "agent_name": request.agent_name,
                "timeout": stored["timeout"],
                "max_turns": stored["max_turns"],
                "message_chars": len(request.message),
            },
        )
    if breaker.open:
        return Submitted(run_id, enqueued=False)
    try:
        enqueue(str(run_id))
    except Exception as exc:  # Redis down: stored and accepted, relayed later
        breaker.trip()
        log.warning(
            "agent run stored but not enqueued; the relay will enqueue it",
            extra={"agent_run_id": str(run_id), "error": type(exc).__name__},
        )
        return Submitted(run_id, enqueued=False)
    return Submitted(run_id, enqueued=True)


def get(pool: ConnectionPool[Connection[Any]], run_id: str) -> AgentRun | None:
    """The run, or None for an unknown or malformed id."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        return None
    with pool.connection() as conn:
        return agent_runs.get(conn, parsed)


def wait_finished(
    pool: ConnectionPool[Connection[Any]],
    run_id: uuid.UUID,
    seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AgentRun | None:
    """The run once finished, or None if it is not within `seconds` (`Prefer: wait`).

    Polls the status only (a primary-key read), borrowing a pooled connection per poll
    so that waiting requests hold a web thread but no connection: every 50 ms for the
    first two seconds, so a quick run answers promptly, then every 250 ms, so a
    minute-long wait costs about 270 reads rather than 1,200. A database hiccup ends the
    wait early (the caller answers the ordinary 202: the run is stored)."""
    started = clock()
    deadline = started + seconds
    while True:
        try:
            with pool.connection() as conn:
                status = agent_runs.status_of(conn, run_id)
                if status in agent_runs.FINISHED:
                    return agent_runs.get(conn, run_id)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
            return None
        now = clock()
        if now >= deadline:
            return None
        interval = 0.05 if now - started < 2.0 else 0.25
        sleep(min(interval, deadline - now))


def execute(deps: AgentDispatchDeps, run_id: str, *, is_last_attempt: bool) -> str:
    """The worker's part: call the agent for an admin run; returns the run's status
    (`succeeded`, `failed`, or `running` when another worker holds it). Failures are
    recorded on the run and re-raised for the broker's retry policy."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        raise PermanentError("malformed agent run id") from None
    max_attempts = deps.settings.orchestrator_max_attempts

    def plan(run: AgentRun, effective: dict[str, Any]) -> AgentPlan:
        # The caller reads the answer from the run, so the team's default destinations
        # (meant for incidents arriving from a source) do not apply; an explicit
        # `output_config.trigger_overrides.api` does.
        return AgentPlan(
            agent_name=run.agent_name,
            output_destinations=agent_dispatch.output_destinations(
                effective, TRIGGER_SOURCE, [], use_default=False
            ),
        )

    def on_error(conn: Connection[Any], run: AgentRun, attempt: int, exc: Exception) -> None:
        reason = f"{getattr(exc, 'reason', type(exc).__name__)}: {exc}"[:1000]
        last = is_last_attempt or attempt >= max_attempts
        if is_transient(exc) and not last:
            agent_runs.note_error(
                conn, run.agent_run_id, f"{reason} (attempt {attempt} of {max_attempts})"
            )
            return
        agent_runs.finish(conn, run.agent_run_id, succeeded=False, error=reason)
        log.warning(
            "agent run failed",
            extra={"agent_run_id": str(run.agent_run_id), "error": reason[:200]},
        )

    done = agent_dispatch.call_agent(deps, parsed, plan=plan, on_error=on_error)
    return "running" if done.kind == "busy" else done.status
