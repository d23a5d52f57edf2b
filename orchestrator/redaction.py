"""Masking of secrets in free text and in structured values.

Used wherever data leaves the process towards people: logs, error bodies, stored job
arguments and headers. Keys are judged by name (anything that smells of a credential);
free text by the shapes credentials take (bearer tokens, `<id>.<secret>` tokens, JWTs,
URL passwords).
"""

from __future__ import annotations

import functools
import re
from typing import Any

MASK = "***"

_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|signature|api[-_]?key|cookie|credential"
    r"|private[-_]?key|session[-_]?(?:token|secret|key))",
    re.IGNORECASE,
)

_TEXT_PATTERNS = [
    # Authorization: Bearer xyz / X-Admin-Token: xyz
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1" + MASK),
    (
        re.compile(
            r"(?i)((?:x-admin-token|x-incidentfox-team-token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"
        ),
        r"\1" + MASK,
    ),
    # JWTs (three base64url parts)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\b"), MASK),
    # passwords in URLs: scheme://user:pass@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + MASK + "@"),
]


# Every text pattern needs one of these markers: one scan rules most strings out
# (a URL without "@" cannot carry a password).
_MARKERS = re.compile(r"(?i)bearer|token|eyJ|://[^\s/]*@")


@functools.lru_cache(maxsize=8192)
def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_text(text: str) -> str:
    if len(text) < 8 or not _MARKERS.search(text):
        return text
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_peer_text(text: str, *sent: str) -> str:
    """A peer's free text (an error it answered) as it may be kept: the credentials this
    process sent it masked wherever they appear — a peer that echoes what it was given
    must not get it stored, logged or shown — then `redact_text` for other shapes."""
    for credential in sent:
        if credential:
            text = text.replace(credential, MASK)
    return redact_text(text)


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-named key's value masked, recursively."""
    if isinstance(value, dict):
        return {
            k: (
                MASK
                if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
