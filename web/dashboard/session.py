"""Browser sessions of the job dashboard (SPEC §4.3, §10 "Dashboard").

An operator signs in once with an admin token; the browser then carries a cookie that
is valid for the dashboard's pages and actions alone (the JSON admin API never reads
it). The design, and why:

- **Cookie** `orch_dashboard` = `<session id>.<signature>`: 32 random bytes (base64url)
  and their HMAC-SHA256 under a key derived from `ORCHESTRATOR_SECRET_KEY` with HKDF
  and its own label — never the raw key, which encrypts team tokens. A forged or
  altered cookie is refused before Redis is asked. The cookie carries neither the
  token nor a hash of it.
- **Server side**, in Redis under `<namespace>:dashboard:session:<SHA-256 of the id>`
  (a copy of Redis yields no usable cookie): the admin token Fernet-encrypted under a
  second derived key, the token's fingerprint (a prefix of its SHA-256, to tell
  sessions of one token apart in logs without the token), the actor and org for
  display, and the creation time. Its TTL is the idle timeout, renewed by every
  request (sliding); the absolute lifetime is checked against the creation time.
- **Re-validation**: every request decrypts the token and authorizes it again through
  `AdminAuthenticator` (cached for `ORCHESTRATOR_ADMIN_AUTH_CACHE_TTL_SECONDS`), so a
  token revoked in the Config Service ends its sessions within that TTL.
- **Logout** deletes the server side: the cookie is worthless afterwards, even a copy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestrator.auth.admin import Admin, token_key

COOKIE = "orch_dashboard"
COOKIE_PATH = "/dashboard"
_ID_BYTES = 32


def derive_key(secret_key: str, label: str) -> bytes:
    """32 bytes for one purpose, derived from the Fernet key `ORCHESTRATOR_SECRET_KEY`
    (HKDF-SHA256; `label` keeps purposes apart)."""
    material = base64.urlsafe_b64decode(secret_key.encode())
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"incidentfox-orchestrator/{label}".encode(),
    ).derive(material)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class Session:
    """A live session. `session_id` and `token` exist only in memory, per request."""

    session_id: str
    token: str
    actor: str
    org_id: str | None
    fingerprint: str
    created_at: float


class SessionStore:
    """Parameters: `client` (Redis) and `namespace` for the keys; `secret_key` is
    `ORCHESTRATOR_SECRET_KEY`; `idle_seconds` (sliding) and `max_age_seconds`
    (absolute) bound a session's life; `clock` returns Unix time (tests)."""

    def __init__(
        self,
        client: Any,
        namespace: str,
        secret_key: str,
        *,
        idle_seconds: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._signing_key = derive_key(secret_key, "dashboard-session-signing")
        self._fernet = Fernet(
            base64.urlsafe_b64encode(derive_key(secret_key, "dashboard-session-token"))
        )
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self._clock = clock

    def create(self, token: str, admin: Admin) -> tuple[str, Session]:
        """A new session for a verified `token`: (cookie value, session)."""
        session_id = _b64(secrets.token_bytes(_ID_BYTES))
        session = Session(
            session_id=session_id,
            token=token,
            actor=admin.actor,
            org_id=admin.org_id,
            fingerprint=token_key(token)[:16],
            created_at=self._clock(),
        )
        record = {
            "token": self._fernet.encrypt(token.encode()).decode(),
            "fingerprint": session.fingerprint,
            "actor": session.actor,
            "org_id": session.org_id,
            "created_at": session.created_at,
        }
        self._client.set(self._key(session_id), json.dumps(record), ex=self.idle_seconds)
        return f"{session_id}.{self._sign(session_id)}", session

    def load(self, cookie: str | None) -> Session | None:
        """The live session the cookie names, its idle timer renewed; None when the
        cookie is missing, forged, or its session ended."""
        session_id = self._verified_id(cookie)
        if session_id is None:
            return None
        key = self._key(session_id)
        pipe = self._client.pipeline(transaction=False)
        pipe.get(key)
        pipe.expire(key, self.idle_seconds)
        raw, _ = pipe.execute()
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            token = self._fernet.decrypt(record["token"].encode()).decode()
        except (ValueError, KeyError, TypeError, InvalidToken):
            # Written under another secret key (rotated) or damaged: not a session.
            self._client.delete(key)
            return None
        if self._clock() - float(record["created_at"]) > self.max_age_seconds:
            self._client.delete(key)
            return None
        return Session(
            session_id=session_id,
            token=token,
            actor=str(record["actor"]),
            org_id=record.get("org_id"),
            fingerprint=str(record["fingerprint"]),
            created_at=float(record["created_at"]),
        )

    def destroy(self, session: Session) -> None:
        self._client.delete(self._key(session.session_id))

    def _key(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return f"{self._namespace}:dashboard:session:{digest}"

    def _sign(self, session_id: str) -> str:
        return _b64(hmac.new(self._signing_key, session_id.encode(), hashlib.sha256).digest())

    def _verified_id(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > 200:
            return None
        session_id, _, signature = cookie.partition(".")
        if not session_id or not signature:
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(session_id).encode()):
            return None
        return session_id
