"""Opaque keyset cursors shared by every list endpoint: a cursor encodes the sort key of
the last row served, so pages stay stable while rows are inserted."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import Connection


def encode_cursor(at: datetime, row_id: object) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on anything that is not a cursor this module wrote."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(at), str(row_id)
    except Exception as exc:  # any garbage is the same bad cursor to the caller
        raise ValueError("malformed cursor") from exc


def newest_first(
    conn: Connection[Any],
    select: str,
    *,
    sort_column: str,
    filter_columns: Sequence[str],
    filters: Mapping[str, Any],
    limit: int,
    cursor: str | None,
    row_id: Callable[[str], object] = uuid.UUID,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `select` (`SELECT … FROM <table>`), newest first on (`sort_column`,
    `id`): the rows after the one `cursor` names whose `filter_columns` equal `filters`
    (a missing or None value filters nothing), and the next page's cursor (None on the
    last page). Only `filter_columns` reach the SQL, never the keys of `filters`.

    Raises ValueError on a malformed cursor; `row_id` parses the id a cursor carries,
    so a forged id is a ValueError as well."""
    where: list[str] = []
    params: list[Any] = []
    for column in filter_columns:
        value = filters.get(column)
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if cursor:
        at, last_id = decode_cursor(cursor)
        where.append(f"({sort_column}, id) < (%s, %s)")
        params += [_utc_naive(at), row_id(last_id)]
    sql = select
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {sort_column} DESC, id DESC LIMIT %s"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last[sort_column], last["id"])


def _utc_naive(at: datetime) -> datetime:
    """The instant as the `TIMESTAMP` columns hold it (UTC, no zone); a cursor may carry
    an offset (earlier versions wrote `+00:00`)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
