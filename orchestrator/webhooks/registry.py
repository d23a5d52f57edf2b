"""The webhook sources the gateway serves, built from settings, and their secrets."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.settings import Settings
from orchestrator.webhooks.coralogix import Coralogix
from orchestrator.webhooks.generic import Generic
from orchestrator.webhooks.github import GitHub
from orchestrator.webhooks.incidentio import IncidentIo
from orchestrator.webhooks.model import WebhookSource
from orchestrator.webhooks.pagerduty import PagerDuty
from orchestrator.webhooks.slack import SlackEvents, SlackInteractions


@dataclass(frozen=True)
class Endpoint:
    """One webhook route: its path, the parser, and which secrets verify it (the Slack
    interaction route uses Slack's signing secret)."""

    path: str
    source: WebhookSource
    secret_source: str

    @property
    def name(self) -> str:
        return self.source.name


def endpoints(settings: Settings) -> list[Endpoint]:
    return [
        Endpoint(SlackEvents.path, SlackEvents(), "slack"),
        Endpoint(SlackInteractions.path, SlackInteractions(), "slack"),
        Endpoint(GitHub.path, GitHub(settings.github_bot_mention), "github"),
        Endpoint(PagerDuty.path, PagerDuty(settings.pagerduty_trigger_events), "pagerduty"),
        Endpoint(IncidentIo.path, IncidentIo(), "incidentio"),
        Endpoint(Coralogix.path, Coralogix(), "coralogix"),
        Endpoint(Generic.path, Generic(), "generic"),
    ]


def source_by_name(settings: Settings, name: str) -> WebhookSource:
    for endpoint in endpoints(settings):
        if endpoint.name == name:
            return endpoint.source
    raise KeyError(name)
