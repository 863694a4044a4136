"""Paginators that prove progress: a repeated cursor or a repeated page stops the stream."""

from __future__ import annotations

import typing as t

import requests
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.pagination import BaseAPIPaginator, SinglePagePaginator

from taps.engine.declaration import PaginatorSpec
from taps.engine.responses import read_dotted, response_json


class PaginationError(RuntimeError):
    """Raised when an API's pages stop making progress (a loop or a repeated page)."""


class CursorPaginator(BaseAPIPaginator[t.Any]):
    """`has_more` flag plus the last record's id as the next cursor (Stripe style)."""

    def __init__(self, *, stream_name: str, records_path: str, has_more: str, cursor_field: str) -> None:
        super().__init__(None)
        self._stream_name = stream_name
        self._records_path = records_path
        self._has_more_path = has_more
        self._cursor_field = cursor_field
        self._previous_page_ids: list[t.Any] | None = None

    def advance(self, response: requests.Response) -> None:
        """Move to the next page, or finish; raise when the API repeats itself."""
        self._page_count += 1
        page_ids = self._page_ids(response)

        if page_ids and page_ids == self._previous_page_ids:
            msg = (
                f"Stream {self._stream_name!r}: page {self._page_count} returned the same "
                f"{len(page_ids)} record id(s) as the page before it, so pagination is not advancing."
            )
            raise PaginationError(msg)
        self._previous_page_ids = page_ids

        if not self.has_more(response) or not page_ids:
            self._finished = True
            return

        cursor = page_ids[-1]
        if cursor is None or cursor == self._value:
            msg = (
                f"Stream {self._stream_name!r}: the next cursor ({self._cursor_field!r} of the last "
                f"record on page {self._page_count}) is empty or repeats the current cursor."
            )
            raise PaginationError(msg)
        self._value = cursor

    def has_more(self, response: requests.Response) -> bool:
        """Read the body's 'more pages' flag."""
        return bool(read_dotted(response_json(response), self._has_more_path))

    def get_next(self, response: requests.Response) -> t.Any:
        """Return the cursor of the page after `response`."""
        ids = self._page_ids(response)
        return ids[-1] if ids else None

    def _page_ids(self, response: requests.Response) -> list[t.Any]:
        records = extract_jsonpath(self._records_path, response_json(response))
        return [record.get(self._cursor_field) if isinstance(record, dict) else None for record in records]


def build_paginator(spec: PaginatorSpec, *, stream_name: str, records_path: str) -> BaseAPIPaginator[t.Any]:
    """Create a fresh paginator for one partition of a stream."""
    if spec.type == "cursor":
        return CursorPaginator(
            stream_name=stream_name,
            records_path=records_path,
            has_more=spec.options.get("has_more", "has_more"),
            cursor_field=spec.options.get("cursor_field", "id"),
        )
    return SinglePagePaginator()


def cursor_param(spec: PaginatorSpec) -> str | None:
    """Return the query parameter that carries the cursor, or None for single-page streams."""
    if spec.type == "cursor":
        return spec.options.get("cursor_param", "starting_after")
    return None
