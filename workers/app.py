"""The module `dramatiq` loads in `orchestrator worker`: it builds the broker from the
environment, makes it the global broker (the one place that does), and imports the
actor modules so they register on it."""

from __future__ import annotations

import dramatiq

from orchestrator.db.pool import create_pool
from orchestrator.logs import configure_logging
from orchestrator.settings import load_settings, secret_masker
from workers.actors import register_all
from workers.broker import create_broker
from workers.runtime import build_deps, build_provisioning_deps

settings = load_settings()
configure_logging("worker", settings.orchestrator_log_level, secret_masker(settings))
pool = create_pool(settings, name="worker", min_size=1)
broker = create_broker(settings, role="worker", pool=pool)
dramatiq.set_broker(broker)

register_all(broker, build_deps(settings, pool), build_provisioning_deps(settings, pool))
