"""What a worker does with one stored webhook event (SPEC §4.2):

routing identifiers → Config Service routing lookup → `unroutable` | classify → `ignored`
| per-team dispatch limit → `throttled` (retried later) | impersonation token →
effective config → agent run (`dispatched` once it starts) → run `succeeded`/`failed`.

It is safe to run any number of times for one event: final events are left alone, and
the agent run row is created once and linked to the event before the agent is called,
so a retry or a redelivery after a crash calls the agent with the same correlation id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import Connection

from orchestrator import agent_dispatch, agent_runs
from orchestrator.agent_dispatch import AgentDispatchDeps, AgentPlan, output_destinations
from orchestrator.agent_dispatch import agent_url as agent_url  # where the tests know it
from orchestrator.errors import PermanentError, TransientError
from orchestrator.events import store
from orchestrator.webhooks.model import Trigger, WebhookSource

log = logging.getLogger("orchestrator.events")

TRIGGER_SOURCE = {"slack_interactions": "slack"}


class EventNotYetVisible(TransientError):
    """The message arrived before the web tier's transaction committed."""


class Throttled(TransientError):
    """Over the team's dispatch limit; `delay_ms` says when to try again."""

    reason = "throttled"

    def __init__(self, message: str, delay_ms: int) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


@dataclass
class PipelineDeps(AgentDispatchDeps):
    """The agent-call dependencies plus what routing needs: the webhook sources and
    the per-team dispatch limit."""

    sources: Callable[[str], WebhookSource]
    # (org, team) → None when admitted, else milliseconds to wait.
    dispatch_limit: Callable[[str, str], int | None]


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str = ""


def process(deps: PipelineDeps, event_id: str, *, is_last_attempt: bool) -> Outcome:
    event = _load(deps, event_id)
    if event.status in store.FINAL_STATUSES and event.agent_run_id is None:
        return Outcome(event.status, "already final")
    try:
        return _process(deps, event)
    except Throttled:
        raise
    except (TransientError, PermanentError) as exc:
        transient = isinstance(exc, TransientError)
        with deps.pool.connection() as conn:
            conn.execute(
                "UPDATE orchestrator_webhook_events SET attempts = attempts + 1,"
                " last_error = %s WHERE id = %s",
                (str(exc)[:1000], event.event_id),
            )
        if not transient or is_last_attempt:
            _fail(deps, event, f"{exc.reason}: {exc}")
        raise


def _load(deps: PipelineDeps, event_id: str) -> store.EventDetail:
    # The web tier enqueues inside its insert transaction; give the commit a moment.
    for _ in range(20):
        with deps.pool.connection() as conn:
            event = store.get(conn, event_id)
        if event is not None:
            return event
        time.sleep(0.05)
    raise EventNotYetVisible(f"event {event_id} is not (yet) stored")


def _process(deps: PipelineDeps, event: store.EventDetail) -> Outcome:
    if event.agent_run_id is not None:
        return _call_agent(deps, event, event.agent_run_id)
    identifiers = {k: str(v) for k, v in event.routing_identifiers.items() if v}
    if not identifiers:
        return _final(deps, event, "unroutable", "the payload carries no routing identifier")
    match = deps.config.routing_lookup(identifiers)
    if not match.found or not match.org_id or not match.team_node_id:
        return _final(deps, event, "unroutable", f"no team owns {', '.join(sorted(identifiers))}")
    routed: dict[str, Any] = {
        "org_id": match.org_id,
        "team_node_id": match.team_node_id,
        "matched_by": match.matched_by,
    }
    trigger = deps.sources(event.source).classify(event.event_type or "", event.payload or {})
    if not trigger.is_trigger:
        return _final(deps, event, "ignored", trigger.reason, **routed)
    if trigger.kind == "feedback":
        deps.config.feedback({**_feedback_body(trigger, event), "source": "slack"})
        return _final(deps, event, "dispatched", "feedback sent to the Config Service", **routed)
    wait_ms = deps.dispatch_limit(match.org_id, match.team_node_id)
    if wait_ms is not None:
        with deps.pool.connection() as conn:
            store.set_status(
                conn,
                event.event_id,
                "throttled",
                detail=f"team dispatch limit; retry in {wait_ms} ms",
                **routed,
            )
        raise Throttled("team dispatch limit reached", wait_ms)
    run_id = _create_run(deps, event, trigger, match.org_id, match.team_node_id, routed)
    return _call_agent(deps, event, run_id)


