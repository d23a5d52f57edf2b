"""Structured JSON logs carrying the request or message id.

The id lives in a context variable set by the web middleware (per request) and by the
worker middleware (per message), so any log line written while serving either carries
it without passing it around. Values that look like credentials are masked before a
line is written, and so is every configured secret wherever it appears in the line
(message, traceback, extra fields): a secret that slips into a log call still never
reaches the log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from orchestrator.redaction import NO_SECRETS, SecretMasker, redact_text

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
message_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "message_id", default=None
)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


# Extra fields of other types are written as their str(), as `default=str` would, but
# before masking, so the masker sees that text too.
_JSON_VALUES = (str, int, float, bool, type(None), dict, list, tuple)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, extra fields.

    Parameters: `process` (the line's `process` field); `secrets`, the masker of the
    configured secrets (default: none)."""

    def __init__(self, process: str, secrets: SecretMasker = NO_SECRETS) -> None:
        super().__init__()
        self.process = process
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process,
            "pid": record.process,
            "msg": redact_text(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        message_id = message_id_var.get()
        if message_id:
            line["message_id"] = message_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, _JSON_VALUES) else str(value)
        if record.exc_info:
            line["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(self.secrets.mask(line), default=str)


def configure_logging(
    process: str, level: str = "INFO", secrets: SecretMasker = NO_SECRETS
) -> None:
    """Route every logger (ours, gunicorn's, dramatiq's, apscheduler's) through JSON,
    with `secrets` (the process's `secret_masker`) masked in every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "httpx",
        "httpcore",
        "kubernetes.client.rest",
        "urllib3",
        "apscheduler.executors.default",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
