"""The dashboard's static files — its stylesheet, script and the vendored chart library
(`static/vendor/`, uPlot, MIT) — served from the package itself: operators may be
air-gapped, so nothing comes from a CDN.

Files are read once at start-up into memory and served by name from that table, so no
request path ever reaches the filesystem (no traversal to guard). URLs carry a content
hash (`?v=…`) and answers are cacheable for a year as `immutable`; a changed file gets
a new URL. `If-None-Match` is answered with 304. They are public, like the login page
that needs them: they hold no data.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from importlib.resources.abc import Traversable

import falcon

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


class StaticFiles:
    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, str, str]] = {}
        self._load(files("web.dashboard") / "static", "")

    def _load(self, folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                self._load(entry, name + "/")
                continue
            suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
            if suffix not in _TYPES:
                continue
            body = entry.read_bytes()
            self._files[name] = (body, _TYPES[suffix], hashlib.sha256(body).hexdigest()[:16])

    def url(self, name: str) -> str:
        """The cache-busting URL of a known file (KeyError for a typo: caught by tests)."""
        return f"/dashboard/static/{name}?v={self._files[name][2]}"

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self._files.get(name)
        if found is None:
            raise falcon.HTTPNotFound(title="Not Found", description="no such file")
        body, content_type, digest = found
        etag = f'"{digest}"'
        resp.set_header("ETag", etag)
        resp.cache_control = ["public", "max-age=31536000", "immutable"]
        resp.set_header("X-Content-Type-Options", "nosniff")
        if etag in (req.get_header("If-None-Match") or ""):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = content_type
        resp.data = body
