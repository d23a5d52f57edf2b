"""The durable event log, `orchestrator_webhook_events` (SPEC §4.2, §6).

An event is acknowledged only once its row is committed. Payloads are stored with
credential-named fields masked (Slack's legacy verification `token`, for one), and
every configured secret masked wherever it occurs in a string (a GitHub issue quoting
the signing secret): the single-event view shows payloads to operators. No raw body is
kept: the signature is checked once, at the door, and a replay re-dispatches the
stored (masked) payload. Every status change appends
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

from orchestrator.pagination import newest_first
from orchestrator.redaction import MASK, NO_SECRETS, SecretMasker, is_secret_key
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


def storable(
    value: Any, *, mask: bool = True, secrets: SecretMasker = NO_SECRETS
) -> tuple[Any, bool]:
    """Characters Postgres text and JSONB cannot hold (U+0000, lone surrogates) become
    U+FFFD — rather than refusing a delivery whose signature was valid —; with `mask`,
    credential-named fields are masked; and the configured `secrets` are masked
    wherever they occur in a string, keys included. Returns (value, whether anything
    changed).

    One walk does the first two and collects the strings; the secrets are then looked
    for in all of them at once, and only a value that holds one is walked again."""
    strings: list[str] | None = [] if secrets else None
    cleaned, changed = _walk(value, mask, strings)
    if strings and secrets.found_in_any(strings):
        return secrets.mask(cleaned), True
    return cleaned, changed


def _walk(value: Any, mask: bool, strings: list[str] | None) -> tuple[Any, bool]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            new_key, key_changed = _walk(key, mask, strings)
            if mask and isinstance(key, str) and is_secret_key(key) and item not in (None, ""):
                out[new_key] = MASK
                changed = True
                continue
            new_item, item_changed = _walk(item, mask, strings)
            out[new_key] = new_item
            changed = changed or key_changed or item_changed
        return out, changed
    if isinstance(value, list):
        items = [_walk(v, mask, strings) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    if isinstance(value, str):
        changed = _UNSTORABLE.search(value) is not None
        if changed:
            value = _UNSTORABLE.sub("\ufffd", value)
        if strings is not None:
            strings.append(value)
        return value, changed
    return value, False


def jsonb_safe(value: Any, secrets: SecretMasker = NO_SECRETS) -> Any:
    """`value` with the unstorable characters replaced and `secrets` masked, but no
    field masked for its name (ids, routing)."""
    return storable(value, mask=False, secrets=secrets)[0]


def stored_payload(parsed: ParsedEvent, secrets: SecretMasker = NO_SECRETS) -> Any:
    """The payload as stored: its original JSON text when nothing needed changing (no
    re-encoding), else the masked and cleaned value. The text is kept only when no
    string in it holds a credential-named field's value or a configured secret — its
    escapes (`\\u0041`, `\\/`) may spell a secret the text does not show, so the
    parsed strings are what is searched, not the text."""
    value, changed = storable(parsed.payload, secrets=secrets)
    if not changed and parsed.raw_json is not None:
        return Jsonb(parsed.payload, dumps=lambda _obj: parsed.raw_json or "")
    return Jsonb(value)


# Column widths (migrations/0001): identifiers are masked first and cut after, so a cut
# can never keep the first part of a secret.
DELIVERY_KEY_CHARS = 200
EVENT_TYPE_CHARS = 128
HEADER_VALUE_CHARS = 512


def stored_identifier(value: str, secrets: SecretMasker, limit: int) -> str:
    return str(jsonb_safe(value, secrets))[:limit]


def stored_headers(headers: dict[str, str], secrets: SecretMasker) -> dict[str, str]:
    """Headers as kept: credential-named ones masked, configured secrets masked inside
    any value, then each value cut to `HEADER_VALUE_CHARS`."""
    cleaned = storable(headers, secrets=secrets)[0]
    return {k: v[:HEADER_VALUE_CHARS] if isinstance(v, str) else v for k, v in cleaned.items()}


def _history(status: str, detail: str | None = None) -> Jsonb:
    entry: dict[str, Any] = {"status": status}
    if detail:
        entry["detail"] = detail[:500]
    return Jsonb([entry])


def insert(
    conn: Connection[Any],
    *,
    source: str,
    parsed: ParsedEvent,
    headers: dict[str, str],
    secrets: SecretMasker,
) -> tuple[uuid.UUID, bool]:
    """(event id, duplicate). A duplicate delivery returns the first event's id.

    Nothing of the delivery is stored with a configured secret in it (`secrets`, the
    process's `secret_masker`): payload, headers, routing identifiers, delivery key
    and event type are all masked. The delivery key is deduplicated as masked, so a
    redelivery still meets its first copy."""
    event_id = uuid.uuid4()
    delivery_key = stored_identifier(parsed.delivery_key, secrets, DELIVERY_KEY_CHARS)
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
            delivery_key,
            stored_identifier(parsed.event_type, secrets, EVENT_TYPE_CHARS),
            Jsonb(stored_headers(headers, secrets)),
            stored_payload(parsed, secrets),
            Jsonb(jsonb_safe(parsed.routing, secrets)),
        ),
    ).fetchone()
    if row is not None:
        return event_id, False
    existing = conn.execute(
        "SELECT id FROM orchestrator_webhook_events WHERE source = %s AND delivery_key = %s",
        (source, delivery_key),
    ).fetchone()
    assert existing is not None
    return existing["id"], True


def set_status(
    conn: Connection[Any],
    event_id: uuid.UUID | str,
    status: EventStatus,
    *,
    detail: str | None = None,
    only_from: tuple[EventStatus, ...] | None = None,
    **fields: Any,
) -> bool:
    """Move an event to `status`, recording it in the history; `fields` sets columns
    (`org_id`, `team_node_id`, `matched_by`, `agent_run_id`, `last_error`, `attempts`).

    `only_from` moves it only while its status is one of those, checked in the UPDATE
    itself: a writer that changed the row concurrently wins (Postgres re-checks the
    condition on the committed row), so a late writer cannot move a final event back.
    Returns whether the row was moved."""
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
    where = "id = %s"
    params.append(event_id)
    if only_from is not None:
        where += " AND status = ANY(%s)"
        params.append(list(only_from))
    cur = conn.execute(
        f"UPDATE orchestrator_webhook_events SET {', '.join(sets)} WHERE {where}",  # noqa: S608
        params,
    )
    return cur.rowcount == 1


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
    """Newest first, keyset-paginated on (received_at, id). Raises ValueError on a bad
    cursor."""
    rows, next_cursor = newest_first(
        conn,
        f"SELECT {_COLUMNS} FROM orchestrator_webhook_events",  # noqa: S608
        sort_column="received_at",
        filter_columns=("source", "status", "org_id", "team_node_id"),
        filters=filters,
        limit=limit,
        cursor=cursor,
    )
    items = [EventSummary.model_validate({**r, "event_id": r["id"]}) for r in rows]
    return items, next_cursor


def stale(conn: Connection[Any], *, older_than_seconds: int, limit: int) -> list[uuid.UUID]:
    """Events left `received` or `queued` too long: the relay enqueues them again."""
    rows = conn.execute(
        "SELECT id FROM orchestrator_webhook_events WHERE status IN ('received', 'queued')"
        " AND updated_at < now() - make_interval(secs => %s) ORDER BY updated_at LIMIT %s",
        (older_than_seconds, limit),
    ).fetchall()
    return [r["id"] for r in rows]
