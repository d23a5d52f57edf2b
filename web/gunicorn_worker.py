"""gunicorn's gthread worker, with its own error answers in the shape of every other.

Some requests never reach the app: a malformed request line, a header over the limits,
bad framing. gunicorn answers those itself, as an HTML page without `X-Request-ID`;
SPEC §4 wants every answer to carry a request id and every error to be JSON
`{"title","description","request_id"}`. This worker lets gunicorn decide the status
and message and write its log line (which then carries the request id), and sends the
same answer as JSON.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from orchestrator.logs import request_id_var
from orchestrator.redaction import redact_text

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3}) ([^\r\n]*)\r\n")
_MESSAGE = re.compile(rb"</h1>\s*(.*?)\s*</body>", re.DOTALL)
_INTERNAL = "an internal error occurred; quote the request id when reporting it"
MAX_DESCRIPTION = 300


class _Capture:
    """Stands in for the client socket while gunicorn writes its HTML answer."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def request_id_of(req: Any) -> str:
    """The client's `X-Request-ID` when gunicorn parsed the headers and it is sane (the
    app's rule), otherwise a new one."""
    for name, value in getattr(req, "headers", None) or ():
        if name == "X-REQUEST-ID" and _SAFE_ID.match(value):
            return str(value)
    return uuid.uuid4().hex


def json_answer(html_answer: bytes, request_id: str, clearer: dict[int, str]) -> bytes:
    """gunicorn's HTML error answer as the same status with the JSON error body; the
    statuses in `clearer` get that description instead of gunicorn's message."""
    status = _STATUS.match(html_answer)
    code, reason = (int(status[1]), status[2].decode("latin-1")) if status else (400, "Bad Request")
    found = _MESSAGE.search(html_answer)
    message = html.unescape(found[1].decode("latin-1")) if found else ""
    message = clearer.get(code, message)
    if code >= 500:
        message = _INTERNAL
    description = redact_text(message)[:MAX_DESCRIPTION] or reason
    body = json.dumps(
        {"title": reason, "description": description, "request_id": request_id}
    ).encode()
    head = (
        f"HTTP/1.1 {code} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"X-Request-ID: {request_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorThreadWorker(ThreadWorker):  # type: ignore[misc]
    def clearer_messages(self) -> dict[int, str]:
        """gunicorn's own words for its limits name no limit."""
        cfg = self.cfg
        return {
            414: f"the request line is longer than {cfg.limit_request_line} bytes",
            431: (
                f"request headers too large: at most {cfg.limit_request_fields} fields "
                f"of at most {cfg.limit_request_field_size} bytes each"
            ),
        }

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        request_id = request_id_of(req or getattr(exc, "req", None))
        token = request_id_var.set(request_id)
        captured = _Capture()
        try:
            super().handle_error(req, captured, addr, exc)
        finally:
            request_id_var.reset(token)
        try:
            answer = json_answer(captured.data, request_id, self.clearer_messages())
            util.write_nonblock(client, answer)
        except Exception:
            self.log.debug("Failed to send error message.")
