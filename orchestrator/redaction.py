"""Masking of secrets in free text and in structured values.

Used wherever data leaves the process towards people: logs, error bodies, stored job
arguments and headers. Keys are judged by name (anything that smells of a credential);
free text by the shapes credentials take (bearer tokens, `<id>.<secret>` tokens, JWTs,
URL passwords); and, with a `SecretMasker`, by value: the secrets this process is
configured with, wherever they appear inside a string.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
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


# Shorter configured values are not masked in free text: masking every "deploy" or
# "staging" would garble payloads while protecting nothing a guess would not find.
MIN_SECRET_LENGTH = 8


class SecretMasker:
    """Masks configured secret values wherever they occur inside a string.

    `redact` judges keys by their names and free text by the shapes credentials take;
    neither sees a signing secret quoted in a GitHub issue body or a token pasted into
    a generic webhook's message. This class knows the values themselves, prepared
    once: detection is one C substring search per secret over all the strings of a
    value joined (`found_in_any`; measured 4-5x faster than a regex alternation, which
    CPython tries branch by branch at every position, and far cheaper than a search
    per string); replacement, on the rare hit, is one compiled alternation (escaped,
    longest first, so a secret containing another is masked whole).

    Parameters: `secrets` — the values to mask; duplicates, and values shorter than
    `MIN_SECRET_LENGTH`, are left out.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=lambda s: (-len(s), s)
        )
        self.size = len(values)
        self._values = tuple(values)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:  # never the values
        return f"SecretMasker({self.size} secrets)"

    def found_in(self, text: str) -> bool:
        # Substring search per secret beats the alternation on long text: CPython's
        # regex engine tries every branch at every position, `in` is a C string search.
        return any(v in text for v in self._values)

    def found_in_any(self, strings: Iterable[str]) -> bool:
        """Whether a secret occurs in any of `strings`: one search per secret over
        them joined, instead of one per string. (A secret spanning the separator would
        only be a false alarm: `mask` then finds nothing to change.)"""
        return bool(self._values) and self.found_in("\x00".join(strings))

    def mask_text(self, text: str) -> str:
        """`text` with every occurrence of a secret replaced by `MASK` (the very same
        object when there is none)."""
        pattern = self._pattern
        if pattern is None or (len(text) > 256 and not self.found_in(text)):
            return text
        masked, count = pattern.subn(MASK, text)
        if not count:
            return text
        # The mask joins the text on its two sides; only a secret that itself holds
        # the mask could be formed anew there. Each pass shortens the text, so this ends.
        while pattern.search(masked):
            masked = pattern.sub(MASK, masked)
        return masked

    def mask(self, value: Any) -> Any:
        """A copy of `value` with secrets masked in every string, keys included (two
        keys that differ only by the secrets in them become one)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, dict):
            return {self.mask(k): self.mask(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask(v) for v in value]
        return value


NO_SECRETS = SecretMasker()
