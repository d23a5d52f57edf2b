"""Process configuration read from the environment (SPEC §3).

Every process builds one `Settings` and checks the variables its role needs with
`require(role)`. A missing variable raises `MissingSetting`, which the CLI turns into
one line naming it: an operator sees what to set, not a traceback.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.redaction import MIN_SECRET_LENGTH, SecretMasker

log = logging.getLogger("orchestrator.settings")

Role = Literal["migrate", "web", "worker", "scheduler"]

WEBHOOK_SOURCES = ("slack", "github", "pagerduty", "incidentio", "coralogix", "generic")

# SPEC §10: the variables each process needs outside `dev`.
REQUIRED: dict[str, tuple[str, ...]] = {
    "migrate": ("DATABASE_URL",),
    "web": ("DATABASE_URL", "REDIS_URL", "CONFIG_SERVICE_URL", "ORCHESTRATOR_SECRET_KEY"),
    "worker": (
        "DATABASE_URL",
        "REDIS_URL",
        "CONFIG_SERVICE_URL",
        "ORCHESTRATOR_SECRET_KEY",
        "AGENT_API_URL",
        "AI_PIPELINE_API_URL",
        "ORCHESTRATOR_INTERNAL_ADMIN_TOKEN",
        "AI_PIPELINE_IMAGE",
    ),
    "scheduler": ("DATABASE_URL", "REDIS_URL", "CONFIG_SERVICE_URL", "AI_PIPELINE_IMAGE"),
}

_SECRET_FIELD = {
    "slack": "slack_signing_secret",
    "github": "github_webhook_secret",
    "pagerduty": "pagerduty_webhook_secret",
    "incidentio": "incidentio_webhook_secret",
    "generic": "generic_webhook_secret",
    "coralogix": "coralogix_webhook_token",
}

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


class MissingSetting(Exception):
    """A variable the process needs is unset or empty."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(f"missing required environment variable: {', '.join(names)}")


class InvalidSetting(Exception):
    """A variable is set but unusable; the message names it and why, never its value."""


def _secret_list(value: SecretStr | None) -> list[str]:
    if value is None:
        return []
    return [part.strip() for part in value.get_secret_value().split(",") if part.strip()]


