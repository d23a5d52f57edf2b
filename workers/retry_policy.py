"""Which failures a message retries (SPEC §10 "Failures").

`retry_when` replaces `max_retries` entirely (NOTES), so the attempt budget lives here:
transient errors retry until `ORCHESTRATOR_MAX_ATTEMPTS` attempts have been made;
permanent errors never retry; a worker shutting down always requeues (otherwise SIGTERM
would dead-letter the running job).
"""

from __future__ import annotations

from collections.abc import Callable

from dramatiq.middleware import Shutdown
from dramatiq.middleware.time_limit import TimeLimitExceeded

from orchestrator.errors import is_transient


def make_retry_when(max_attempts: int) -> Callable[[int, BaseException], bool]:
    def retry_when(retries_so_far: int, exc: BaseException) -> bool:
        if isinstance(exc, Shutdown):
            return True
        if isinstance(exc, TimeLimitExceeded):
            return retries_so_far + 1 < max_attempts
        return is_transient(exc) and retries_so_far + 1 < max_attempts

    return retry_when
