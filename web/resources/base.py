"""What every admin resource shares: the services, and answering one page of a list.

The caller is authenticated and holds the operation's permission before a responder
runs (`web.auth.Authentication`); responders reach the admin through `admin_of(req)`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import falcon
from pydantic import BaseModel

from web.auth import admin_of
from web.bodies import query
from web.errors import bad_cursor
from web.schemas import PageQuery
from web.services import Services

T = TypeVar("T", bound=BaseModel)


def _as_json(item: BaseModel) -> dict[str, Any]:
    return item.model_dump(mode="json")


class AdminResource:
    def __init__(self, services: Services) -> None:
        self._s = services

    def _answer_org_page(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        model: type[PageQuery],
        read: Callable[..., tuple[Sequence[T], str | None]],
        show: Callable[[T], dict[str, Any]] = _as_json,
    ) -> None:
        """One page of an org-scoped list, read by a store's `read(conn, *, filters,
        limit, cursor)` (ValueError for a malformed cursor: 422). The query's fields
        other than `limit` and `cursor` filter it, the `org_id` filter confined to the
        admin's reach (403 beyond it, the admin's own org when absent)."""
        q = query(req, model)
        filters = q.model_dump(exclude={"limit", "cursor"})
        filters["org_id"] = admin_of(req).list_scope(filters.get("org_id"))
        try:
            with self._s.pool.connection() as conn:
                items, next_cursor = read(conn, filters=filters, limit=q.limit, cursor=q.cursor)
        except ValueError:
            raise bad_cursor() from None
        resp.media = {"items": [show(i) for i in items], "next_cursor": next_cursor}
