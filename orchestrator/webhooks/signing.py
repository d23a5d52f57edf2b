"""Signing webhook requests the way each provider does — for the operator command
`orchestrator webhook send` (test a deployment end to end) and for the tests. The
inverse of each source's `verify`."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime

from standardwebhooks import Webhook

from orchestrator.webhooks.model import SOURCE_NAMES

SOURCES = SOURCE_NAMES


def signed_headers(
    source: str,
    secret: str,
    body: bytes,
    *,
    now: float | None = None,
    delivery_id: str | None = None,
    github_event: str = "issue_comment",
    hook_id: str = "1",
) -> dict[str, str]:
    """Headers that make `body` a correctly signed delivery of `source`."""
    now = time.time() if now is None else now
    delivery_id = delivery_id or str(uuid.uuid4())
    if source in ("slack", "slack_interactions"):
        ts = str(int(now))
        mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
        content_type = (
            "application/x-www-form-urlencoded"
            if source == "slack_interactions"
            else "application/json"
        )
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": "v0=" + mac.hexdigest(),
            "Content-Type": content_type,
        }
    if source == "github":
        hexdigest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            "X-Hub-Signature-256": "sha256=" + hexdigest,
            "X-GitHub-Event": github_event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": hook_id,
            "Content-Type": "application/json",
        }
    if source == "pagerduty":
        hexdigest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            "X-PagerDuty-Signature": "v1=" + hexdigest,
            "X-Webhook-Id": delivery_id,
            "Content-Type": "application/json",
        }
    if source in ("incidentio", "generic"):
        # Whole seconds for both: a datetime made from the float rounds to the
        # microsecond, and in a second's last half-microsecond it would sign the next
        # second while the header says this one.
        seconds = int(now)
        at = datetime.fromtimestamp(seconds, UTC)
        signature = Webhook(secret).sign(delivery_id, at, body.decode())
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(seconds),
            "webhook-signature": signature,
            "Content-Type": "application/json",
        }
    if source == "coralogix":
        return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    raise ValueError(f"unknown webhook source {source!r}")
