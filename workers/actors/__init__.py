"""Actor modules. Each exposes `register(broker, deps)`, which declares its actors on
that broker bound to those dependencies — no module-level broker, no globals, so tests
register the same actors on their own broker with their own stand-ins."""

from __future__ import annotations

import dramatiq

from orchestrator.events.pipeline import PipelineDeps
from orchestrator.provisioning.steps import ProvisioningDeps
from workers.actors import agents, provisioning, webhooks


def register_all(
    broker: dramatiq.Broker,
    deps: PipelineDeps,
    provisioning_deps: ProvisioningDeps | None = None,
) -> None:
    """The provisioning actor only with its dependencies: tests of the webhook path
    need no Kubernetes or AI Pipeline."""
    webhooks.register(broker, deps)
    agents.register(broker, deps)
    if provisioning_deps is not None:
        provisioning.register(broker, provisioning_deps)
