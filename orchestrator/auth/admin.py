"""Admin authentication and authorization (SPEC §4.3).

A credential is verified by the Config Service's `/api/v1/auth/me`. Verified principals
are cached for `ORCHESTRATOR_ADMIN_AUTH_CACHE_TTL_SECONDS` in a bounded cache keyed by a
SHA-256 of the token, so the token itself is never kept as a key and a burst of admin
calls costs one Config Service round trip. Rejections are not cached: a token that
becomes valid works at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TLRUCache

from orchestrator.errors import PeerUnavailable
from orchestrator.peers.config_service import ConfigServiceClient, InvalidCredential, Principal

ADMIN_STAR = "admin:*"

PERMISSIONS = (
    "admin:provision",
    "admin:provision:read",
    "admin:agent:run",
    "admin:schedules",
    "admin:events",
    "admin:jobs",
)


class AuthError(Exception):
    """Base: `status` is the HTTP status the web tier answers with."""

    status = 401
    title = "Unauthorized"


class MissingCredential(AuthError):
    status = 401


class Rejected(AuthError):
    status = 401


class Forbidden(AuthError):
    status = 403
    title = "Forbidden"


class AuthUnavailable(AuthError):
    status = 503
    title = "Service Unavailable"


@dataclass(frozen=True)
class Admin:
    """A verified admin principal, as the rest of the code sees it."""

    principal: Principal

    @property
    def org_id(self) -> str | None:
        return self.principal.org_id

    @property
    def actor(self) -> str:
        return self.principal.actor

    def may_act_in(self, org_id: str | None) -> bool:
        """An org-bound admin may act only inside its own org; a super-admin anywhere."""
        return self.principal.org_id is None or self.principal.org_id == org_id

    def has(self, permission: str) -> bool:
        """Whether this admin holds `permission` itself (for answers that differ by
        permission, such as the one read that delivers a new team token)."""
        granted = set(self.principal.permissions)
        return ADMIN_STAR in granted or permission in granted or _implied(permission, granted)

    def require_org(self, org_id: str | None) -> None:
        if not self.may_act_in(org_id):
            raise Forbidden("this credential may act only in its own organization")

    def list_scope(self, org_id: str | None) -> str | None:
        """The org a list is confined to: `org_id` when asked for (Forbidden outside this
        admin's reach), else the admin's own org — None, every org, for a super-admin."""
        if org_id is None:
            return self.org_id
        self.require_org(org_id)
        return org_id


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AdminAuthenticator:
    """Verifies admin tokens and checks permissions.

    Parameters: `client` reaches the Config Service; `ttl` seconds a verified principal
    stays cached (0 disables the cache); `maxsize` bounds the cache; `require_admin_star`
    (SPEC: default on) demands `admin:*` besides the endpoint's own permission; `clock`
    is injectable for tests of expiry.
    """

    def __init__(
        self,
        client: ConfigServiceClient,
        *,
        ttl: float = 15.0,
        maxsize: int = 4096,
        require_admin_star: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._require_star = require_admin_star
        self._cache: TLRUCache[str, Principal] = TLRUCache(
            maxsize=maxsize, ttu=lambda _k, _v, now: now + ttl, timer=clock
        )
        self._lock = threading.Lock()

    def verify(self, token: str | None, *, request_id: str | None = None) -> Principal:
        """The principal behind `token`, from cache or from the Config Service."""
        if not token:
            raise MissingCredential("missing admin token (Authorization: Bearer <token>)")
        if len(token) > 4096 or not token.isascii() or not token.isprintable():
            # Not a token any issuer makes; also unsendable in an HTTP header.
            raise Rejected("invalid admin token")
        key = token_key(token)
        if self._ttl > 0:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None:
                return cached
        try:
            principal = self._client.auth_me(token, request_id=request_id)
        except InvalidCredential:
            raise Rejected("invalid admin token") from None
        except PeerUnavailable:
            raise AuthUnavailable("cannot verify the token: config service unavailable") from None
        if self._ttl > 0:
            with self._lock:
                self._cache[key] = principal
        return principal

    def authorize(
        self, token: str | None, permission: str, *, request_id: str | None = None
    ) -> Admin:
        """An `Admin` allowed `permission`, or `AuthError` with the status to answer."""
        principal = self.verify(token, request_id=request_id)
        if principal.role != "admin":
            raise Forbidden("this credential is not an admin credential")
        granted = set(principal.permissions)
        if ADMIN_STAR not in granted:
            if self._require_star:
                raise Forbidden(f"permission {ADMIN_STAR} is required")
            if permission not in granted and not _implied(permission, granted):
                raise Forbidden(f"permission {permission} is required")
        return Admin(principal)

    def forget(self, token: str) -> None:
        """Drop a cached principal (logout from the dashboard)."""
        with self._lock:
            self._cache.pop(token_key(token), None)


def _implied(permission: str, granted: set[str]) -> bool:
    """`admin:provision` covers its `:read`; nothing else is implied."""
    return permission == "admin:provision:read" and "admin:provision" in granted
