"""`POST /webhooks/*` (SPEC §4.2), in the contract's order: size limits (middleware) →
signature on the raw bytes → flood guard → durable insert with dedup and enqueue
(`web.intake`) → ack. Postgres down → 503 and nothing acknowledged.
"""

from __future__ import annotations

import falcon
from prometheus_client import Counter

from orchestrator.settings import WEBHOOK_SOURCES, Settings
from orchestrator.webhooks.flood_guard import FloodGuard
from orchestrator.webhooks.model import Inbound, WebhookRejected
from orchestrator.webhooks.registry import Endpoint
from web.bodies import raw_body
from web.intake import EventIntake
from web.openapi import Operation

WEBHOOKS = Counter(
    "orchestrator_webhooks_total",
    "Webhook deliveries by source and outcome",
    ["source", "outcome"],
)


class Webhook:
    """One instance per webhook route."""

    def __init__(
        self, endpoint: Endpoint, settings: Settings, intake: EventIntake, guard: FloodGuard
    ) -> None:
        self._endpoint = endpoint
        self._intake = intake
        self._secrets = settings.webhook_secrets(endpoint.secret_source)
        # Every source's secrets: a header holding any of them is masked when stored.
        self._all_secrets = [s for name in WEBHOOK_SOURCES for s in settings.webhook_secrets(name)]
        self._guard = guard
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
        stored_headers = inbound.stored_headers(self._all_secrets)
        event_id, duplicate = self._intake.accept(source, parsed, stored_headers)
        self._count("duplicate" if duplicate else "accepted")
        resp.media = (
            {"ok": True, "duplicate": True, "event_id": str(event_id)}
            if duplicate
            else {"ok": True, "event_id": str(event_id)}
        )

    def _count(self, outcome: str) -> None:
        WEBHOOKS.labels(self._endpoint.name, outcome).inc()


_STATUS = {400: falcon.HTTP_400, 422: falcon.HTTP_422}
_TITLE = {400: "Bad Request", 422: "Unprocessable Entity"}