def _create_run(
    deps: PipelineDeps,
    event: store.EventDetail,
    trigger: Trigger,
    org_id: str,
    team_node_id: str,
    routed: dict[str, Any],
) -> uuid.UUID:
    source = TRIGGER_SOURCE.get(event.source, event.source)
    request = {
        "message": trigger.message,
        "context": {k: v for k, v in trigger.context.items() if k != "output_destinations"},
        "output_destinations": trigger.context.get("output_destinations", []),
        "timeout": deps.settings.agent_timeout(source),
        "max_turns": deps.settings.agent_max_turns(source),
    }
    with deps.pool.connection() as conn, conn.transaction():
        # Two deliveries of one event can get here together (the relay re-enqueues an
        # event that waited too long while its first message is still queued): the row
        # lock makes the second join the run the first created, so the agent is never
        # called for one event under two correlation ids.
        locked = conn.execute(
            "SELECT agent_run_id FROM orchestrator_webhook_events WHERE id = %s FOR UPDATE",
            (event.event_id,),
        ).fetchone()
        if locked is not None and locked["agent_run_id"] is not None:
            existing: uuid.UUID = locked["agent_run_id"]
            return existing
        run_id = agent_runs.create(
            conn,
            org_id=org_id,
            team_node_id=team_node_id,
            agent_name="(entrance agent)",
            trigger_source=source,
            request=request,
            event_id=event.event_id,
        )
        store.set_status(
            conn,
            event.event_id,
            "queued",
            detail=f"agent run {run_id} created",
            agent_run_id=run_id,
            **routed,
        )
    return run_id


def _call_agent(deps: PipelineDeps, event: store.EventDetail, run_id: uuid.UUID) -> Outcome:
    """The shared agent call (lock, attempt, token, config, URL rule) with the webhook's
    choices: the team's entrance agent, destinations by source, and the event marked
    `dispatched` in the transaction that records the start. Failures propagate to
    `process`, which fails the event and its run."""

    def plan(run: agent_runs.AgentRun, effective: dict[str, Any]) -> AgentPlan:
        return AgentPlan(
            agent_name=str(effective.get("entrance_agent") or "planner"),
            output_destinations=output_destinations(
                effective, run.trigger_source, run.request.get("output_destinations") or []
            ),
        )

    def on_start(conn: Connection[Any], run: agent_runs.AgentRun, chosen: AgentPlan) -> None:
        if event.status != "dispatched":
            store.set_status(
                conn,
                event.event_id,
                "dispatched",
                detail=f"agent {chosen.agent_name} run {run_id} started",
            )

    done = agent_dispatch.call_agent(deps, run_id, plan=plan, on_start=on_start)
    if done.kind == "busy":
        return Outcome("dispatched", "another worker is running this agent run")
    if done.kind == "finished":
        # The run ended under another delivery; if this event's status was moved back
        # meanwhile (a relay racing the dispatch), it must still end final, not be
        # re-relayed forever.
        status: Literal["dispatched", "failed"] = (
            "dispatched" if done.status == "succeeded" else "failed"
        )
        if event.status != status:
            with deps.pool.connection() as conn:
                store.set_status(
                    conn, event.event_id, status, detail=f"agent run {run_id} had finished"
                )
        return Outcome(status, "run finished")
    return Outcome("dispatched", "agent run succeeded")


def _feedback_body(trigger: Trigger, event: store.EventDetail) -> dict[str, Any]:
    ctx = trigger.context
    body = {
        "run_id": ctx.get("run_id") or str(event.event_id),
        "feedback": ctx.get("feedback") or "unknown",
        "correlation_id": str(event.event_id),
    }
    if ctx.get("user_id"):
        body["user_id"] = ctx["user_id"]
    return body


def _final(
    deps: PipelineDeps,
    event: store.EventDetail,
    status: store.EventStatus,
    detail: str,
    **fields: Any,
) -> Outcome:
    with deps.pool.connection() as conn:
        store.set_status(conn, event.event_id, status, detail=detail, **fields)
    return Outcome(status, detail)


def _fail(deps: PipelineDeps, event: store.EventDetail, reason: str) -> None:
    with deps.pool.connection() as conn, conn.transaction():
        current = store.get(conn, event.event_id)
        run_id = current.agent_run_id if current else None
        store.set_status(conn, event.event_id, "failed", detail=reason, last_error=reason)
        if run_id is not None:
            agent_runs.finish(conn, run_id, succeeded=False, error=reason)
