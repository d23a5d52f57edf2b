"""A team's pipeline schedule: what the API accepts and what it answers (SPEC §4.3, §10).

One schedule per (org, team, type). The type is its identity — it names the CronJob —
so it is set at creation and never patched; cron expression, time zone and `enabled`
may change.
"""

from __future__ import annotations

import uuid
import zoneinfo
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from orchestrator.schedules.cron import validate_cron
from orchestrator.timestamps import UtcDateTime

ScheduleType = Literal["ingestion", "gap_analysis", "eval"]
SyncStatus = Literal["pending", "synced", "error"]
SCHEDULE_TYPES: tuple[ScheduleType, ...] = ("ingestion", "gap_analysis", "eval")


# What the system's zone folder holds besides zones: the host's own zone under a name
# that means something else on every machine, and the legacy trees.
_NOT_ZONES = {"localtime", "Factory", "posixrules", "leapseconds", "tzdata.zi"}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(
        z
        for z in zoneinfo.available_timezones()
        if z not in _NOT_ZONES and not z.startswith(("posix/", "right/"))
    )


def validate_timezone(name: str) -> str:
    """An IANA zone name, as the API server's `time.LoadLocation` accepts in
    `spec.timeZone` (`Local` and file paths are refused there too)."""
    if name not in _zones():
        raise ValueError(f"{name!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin)")
    return name


CronExpression = Annotated[str, Field(max_length=64), AfterValidator(validate_cron)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(validate_timezone)]


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule_type: ScheduleType
    cron_expression: CronExpression
    timezone: TimeZone = "UTC"
    enabled: StrictBool = True


class ScheduleUpdate(BaseModel):
    """PATCH body: the fields to change, at least one."""

    model_config = ConfigDict(extra="forbid")

    cron_expression: CronExpression | None = None
    timezone: TimeZone | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ScheduleUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of cron_expression, timezone, enabled")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class Schedule(BaseModel):
    """The SPEC §10 shape."""

    schedule_id: uuid.UUID
    org_id: str
    team_node_id: str
    schedule_type: ScheduleType
    cron_expression: str
    timezone: str
    enabled: bool
    k8s_cronjob_name: str | None
    sync_status: SyncStatus
    sync_error: str | None
    last_synced_at: UtcDateTime | None
    last_run_at: UtcDateTime | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
