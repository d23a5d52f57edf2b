"""The two kinds of failure every retry decision rests on (SPEC §10 "Failures").

Transient: connection errors, timeouts, 5xx, 429 — worth another attempt with backoff.
Permanent: other 4xx, `success:false`, validation — another attempt cannot help.
Peer clients raise these; the broker's `retry_when` reads them.
"""

from __future__ import annotations

import httpx
import psycopg
import redis


class OrchestratorError(Exception):
    """Base of the domain's errors. `reason` is a short machine-readable cause
    (e.g. `peer_unavailable`, `routing_conflict`) shown to operators."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class TransientError(OrchestratorError):
    """Another attempt may succeed."""

    reason = "transient"


class PermanentError(OrchestratorError):
    """Another attempt cannot succeed."""

    reason = "permanent"


class PeerUnavailable(TransientError):
    """A peer did not answer, timed out, or answered 5xx/429."""

    reason = "peer_unavailable"


class PeerRejected(PermanentError):
    """A peer answered a 4xx other than 429: the request itself is wrong."""

    reason = "peer_rejected"


_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    httpx.TransportError,  # connect/read errors and timeouts
    psycopg.OperationalError,  # connection lost, server restarting, statement timeout
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """True when `exc` is worth retrying; unknown errors count as permanent, so a bug
    fails loudly once instead of hammering a peer five times."""
    if isinstance(exc, PermanentError):
        return False
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code == 429 or code >= 500
    return isinstance(exc, _TRANSIENT_TYPES)


def status_is_transient(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500
