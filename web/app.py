"""The Falcon app factory.

`create_app(settings, services)` wires the app from what it is given — tests pass their
own Postgres, Redis, broker and Config Service stand-in. `get_app()` alone reads the
environment; gunicorn calls it in each worker after the fork, so pools open there.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import falcon
import psycopg
import psycopg_pool
import redis

from orchestrator import readiness
from orchestrator.auth.admin import AdminAuthenticator, AuthError
from orchestrator.db.migrations import migration_ids
from orchestrator.db.pool import create_pool
from orchestrator.peers.config_service import ConfigServiceClient
from orchestrator.settings import Settings, load_settings, secret_masker
from orchestrator.webhooks.flood_guard import FloodGuard
from orchestrator.webhooks.registry import endpoints
from web import dashboard, errors, middleware
from web.auth import Authentication, handle_auth_error
from web.intake import EventIntake
from web.metrics import WebMetrics
from web.openapi import build_document
from web.resources import (
    agent_runs,
    audit,
    events,
    health,
    internal,
    jobs,
    provisioning,
    schedules,
    webhooks,
)
from web.services import Services


def _version() -> str:
    try:
        return version("incidentfox-orchestrator")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(
    settings: Settings, services: Services, *, authenticator: AdminAuthenticator | None = None
) -> falcon.App:
    authenticator = authenticator or AdminAuthenticator(
        services.config_service,
        ttl=settings.orchestrator_admin_auth_cache_ttl_seconds,
        maxsize=settings.orchestrator_admin_auth_cache_size,
        require_admin_star=settings.orchestrator_require_admin_star,
    )
    internal_token = settings.orchestrator_internal_token
    app = falcon.App(
        middleware=[
            middleware.RequestId(),
            middleware.Metrics(WebMetrics.get()),
            middleware.BodyLimit(settings.orchestrator_max_body_bytes),
            # After the body limits, which read nothing; before every responder.
            Authentication(
                authenticator, internal_token.get_secret_value() if internal_token else None
            ),
        ],
    )
    app.req_options.auto_parse_qs_csv = False
    app.req_options.keep_blank_qs_values = True
    app.resp_options.secure_cookies_by_default = True
    app.set_error_serializer(errors.serialize_error)
    app.add_error_handler(Exception, errors.handle_unexpected)
    app.add_error_handler(AuthError, handle_auth_error)
    app.add_error_handler(
        (
            psycopg.OperationalError,
            psycopg_pool.PoolTimeout,
            redis.ConnectionError,
            redis.TimeoutError,
        ),
        errors.handle_dependency_down,
    )

    expected_migrations = migration_ids()

    def ready_checks() -> dict[str, str]:
        pg, migrations = readiness.postgres_and_migrations(services.pool, expected_migrations)
        return {
            "postgres": pg,
            "redis": readiness.redis_ping(services.redis),
            "migrations": migrations,
        }

    routes: list[tuple[str, Any]] = [
        ("/health", health.Health()),
        ("/ready", health.Ready(ready_checks)),
        ("/metrics", health.Metrics()),
        ("/api/v1/admin/audit", audit.AuditLog(services)),
        ("/api/v1/admin/jobs/queues", jobs.Queues(services)),
        ("/api/v1/admin/jobs/dead", jobs.DeadLetters(services)),
        ("/api/v1/admin/jobs/dead/requeue", jobs.DeadLettersBulkRequeue(services)),
        ("/api/v1/admin/jobs/dead/{message_id}", jobs.DeadLetter(services)),
        ("/api/v1/admin/jobs/dead/{message_id}/requeue", jobs.DeadLetterRequeue(services)),
    ]
    guard = FloodGuard(
        settings.redis_dsn, settings.orchestrator_ingress_rate_limit, namespace=services.namespace
    )
    intake = EventIntake(services, secret_masker(settings))
    routes += [(e.path, webhooks.Webhook(e, settings, intake, guard)) for e in endpoints(settings)]
    routes.append(("/api/v1/internal/slack/trigger", internal.InternalSlackTrigger(intake)))
    routes += [
        ("/api/v1/admin/webhooks/events", events.Events(services)),
        ("/api/v1/admin/webhooks/events/{event_id}", events.Event(services)),
        ("/api/v1/admin/webhooks/events/{event_id}/replay", events.EventReplay(services)),
    ]
    routes += [
        ("/api/v1/admin/provision/team", provisioning.ProvisionTeam(services)),
        ("/api/v1/admin/provision/runs", provisioning.Runs(services)),
        ("/api/v1/admin/provision/runs/{run_id}", provisioning.Run(services)),
    ]
    routes += [
        ("/api/v1/admin/agents/run", agent_runs.AgentRunStart(services, settings)),
        ("/api/v1/admin/agents/runs", agent_runs.AgentRuns(services)),
        ("/api/v1/admin/agents/runs/{run_id}", agent_runs.AgentRunItem(services)),
    ]
    team = "/api/v1/admin/orgs/{org_id}/teams/{team_node_id}"
    routes += [
        (f"{team}/schedules", schedules.Schedules(services)),
        (f"{team}/schedules/{{schedule_id}}", schedules.ScheduleItem(services)),
    ]
    routes += dashboard.routes(settings, services, authenticator)
    routes.append(
        ("/openapi.json", health.OpenApi(lambda: build_document(routes, version=_version())))
    )
    for path, resource in routes:
        app.add_route(path, resource)
    return app


def build_services(settings: Settings) -> Services:
    """Services from the environment, opened in this process."""
    from workers.broker import create_broker, redis_client

    pool = create_pool(settings, name="web", min_size=1, wait_timeout=2.0)
    pool.open(wait=False)
    # Short timeouts: a webhook must be acknowledged within seconds even if Redis hangs.
    client = redis_client(settings.redis_dsn, timeout=1.0, retry=False)
    assert settings.config_service_url is not None
    return Services(
        settings=settings,
        pool=pool,
        redis=client,
        broker=create_broker(settings, role="web", client=client),
        config_service=ConfigServiceClient(
            settings.config_service_url, timeout=settings.orchestrator_peer_timeout_seconds
        ),
        namespace=settings.orchestrator_redis_namespace,
    )


def get_app() -> falcon.App:
    settings = load_settings()
    settings.require("web")
    return create_app(settings, build_services(settings))
