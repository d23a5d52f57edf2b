"""Timestamps leave the service in UTC with an explicit offset.

Columns are `TIMESTAMP` (no zone) written by `now()` on connections pinned to UTC
(see `db.pool`); this type attaches the zone when rows become models, so every API
answer says `+00:00` instead of leaving the reader to guess."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
