"""The durable event log, `orchestrator_webhook_events` (SPEC §4.2, §6).

An event is acknowledged only once its row is committed. Payloads are stored with
credential-named fields masked (Slack's legacy verification `token`, for one): the
single-event view shows payloads to operators. Every status change appends
to `status_history` (status, time, detail), so an operator can read how an event got
where it is. Dedup is the table's unique (source, delivery_key).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from orchestrator.pagination import decode_cursor, encode_cursor
from orchestrator.redaction import MASK, is_secret_key
from orchestrator.timestamps import UtcDateTime
from orchestrator.webhooks.model import ParsedEvent

EventStatus = Literal[
    "received", "queued", "ignored", "unroutable", "throttled", "dispatched", "failed"
]
FINAL_STATUSES = ("ignored", "unroutable", "dispatched", "failed")

_COLUMNS = (
    "id, source, delivery_key, event_type, status, org_id, team_node_id, matched_by,"
    " agent_run_id, attempts, last_error, received_at, updated_at"
)


class EventSummary(BaseModel):
    event_id: uuid.UUID
    source: str
    event_type: str | None
    status: str
    delivery_key: str
    org_id: str | None
    team_node_id: str | None
    matched_by: str | None
    agent_run_id: uuid.UUID | None
    attempts: int
    last_error: str | None
    received_at: UtcDateTime
    updated_at: UtcDateTime


class EventDetail(EventSummary):
    payload: dict[str, Any] | None
    headers: dict[str, Any]
    routing_identifiers: dict[str, Any]
    status_history: list[dict[str, Any]]


# U+0000 and lone surrogates (JSON allows "\ud800"; UTF-8 and Postgres do not).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any, *, mask: bool = True) -> tuple[Any, bool]:
    """One walk: characters Postgres text and JSONB cannot hold (U+0000, lone
    surrogates) become U+FFFD — rather than refusing a delivery whose signature was
    valid — and, with `mask`, credential-named fields are masked. Returns (value,
    whether anything changed)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            new_key, key_changed = storable(key, mask=mask)
            if mask and isinstance(key, str) and is_secret_key(key) and item not in (None, ""):
                out[new_key] = MASK
                changed = True
                continue
            new_item, item_changed = storable(item, mask=mask)
            out[new_key] = new_item
            changed = changed or key_changed or item_changed
        return out, changed
    if isinstance(value, list):
        items = [storable(v, mask=mask) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    if isinstance(value, str) and _UNSTORABLE.search(value):
        return _UNSTORABLE.sub("\ufffd", value), True
    return value, False


def jsonb_safe(value: Any) -> Any:
    """`value` with only the unstorable characters replaced (ids, routing)."""
    return storable(value, mask=False)[0]


def stored_payload(parsed: ParsedEvent) -> Any:
    """The payload as stored: its original JSON text when nothing needed changing (no
    re-encoding), else the masked and cleaned value."""
    value, changed = storable(parsed.payload)
    if not changed and parsed.raw_json is not None:
        return Jsonb(parsed.payload, dumps=lambda _obj: parsed.raw_json or "")
    return Jsonb(value)


def _history(status: str, detail: str | None = None) -> Jsonb:
    entry: dict[str, Any] = {"status": status}
    if detail:
        entry["detail"] = detail[:500]
    return Jsonb([entry])


def insert(
    conn: Connection[Any], *, source: str, parsed: ParsedEvent, headers: dict[str, str]
) -> tuple[uuid.UUID, bool]:
    """(event id, duplicate). A duplicate delivery returns the first event's id."""
    event_id = uuid.uuid4()
    row = conn.execute(
        "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, event_type,"
        " status, status_history, headers, payload, routing_identifiers)"
        " VALUES (%s, %s, %s, %s, 'received',"
        " jsonb_build_array(jsonb_build_object('status', 'received', 'at', now())),"
        " %s, %s, %s)"
        " ON CONFLICT (source, delivery_key) DO NOTHING RETURNING id",
        (
            event_id,
            source,
            jsonb_safe(parsed.delivery_key),
            jsonb_safe(parsed.event_type),
            Jsonb(headers),
            stored_payload(parsed),
            Jsonb(jsonb_safe(parsed.routing)),
        ),
    ).fetchone()
    if row is not None:
        return event_id, False
    existing = conn.execute(
        "SELECT id FROM orchestrator_webhook_events WHERE source = %s AND delivery_key = %s",
        (source, jsonb_safe(parsed.delivery_key)),
    ).fetchone()
    assert existing is not None
    return existing["id"], True


def set_status(
    conn: Connection[Any],
    event_id: uuid.UUID | str,
    status: EventStatus,
    *,
    detail: str | None = None,
    **fields: Any,
) -> None:
    """Move an event to `status`, recording it in the history; `fields` sets columns
    (`org_id`, `team_node_id`, `matched_by`, `agent_run_id`, `last_error`, `attempts`)."""
    allowed = {"org_id", "team_node_id", "matched_by", "agent_run_id", "last_error", "attempts"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown event fields: {sorted(unknown)}")
    sets = [
        "status = %s",
        "updated_at = now()",
        "status_history = status_history || jsonb_build_array("
        "jsonb_build_object('status', %s::text, 'at', now())"
        " || CASE WHEN %s::text IS NULL THEN '{}'::jsonb"
        " ELSE jsonb_build_object('detail', %s::text) END)",
    ]
    params: list[Any] = [status, status, detail, detail and detail[:500]]
    for name, value in fields.items():
        sets.append(f"{name} = %s")
        params.append(value)
    conn.execute(
        f"UPDATE orchestrator_webhook_events SET {', '.join(sets)} WHERE id = %s",  # noqa: S608
        [*params, event_id],
    )


def get(conn: Connection[Any], event_id: uuid.UUID | str) -> EventDetail | None:
    row = conn.execute(
        f"SELECT {_COLUMNS}, payload, headers, routing_identifiers, status_history"  # noqa: S608
        " FROM orchestrator_webhook_events WHERE id = %s",
        (event_id,),
    ).fetchone()
    return EventDetail.model_validate({**row, "event_id": row["id"]}) if row else None


def page(
    conn: Connection[Any],
    *,
    filters: dict[str, str | None],
    limit: int,
    cursor: str | None,
) -> tuple[list[EventSummary], str | None]:
    """Newest first, keyset-paginated on (received_at, id)."""
    where: list[str] = []
    params: list[Any] = []
    for column in ("source", "status", "org_id", "team_node_id"):
        value = filters.get(column)
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if cursor:
        at, row_id = decode_cursor(cursor)
        where.append("(received_at, id) < (%s, %s::uuid)")
        params += [at, uuid.UUID(row_id)]  # a forged cursor is a ValueError: 422
    sql = f"SELECT {_COLUMNS} FROM orchestrator_webhook_events"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY received_at DESC, id DESC LIMIT %s"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    items = [EventSummary.model_validate({**r, "event_id": r["id"]}) for r in rows[:limit]]
    next_cursor = (
        encode_cursor(items[-1].received_at, items[-1].event_id) if len(rows) > limit else None
    )
    return items, next_cursor


def stale(conn: Connection[Any], *, older_than_seconds: int, limit: int) -> list[uuid.UUID]:
    """Events left `received` or `queued` too long: the relay enqueues them again."""
    rows = conn.execute(
        "SELECT id FROM orchestrator_webhook_events WHERE status IN ('received', 'queued')"
        " AND updated_at < now() - make_interval(secs => %s) ORDER BY updated_at LIMIT %s",
        (older_than_seconds, limit),
    ).fetchall()
    return [r["id"] for r in rows]
