"""What every admin resource receives: the services and the authenticator."""

from __future__ import annotations

from orchestrator.auth.admin import AdminAuthenticator
from web.services import Services


class AdminResource:
    def __init__(self, services: Services, authenticator: AdminAuthenticator) -> None:
        self._s = services
        self._auth = authenticator
