"""What a provisioning or deprovisioning request may say (SPEC §5), validated once at
the door so the run engine only ever sees well-formed requests.

Routing: only the lists a request names are written; a list left out keeps what the
team has (so a re-provision that only rotates the token does not wipe routing). The
top-level `slack_channel_ids` is an alias of `routing.slack_channel_ids`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from orchestrator.schedules.model import CronExpression

ID = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
IdentifierList = Annotated[list[Identifier], Field(max_length=200)]
DEFAULT_PIPELINE_CRON = "0 2 * * *"

# Routing list in the team config → the key the routing lookup takes for one value.
ROUTING_KEYS: dict[str, str] = {
    "slack_channel_ids": "slack_channel_id",
    "github_repos": "github_repo",
    "pagerduty_service_ids": "pagerduty_service_id",
    "incidentio_team_ids": "incidentio_team_id",
    "incidentio_alert_source_ids": "incidentio_alert_source_id",
    "coralogix_team_names": "coralogix_team_name",
    "services": "service",
}
# Kubernetes resource quantities as the API server writes them (e.g. 500m, 2, 1Gi, 512M).
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slack_channel_ids: IdentifierList = []
    github_repos: IdentifierList = []
    pagerduty_service_ids: IdentifierList = []
    incidentio_team_ids: IdentifierList = []
    incidentio_alert_source_ids: IdentifierList = []
    coralogix_team_names: IdentifierList = []
    services: IdentifierList = []

    def given(self) -> dict[str, list[str]]:
        """The lists the request named, de-duplicated in order."""
        return {k: list(dict.fromkeys(getattr(self, k))) for k in sorted(self.model_fields_set)}


class DedicatedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replicas: StrictInt = Field(default=1, ge=1, le=20)
    cpu: Annotated[str, Field(pattern=QUANTITY, max_length=16)] = "500m"
    memory: Annotated[str, Field(pattern=QUANTITY, max_length=16)] = "1Gi"


class ProvisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: ID
    team_node_id: ID
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    routing: Routing = Routing()
    slack_channel_ids: IdentifierList | None = None
    pipeline_schedule: CronExpression | None = None
    create_pipeline_schedule: StrictBool = False
    deployment_mode: Literal["shared", "dedicated"] = "shared"
    dedicated_config: DedicatedConfig | None = None
    rotate_token: StrictBool = False
    idempotency_key: Annotated[str, Field(min_length=1, max_length=128)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ProvisionRequest:
        if self.slack_channel_ids is not None:
            if "slack_channel_ids" in self.routing.model_fields_set:
                raise ValueError(
                    "give slack_channel_ids either at the top level or under routing, not both"
                )
            self.routing = Routing.model_validate(
                {**self.routing.given(), "slack_channel_ids": self.slack_channel_ids}
            )
            self.slack_channel_ids = None
        if self.dedicated_config is not None and self.deployment_mode != "dedicated":
            raise ValueError('dedicated_config needs deployment_mode "dedicated"')
        return self

    def pipeline_cron(self) -> str | None:
        if self.pipeline_schedule:
            return self.pipeline_schedule
        return DEFAULT_PIPELINE_CRON if self.create_pipeline_schedule else None

    def dedicated(self) -> DedicatedConfig | None:
        if self.deployment_mode != "dedicated":
            return None
        return self.dedicated_config or DedicatedConfig()

    def canonical(self) -> dict[str, Any]:
        """The request as stored: normalized, without the idempotency key."""
        data = self.model_dump(mode="json", exclude={"idempotency_key", "slack_channel_ids"})
        data["routing"] = self.routing.given()
        return data


class DeprovisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: ID
    team_node_id: ID
    idempotency_key: Annotated[str, Field(min_length=1, max_length=128)] | None = None

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"idempotency_key"})


def request_hash(kind: str, canonical: dict[str, Any]) -> str:
    """Same key + same hash = the same request (SPEC: 200 with that run); same key +
    another hash = 409."""
    encoded = json.dumps([kind, canonical], sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()
