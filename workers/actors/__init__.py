"""Actor modules. Each exposes `register(broker, deps)`, which declares its actors on
that broker bound to those dependencies — no module-level broker, no globals, so tests
register the same actors on their own broker with their own stand-ins."""

from __future__ import annotations

import dramatiq

from orchestrator.events.pipeline import PipelineDeps
from workers.actors import webhooks


def register_all(broker: dramatiq.Broker, deps: PipelineDeps) -> None:
    webhooks.register(broker, deps)
