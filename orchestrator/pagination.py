"""Opaque keyset cursors shared by every list endpoint: a cursor encodes the sort key of
the last row served, so pages stay stable while rows are inserted."""

from __future__ import annotations

import base64
import json
from datetime import datetime


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