class Settings(BaseSettings):
    """All configuration, with SPEC §3 defaults. Secrets are `SecretStr` so a repr or a
    log line of the settings never shows them."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    config_service_url: str | None = None
    agent_api_url: str | None = None
    ai_pipeline_api_url: str | None = None

    orchestrator_internal_token: SecretStr | None = None
    orchestrator_internal_admin_token: SecretStr | None = None
    orchestrator_secret_key: SecretStr | None = None

    orchestrator_auto_create_tables: bool = False
    orchestrator_admin_auth_cache_ttl_seconds: float = Field(default=15, ge=0, le=3600)
    orchestrator_admin_auth_cache_size: int = Field(default=4096, ge=1, le=1_000_000)
    orchestrator_require_admin_star: bool = True
    # Browser sessions of the job dashboard (README "Dashboard"): they end after this
    # many idle minutes, and after this many hours whatever the activity. The cookie is
    # `Secure` when the request came over HTTPS; set the flag to force it on or off.
    orchestrator_dashboard_session_idle_minutes: int = Field(default=30, ge=1, le=720)
    orchestrator_dashboard_session_max_hours: float = Field(default=8.0, gt=0, le=72)
    orchestrator_dashboard_secure_cookie: bool | None = None
    # Proxies in front of the web tier that append the peer to X-Forwarded-For (an
    # ingress controller: 1). 0 trusts no header: the peer address is the client.
    orchestrator_trusted_proxy_hops: int = Field(default=0, ge=0, le=10)

    orchestrator_slack_agent_timeout_seconds: int = Field(default=300, ge=1)
    orchestrator_github_agent_timeout_seconds: int = Field(default=180, ge=1)
    orchestrator_pagerduty_agent_timeout_seconds: int = Field(default=300, ge=1)
    orchestrator_incidentio_agent_timeout_seconds: int = Field(default=300, ge=1)
    orchestrator_coralogix_agent_timeout_seconds: int = Field(default=300, ge=1)
    orchestrator_generic_agent_timeout_seconds: int = Field(default=300, ge=1)
    orchestrator_slack_agent_max_turns: int = Field(default=50, ge=1)
    orchestrator_github_agent_max_turns: int = Field(default=30, ge=1)
    orchestrator_pagerduty_agent_max_turns: int = Field(default=50, ge=1)
    orchestrator_incidentio_agent_max_turns: int = Field(default=50, ge=1)
    orchestrator_coralogix_agent_max_turns: int = Field(default=50, ge=1)
    orchestrator_generic_agent_max_turns: int = Field(default=50, ge=1)

    slack_signing_secret: SecretStr | None = None
    github_webhook_secret: SecretStr | None = None
    pagerduty_webhook_secret: SecretStr | None = None
    incidentio_webhook_secret: SecretStr | None = None
    generic_webhook_secret: SecretStr | None = None
    coralogix_webhook_token: SecretStr | None = None

    k8s_namespace: str = "incidentfox"
    kubeconfig: str | None = None
    ai_pipeline_image: str | None = None
    agent_image: str | None = None

    port: int = Field(default=8070, ge=1, le=65535)
    orchestrator_web_workers: int = Field(default=2, ge=1, le=64)
    orchestrator_web_threads: int = Field(default=8, ge=1, le=256)
    # Longer than the idle timeout of whatever pools connections in front of gunicorn
    # (ingress-nginx and cloud load balancers: 60 s), so it is never gunicorn that
    # closes an idle connection the proxy is about to reuse (web/gunicorn_conf.py).
    orchestrator_web_keepalive_seconds: int = Field(default=75, ge=1, le=3600)
    orchestrator_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    orchestrator_max_attempts: int = Field(default=5, ge=1, le=100)
    orchestrator_ingress_rate_limit: str = "200/second"
    orchestrator_team_dispatch_limit: str = "30/minute"
    orchestrator_relay_after_seconds: int = Field(default=60, ge=1)
    orchestrator_reconcile_interval_seconds: int = Field(default=30, ge=1)
    orchestrator_event_retention_days: int = Field(default=30, ge=1)
    orchestrator_worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    orchestrator_scheduler_metrics_port: int = Field(default=9192, ge=0, le=65535)
    orchestrator_metrics_host: str = "0.0.0.0"
    orchestrator_dev_dir: str = ".orchestrator-dev"
    orchestrator_redis_namespace: str = "orchestrator"
    orchestrator_db_pool_size: int = Field(default=10, ge=1, le=200)
    orchestrator_statement_timeout_ms: int = Field(default=15_000, ge=100)
    orchestrator_peer_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    orchestrator_config_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    orchestrator_worker_shutdown_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    orchestrator_log_level: str = "INFO"

    github_bot_mention: str = "@incidentfox"
    orchestrator_pagerduty_trigger_events: str = "incident.triggered"

    orchestrator_url: str | None = None
    orchestrator_admin_token: SecretStr | None = None

    @field_validator("orchestrator_ingress_rate_limit", "orchestrator_team_dispatch_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        if not _RATE.match(value):
            raise ValueError("must look like '200/second' (per second, minute, hour or day)")
        return value.strip()

    @field_validator(
        "config_service_url", "agent_api_url", "ai_pipeline_api_url", "orchestrator_url"
    )
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    # -- derived views -------------------------------------------------------------
    def require(self, role: Role) -> None:
        """Raise `MissingSetting` listing every variable `role` needs that is unset."""
        missing = [name for name in REQUIRED[role] if not self._is_set(name)]
        if missing:
            raise MissingSetting(missing)
        if self.orchestrator_secret_key is not None and role in ("web", "worker"):
            from cryptography.fernet import Fernet

            try:
                Fernet(self.orchestrator_secret_key.get_secret_value())
            except ValueError:
                raise InvalidSetting(
                    "ORCHESTRATOR_SECRET_KEY is not a Fernet key "
                    "(url-safe base64 of 32 bytes; make one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`)"
                ) from None

    def _is_set(self, env_name: str) -> bool:
        value = getattr(self, env_name.lower())
        if isinstance(value, SecretStr):
            return bool(value.get_secret_value().strip())
        return bool(value)

    @property
    def dsn(self) -> str:
        assert self.database_url is not None, "DATABASE_URL is required"
        return self.database_url.get_secret_value()

    @property
    def redis_dsn(self) -> str:
        assert self.redis_url is not None, "REDIS_URL is required"
        return self.redis_url.get_secret_value()

    @property
    def worker_metrics_port(self) -> int:
        if self.orchestrator_worker_metrics_port is not None:
            return self.orchestrator_worker_metrics_port
        import os

        return int(os.environ["PORT"]) if os.environ.get("PORT") else 9191

    def secret_values(self) -> tuple[str, ...]:
        """Every secret this configuration holds, in each form it could leak in: each
        secret setting whole and each of its comma-separated values (rotation lists),
        a Standard Webhooks secret also without its `whsec_` prefix, and the password
        of a URL (`DATABASE_URL`, `REDIS_URL`), as written and decoded. Any `SecretStr`
        field counts, so a secret added to these settings later is covered too."""
        found: set[str] = set()
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not isinstance(value, SecretStr):
                continue
            whole = value.get_secret_value().strip()
            found.add(whole)
            for part in (p.strip() for p in whole.split(",")):
                found.add(part)
                if part.startswith("whsec_"):
                    found.add(part.removeprefix("whsec_"))
                found.update(_url_password(part))
        found.discard("")
        return tuple(sorted(found))

    def webhook_secrets(self, source: str) -> list[str]:
        """The accepted secrets of a webhook source (several while rotating); [] = disabled."""
        value: SecretStr | None = getattr(self, _SECRET_FIELD[source])
        return _secret_list(value)

    @property
    def pagerduty_trigger_events(self) -> tuple[str, ...]:
        return tuple(
            e.strip() for e in self.orchestrator_pagerduty_trigger_events.split(",") if e.strip()
        )

    def agent_timeout(self, source: str) -> int:
        value: int = getattr(self, f"orchestrator_{source}_agent_timeout_seconds")
        return value

    def agent_max_turns(self, source: str) -> int:
        value: int = getattr(self, f"orchestrator_{source}_agent_max_turns")
        return value


def _url_password(value: str) -> list[str]:
    if "://" not in value:
        return []
    try:
        password = urlsplit(value).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


@functools.lru_cache(maxsize=16)
def secret_masker(settings: Settings) -> SecretMasker:
    """The masker of every secret `settings` holds, compiled once per `Settings`. A
    secret too short to be masked inside free text is named (never shown) in a warning."""
    short = sorted(
        name.upper()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
        and any(
            0 < len(part.strip()) < MIN_SECRET_LENGTH
            for part in value.get_secret_value().split(",")
        )
    )
    if short:
        log.warning(
            "secrets shorter than %d characters are not masked inside payloads and logs: %s",
            MIN_SECRET_LENGTH,
            ", ".join(short),
        )
    return SecretMasker(settings.secret_values())


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise `InvalidSetting` naming the bad variable(s)."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper()
            parts.append(f"{name}: {err['msg']}")
        raise InvalidSetting("invalid environment variable " + "; ".join(parts)) from None
