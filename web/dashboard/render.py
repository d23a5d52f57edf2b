"""Server-side rendering of the dashboard's pages with Jinja2.

Autoescaping is on for every template, so no value reaches a page unescaped; values
that may hold secrets pass through the `pretty` and `masked` filters, which apply
`orchestrator.redaction` once more at display time (stored payloads and tracebacks
were masked on the way in; this covers anything stored before a pattern existed).
Every value a template prints also passes the configured-secret masker (Jinja's
`finalize`): no configured secret reaches a page, whatever row or field it came from —
rows stored before secrets were masked by value included.

Every page is sent with a Content-Security-Policy that allows scripts, styles and
connections to this origin only (no inline script: chart data travels in a JSON data
block), may not be framed, and is never cached (it shows live operational data).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import falcon
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from orchestrator.redaction import NO_SECRETS, SecretMasker, redact, redact_text
from web.dashboard.static import StaticFiles

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _timestamp(value: datetime | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _pretty(value: Any) -> str:
    """Indented JSON of `value` with secrets masked."""
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _masked(value: str | None) -> str:
    return redact_text(value) if value else ""


def _finalize(secrets: SecretMasker) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        if isinstance(value, Markup):  # already escaped (`tojson`): keep it so
            masked = secrets.mask_text(str(value))
            # Safe: escaped text with a run of it replaced by "***" is still escaped.
            return value if masked == str(value) else Markup(masked)  # noqa: S704
        if isinstance(value, str):
            return secrets.mask_text(value)
        return value

    return finalize


def query_string(params: dict[str, Any]) -> str:
    """`?a=1&b=2` from the non-empty `params` (filters carried into links)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


class Renderer:
    """Parameters: `static` (for cache-busting asset URLs); `secrets`, the masker of the
    configured secrets (default: none)."""

    def __init__(self, static: StaticFiles, secrets: SecretMasker = NO_SECRETS) -> None:
        self._env = Environment(
            loader=PackageLoader("web.dashboard", "templates"),
            autoescape=select_autoescape(["html"], default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=_finalize(secrets) if secrets else None,
        )
        self._env.filters.update(ts=_timestamp, duration=_duration, pretty=_pretty, masked=_masked)
        self._env.globals.update(static=static.url, qs=query_string)

    def render(
        self, resp: falcon.Response, template: str, *, status: int = 200, **context: Any
    ) -> None:
        context.setdefault("viewer", None)
        context.setdefault("notice", None)
        context.setdefault("section", None)
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self._env.get_template(template).render(**context)
        resp.set_headers(SECURITY_HEADERS)
