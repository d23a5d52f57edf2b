"""Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), used by
incident.io and by the generic endpoint: HMAC-SHA256 over `id.timestamp.body`, a
five-minute window, several secrets while rotating.

`standardwebhooks` raises `ValueError` or `binascii.Error` for malformed headers rather
than its own error (NOTES); every failure is an invalid signature, never a 500.
"""

from __future__ import annotations

import logging

from standardwebhooks import Webhook

from orchestrator.webhooks.model import Inbound, IncompletePayload, SignatureInvalid

log = logging.getLogger("orchestrator.webhooks")


def verify_standard(secrets: list[str], inbound: Inbound, *, source: str) -> None:
    for secret in secrets:
        try:
            hook = Webhook(secret)
        except Exception:
            log.error(
                "a configured %s secret is not a Standard Webhooks secret "
                "(whsec_<base64>); it is ignored",
                source,
            )
            continue
        try:
            hook.verify(inbound.body, inbound.headers, json_parse=False)
            return
        except Exception:  # noqa: S112 - any failure: try the next secret
            continue
    raise SignatureInvalid(
        "invalid webhook-signature, or webhook-timestamp outside the 300 s window"
    )


def delivery_key(inbound: Inbound) -> str:
    """Standard Webhooks sources deduplicate on `webhook-id` (stable across retries)."""
    key = (inbound.header("webhook-id") or "").strip()
    if not key:
        raise IncompletePayload("webhook-id is required")
    return key
