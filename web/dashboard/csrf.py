"""CSRF tokens of the dashboard's forms (every POST carries one).

The session cookie is `SameSite=Strict`, which already keeps other sites' forms from
riding on it in current browsers; the token is the defence that does not depend on the
browser. It is an HMAC of the session id under a key derived for this purpose alone:
the id is in an HttpOnly cookie no script can read, so another site cannot compute the
token, and a token is worthless in any other session. It goes in the form field
`csrf_token`, or in the header `X-CSRF-Token` for `fetch()` POSTs.

The login form has no session yet, and login CSRF (signing a victim into the
attacker's session) is still worth refusing: the form's page sets a short-lived random
nonce cookie and the form carries the HMAC of that nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from web.dashboard.session import derive_key

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "orch_dashboard_login"
LOGIN_COOKIE_SECONDS = 600


class Csrf:
    def __init__(self, secret_key: str) -> None:
        self._key = derive_key(secret_key, "dashboard-csrf")

    def for_session(self, session_id: str) -> str:
        return self._mac(f"session:{session_id}")

    def for_login(self, nonce: str) -> str:
        return self._mac(f"login:{nonce}")

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    @staticmethod
    def matches(expected: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())

    def _mac(self, message: str) -> str:
        digest = hmac.new(self._key, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
