"""`POST /webhooks/*` (SPEC §4.2), in the contract's order: size limits (middleware) →
signature on the raw bytes → flood guard → durable insert with dedup → enqueue → ack.

The insert and the enqueue share one transaction: the row commits as `queued` when the
message reached Redis, as `received` when Redis was down (the relay enqueues it later).
Postgres down → 503 and nothing acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
from prometheus_client import Counter

from orchestrator.breaker import Breaker
from orchestrator.events import store
from orchestrator.settings import Settings
from orchestrator.webhooks.flood_guard import FloodGuard
from orchestrator.webhooks.model import Inbound, WebhookRejected
from orchestrator.webhooks.registry import Endpoint
from web.bodies import raw_body
from web.openapi import Operation
from web.services import Services
from workers.messages import webhook_event

log = logging.getLogger("orchestrator.webhooks")

WEBHOOKS = Counter(
    "orchestrator_webhooks_total",
    "Webhook deliveries by source and outcome",
    ["source", "outcome"],
)


class Webhook:
    """One instance per webhook route."""

    def __init__(
        self, endpoint: Endpoint, settings: Settings, services: Services, guard: FloodGuard
    ) -> None:
        self._endpoint = endpoint
        self._secrets = settings.webhook_secrets(endpoint.secret_source)
        self._s = services
        self._guard = guard
        self._enqueue_breaker = Breaker()
        self.openapi = [
            Operation("POST", f"{endpoint.name} webhook", auth="none", tags=("webhooks",))
        ]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        source = self._endpoint.name
        secrets = self._secrets
        if not secrets:
            self._count("disabled")
            raise falcon.HTTPNotFound(title="Not Found", description="source not configured")
        inbound = Inbound(raw_body(req), {k.lower(): v for k, v in req.headers.items()})
        try:
            self._endpoint.source.verify(secrets, inbound)
        except WebhookRejected as exc:
            self._count("forged")
            raise falcon.HTTPUnauthorized(
                title="Unauthorized", description=exc.description
            ) from None
        wait = self._guard.admit(source)
        if wait is not None:
            self._count("throttled")
            raise falcon.HTTPTooManyRequests(
                title="Too Many Requests",
                description=f"{source} ingress limit reached",
                retry_after=int(wait),
            )
        try:
            parsed = self._endpoint.source.parse(inbound)
        except WebhookRejected as exc:
            self._count("malformed")
            raise falcon.HTTPError(
                _STATUS[exc.status], title=_TITLE[exc.status], description=exc.description
            ) from None
        if parsed.inline_response is not None:
            resp.media = parsed.inline_response
            return
        event_id, duplicate = self._store(source, parsed, inbound)
        self._count("duplicate" if duplicate else "accepted")
        resp.media = (
            {"ok": True, "duplicate": True, "event_id": str(event_id)}
            if duplicate
            else {"ok": True, "event_id": str(event_id)}
        )

    def _store(self, source: str, parsed: Any, inbound: Inbound) -> tuple[Any, bool]:
        with self._s.pool.connection() as conn, conn.transaction():
            event_id, duplicate = store.insert(
                conn, source=source, parsed=parsed, headers=inbound.stored_headers()
            )
            if duplicate:
                return event_id, True
            if self._enqueue_breaker.open:
                return event_id, False  # Redis failed moments ago: the relay enqueues it
            try:
                self._s.broker.enqueue(webhook_event(str(event_id)))
            except Exception as exc:  # Redis down: stored and acknowledged, relayed later
                self._enqueue_breaker.trip()
                log.warning(
                    "event stored but not enqueued; the relay will enqueue it",
                    extra={"event_id": str(event_id), "error": type(exc).__name__},
                )
                return event_id, False
            store.set_status(conn, event_id, "queued")
        return event_id, False

    def _count(self, outcome: str) -> None:
        WEBHOOKS.labels(self._endpoint.name, outcome).inc()


_STATUS = {400: falcon.HTTP_400, 422: falcon.HTTP_422}
_TITLE = {400: "Bad Request", 422: "Unprocessable Entity"}
