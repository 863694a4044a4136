"""Paginators that prove progress, and the request shaping each paginator kind needs.

Every paginator counts the rows it reads, compares each page with the page before
it, never reuses a next-page value, ends on an empty page and can reconcile its
row count with a total that the API reports. Errors name the stream and the page
number, never record ids, cursors, tokens or URLs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import typing as t
from decimal import Decimal
from urllib.parse import urljoin, urlsplit

import msgspec
import requests
import simplejson
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.pagination import BaseAPIPaginator

from taps.engine.declaration import PaginatorSpec
from taps.engine.responses import read_dotted, response_json

LOGGER = logging.getLogger(__name__)


class PaginationError(RuntimeError):
    """Raised when an API's pages stop making progress (a loop or a repeated page)."""


def _string_option(description: str, default: str | None) -> dict[str, t.Any]:
    json_type: t.Any = "string" if default is not None else ["string", "null"]
    return {"type": json_type, "description": description, "default": default}


def _total_option(default: str | None, note: str = "") -> dict[str, t.Any]:
    description = (
        "Dotted path of the total row count in the body, reconciled with the rows read. "
        "Null: the API reports no total." + note
    )
    return {"type": ["string", "null"], "description": description, "default": default}


def _integer_option(description: str, default: int, minimum: int) -> dict[str, t.Any]:
    return {"type": "integer", "minimum": minimum, "description": description, "default": default}


def _enum_option(description: str, allowed: list[str]) -> dict[str, t.Any]:
    return {"enum": allowed, "description": description, "default": allowed[0]}


def _paginator_schema(kind: str, description: str, options: dict[str, dict[str, t.Any]]) -> dict[str, t.Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "description": description,
        "properties": {"type": {"const": kind, "description": "Paginator kind."}, **options},
    }


_RECORD_ID = "Dotted path of a record's id, used to detect a page that repeats the page before it. Null compares whole records."
_PLACEMENT = "Where the paging parameters go: query (the query string) or body (the JSON request body)."

PAGINATOR_SCHEMAS: dict[str, dict[str, t.Any]] = {
    "cursor": _paginator_schema(
        "cursor",
        "A 'more pages' flag plus the last record's id as the next cursor (Stripe).",
        {
            "has_more": _string_option("Dotted path of the boolean 'more pages' flag in the body.", "has_more"),
            "cursor_field": _string_option("Field of the last record that becomes the next cursor.", "id"),
            "cursor_param": _string_option("Query parameter that carries the cursor.", "starting_after"),
            "total": _total_option(None),
        },
    ),
    "next_link": _paginator_schema(
        "next_link",
        "The full URL of the next page, used as-is. Its query replaces the declared params (Meta).",
        {
            "source": _enum_option("Where the next URL is read: body (a dotted path) or header (the Link header).", ["body", "header"]),
            "path": _string_option("Dotted path of the next URL in the body, read when source is body.", "paging.next"),
            "total": _total_option(None),
            "record_id": _string_option(_RECORD_ID, None),
        },
    ),
    "offset": _paginator_schema(
        "offset",
        "A limit and an offset parameter, read until the offset reaches the total (GA4 runReport).",
        {
            "limit_param": _string_option("Parameter that carries the page size.", "limit"),
            "offset_param": _string_option("Parameter that carries the offset of the first row of a page.", "offset"),
            "page_size": _integer_option("Rows requested per page.", 100, 1),
            "in": _enum_option(_PLACEMENT, ["query", "body"]),
            "total": _total_option("total", " Without a total, a page shorter than page_size ends the stream."),
            "record_id": _string_option(_RECORD_ID, None),
        },
    ),
    "page_number": _paginator_schema(
        "page_number",
        "A page number and a page size in the query string, read until page * size reaches the total (Magento).",
        {
            "page_param": _string_option("Query parameter that carries the page number.", "page"),
            "size_param": _string_option("Query parameter that carries the page size.", "page_size"),
            "page_size": _integer_option("Rows requested per page.", 100, 1),
            "first_page": _integer_option("Number of the first page.", 1, 0),
            "total": _total_option("total_count", " A page shorter than page_size also ends the stream."),
            "record_id": _string_option(_RECORD_ID, None),
        },
    ),
    "page_token": _paginator_schema(
        "page_token",
        "An opaque token from the body, sent back for the next page. An empty or absent token ends (Google Ads search).",
        {
            "token_path": _string_option("Dotted path of the next page token in the body.", "nextPageToken"),
            "token_param": _string_option("Parameter that carries the token.", "pageToken"),
            "in": _enum_option(_PLACEMENT, ["query", "body"]),
            "total": _total_option(None),
            "record_id": _string_option(_RECORD_ID, None),
        },
    ),
    "batches": _paginator_schema(
        "batches",
        "One request whose body is a JSON array of batches, each with results (Google Ads searchStream).",
        {},
    ),
    "single_page": _paginator_schema(
        "single_page",
        "One request, no further pages.",
        {"total": _total_option(None)},
    ),
}


def paginator_option(spec: PaginatorSpec, name: str) -> t.Any:
    """Return a paginator option from the spec, or its default from `PAGINATOR_SCHEMAS`."""
    if name in spec.options:
        return spec.options[name]
    return PAGINATOR_SCHEMAS[spec.type]["properties"][name]["default"]


class ProgressPaginator(BaseAPIPaginator[t.Any]):
    """Base of every paginator here: progress checks, row counting and total reconciliation.

    Subclasses implement `next_value`, which returns the next page's value or None
    at the end. `advance` ends on an empty page before asking for it.
    """

    value_name = "next-page value"

    def __init__(
        self,
        start_value: t.Any,
        *,
        stream_name: str,
        records_path: str,
        total: str | None = None,
        record_id: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(start_value)
        self._stream_name = stream_name
        self._records_path = records_path
        self._total_path = total
        self._record_id = record_id
        self._logger = logger or LOGGER
        self._rows_read = 0
        self._reported_total: int | None = None
        self._previous_page: list[t.Any] | None = None
        self._seen_pages: set[bytes] = set()
        self._used_values = {_value_key(start_value)} if start_value is not None else set()

    @property
    def rows_read(self) -> int:
        """Records counted on the pages passed to `advance`, before any whitelist or dedupe."""
        return self._rows_read

    @property
    def reported_total(self) -> int | None:
        """The latest total the API reported, or None."""
        return self._reported_total

    def advance(self, response: requests.Response) -> None:
        """Move to the next page or finish, and raise when the API repeats itself."""
        self._page_count += 1
        records = self._records(response)
        self._note_total(response)

        # An empty page ends the stream even when it carries a next link or token.
        next_value = self.next_value(response, records) if records else None
        ends = next_value is None or next_value == ""

        # Digests are needed only to compare with a page before or after this one.
        if self._previous_page is not None or not ends:
            page = self._page_key(records)
            if records and page == self._previous_page:
                self._on_repeated_page(len(records))
                return
            # A page seen earlier (A, B, A, ...) means the API cycles; next links would loop forever.
            digest = hashlib.sha256(repr(page).encode()).digest()
            if records and digest in self._seen_pages:
                msg = (
                    f"Stream {self._stream_name!r}: page {self._page_count} returned the same {len(records)} record(s) as "
                    "a page already read, so pagination would loop. Check the paginator options against the API's responses."
                )
                raise PaginationError(msg)
            self._seen_pages.add(digest)
            self._previous_page = page
        self._rows_read += len(records)

        if ends:
            self._finished = True
            return

        self._check_unused(next_value)
        self._value = next_value

    def get_next(self, response: requests.Response) -> t.Any:
        """Return the next page's value without advancing."""
        return self.next_value(response, self._records(response))

    def next_value(self, response: requests.Response, records: list[t.Any]) -> t.Any:
        """Return the value that requests the page after `response`, or None at the end."""
        raise NotImplementedError

    def reconcile(self, strict: bool, where: str = "") -> None:
        """Compare the rows read with the reported total: warn once, or raise when strict.

        Call it after the last page. Nothing happens when the API reported no total.
        `where` names the part read, such as a window of days.
        """
        total = self._reported_total
        if total is None or total == self._rows_read:
            return

        scope = f" ({where})" if where else ""
        message = (
            f"Stream {self._stream_name!r}{scope}: read {self._rows_read} row(s) in {self._page_count} page(s), "
            f"but the API reported a total of {total} at {self._total_path!r}."
        )
        if strict:
            hint = " Rows were added or removed during the read, or a page ended early. Run the stream again."
            raise PaginationError(message + hint)
        self._logger.warning("%s", message)

    def _on_repeated_page(self, count: int) -> None:
        raise self._repeated_page_error(count)

    def _repeated_page_error(self, count: int) -> PaginationError:
        unit = "record id(s)" if self._record_id else "record(s)"
        msg = (
            f"Stream {self._stream_name!r}: page {self._page_count} returned the same {count} {unit} as the "
            "page before it, so pagination is not advancing. Check that the API honours the paging "
            "parameters and that the listing is sorted on a unique key."
        )
        return PaginationError(msg)

    def _check_unused(self, value: t.Any) -> None:
        key = _value_key(value)
        if key in self._used_values:
            msg = (
                f"Stream {self._stream_name!r}: page {self._page_count} returned a {self.value_name} that was "
                "already used, so pagination would loop. Check the paginator options against the API's responses."
            )
            raise PaginationError(msg)
        self._used_values.add(key)

    def _records(self, response: requests.Response) -> list[t.Any]:
        return list(extract_jsonpath(self._records_path, response_json(response)))

    def _page_key(self, records: list[t.Any]) -> list[t.Any]:
        """Return what identifies a page: its record ids, or one digest of all its records when ids are not declared."""
        if self._record_id:
            return [self._record_key(record) for record in records]
        # One sorted-key encoding of the whole page costs far less than one per record.
        encoded = msgspec.json.encode(records, order="sorted", enc_hook=str)
        return [len(records), hashlib.sha256(encoded).hexdigest()]

    def _record_key(self, record: t.Any) -> t.Any:
        """Return the record's id, or a digest of the whole record when it has none."""
        if self._record_id and isinstance(record, dict):
            value = read_dotted(record, self._record_id)
            if value is not None:
                return value
        return hashlib.sha256(_value_key(record).encode()).hexdigest()

    def _note_total(self, response: requests.Response) -> None:
        if not self._total_path:
            return
        value = read_dotted(response_json(response), self._total_path)
        if value is None:
            return
        self._reported_total = self._whole_number(value)

    def _whole_number(self, value: t.Any) -> int:
        """Read a total sent as a JSON number or, as Google's int64 fields are, a string."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, (Decimal, float)) and math.isfinite(value) and value == int(value):
            return int(value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
        msg = (
            f"Stream {self._stream_name!r}: the total at {self._total_path!r} on page {self._page_count} is "
            "not a whole number. Point the paginator's total option at the API's row count."
        )
        raise PaginationError(msg)


class CursorPaginator(ProgressPaginator):
    """`has_more` flag plus the last record's id as the next cursor (Stripe style)."""

    value_name = "next cursor"

    def __init__(
        self,
        *,
        stream_name: str,
        records_path: str,
        has_more: str,
        cursor_field: str,
        total: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(
            None, stream_name=stream_name, records_path=records_path, total=total, record_id=cursor_field, logger=logger
        )
        self._has_more_path = has_more
        self._cursor_field = cursor_field

    def has_more(self, response: requests.Response) -> bool:
        """Read the body's 'more pages' flag."""
        return bool(read_dotted(response_json(response), self._has_more_path))

    def continue_if_empty(self, response: requests.Response) -> bool:
        """Go on after a page that gave the stream no record while the body reports more pages.

        singer-sdk otherwise stops there silently. The stream may have skipped every
        record of the page (events of other objects), so `advance` decides.
        """
        return self.has_more(response)

    def advance(self, response: requests.Response) -> None:
        """Raise for a page without records that reports more pages: it gives no cursor, and ending there loses the rest."""
        if self.has_more(response) and not self._records(response):
            msg = (
                f"Stream {self._stream_name!r}: page {self._page_count + 1} has no records but {self._has_more_path!r} "
                "reports more pages, so the rest of the list cannot be requested. The bookmark stays unchanged; "
                "run the stream again, and check the records selector if this repeats."
            )
            raise PaginationError(msg)
        super().advance(response)

    def next_value(self, response: requests.Response, records: list[t.Any]) -> t.Any:
        """Return the last record's cursor field while the body's flag reports more pages."""
        if not self.has_more(response):
            return None

        last = records[-1]
        cursor = read_dotted(last, self._cursor_field) if isinstance(last, dict) else None
        if cursor is None or cursor == "":
            msg = (
                f"Stream {self._stream_name!r}: the last record on page {self._page_count} has no "
                f"{self._cursor_field!r}, but the body reports more pages. Set cursor_field to the "
                "field the API pages by."
            )
            raise PaginationError(msg)
        return cursor


class NextLinkPaginator(ProgressPaginator):
    """The next page's full URL, from a dotted path in the body or from the `Link` header."""

    value_name = "next link"

    def __init__(self, *, source: str, path: str, **common: t.Any) -> None:
        super().__init__(None, **common)
        self._source = source
        self._path = path

    def next_value(self, response: requests.Response, records: list[t.Any]) -> str | None:
        """Return the next URL made absolute, only when it stays on the host that served this page.

        The request carries credentials, so a link to another host is an error.
        """
        link = self._read_link(response)
        if link is None or link == "":
            return None

        absolute = urljoin(response.url, link)
        if urlsplit(absolute)[:2] != urlsplit(response.url)[:2]:
            msg = (
                f"Stream {self._stream_name!r}: the next link on page {self._page_count} points to another "
                "scheme or host than the page it came from. It was not followed, because requests carry credentials."
            )
            raise PaginationError(msg)
        return absolute

    def _read_link(self, response: requests.Response) -> str | None:
        if self._source == "header":
            return response.links.get("next", {}).get("url")

        value = read_dotted(response_json(response), self._path)
        if value is not None and not isinstance(value, str):
            msg = f"Stream {self._stream_name!r}: the next link at {self._path!r} on page {self._page_count} is not a string."
            raise PaginationError(msg)
        return value


class OffsetPaginator(ProgressPaginator):
    """Offset of the next row, advanced by the rows each page returned.

    With a total, the stream ends when the offset reaches it, so a server that
    caps the page size below `page_size` still reads every row. Without a total,
    a page shorter than `page_size` ends the stream.
    """

    value_name = "next offset"

    def __init__(self, *, page_size: int, **common: t.Any) -> None:
        super().__init__(0, **common)
        self._page_size = page_size

    def next_value(self, response: requests.Response, records: list[t.Any]) -> int | None:
        """Return the offset after this page, or None when the total or a short page marks the end."""
        offset = int(self._value) + len(records)
        if self._reported_total is not None:
            return offset if offset < self._reported_total else None
        return offset if len(records) >= self._page_size else None


class PageNumberPaginator(ProgressPaginator):
    """Page numbers against a total: ends when pages * size reaches the total or a page is short.

    Magento returns the last page again for a page past the end. These rules
    stop before asking for such a page. One can still arrive when the total
    shrinks during the read: if the repeated page lies past the end of the
    latest total, the stream ends cleanly without counting it. Any other
    repeated page (no total, or a total saying more rows exist) raises.
    """

    value_name = "next page number"

    def __init__(self, *, page_size: int, first_page: int, **common: t.Any) -> None:
        super().__init__(first_page, **common)
        self._page_size = page_size
        self._first_page = first_page

    def next_value(self, response: requests.Response, records: list[t.Any]) -> int | None:
        """Return the next page number, or None at the end."""
        if len(records) < self._page_size:
            return None

        pages_read = int(self._value) - self._first_page + 1
        total = self._reported_total
        if total is not None and pages_read * self._page_size >= total:
            return None
        return int(self._value) + 1

    def _on_repeated_page(self, count: int) -> None:
        pages_before = int(self._value) - self._first_page
        total = self._reported_total
        if total is None or pages_before * self._page_size < total:
            raise self._repeated_page_error(count)

        # NOTE: singer-sdk yields a page's records before calling `advance`, so the
        # repeated rows were already emitted, so the stream must drop them by primary key.
        self._logger.warning(
            "Stream %r: page %d lies past the end of the reported total of %d and repeated the page before it. "
            "The stream ends here, and the repeated %d row(s) are not counted.",
            self._stream_name,
            self._page_count,
            total,
            count,
        )
        self._finished = True


class PageTokenPaginator(ProgressPaginator):
    """An opaque token read from the body and sent back for the next page."""

    value_name = "next page token"

    def __init__(self, *, token_path: str, **common: t.Any) -> None:
        super().__init__(None, **common)
        self._token_path = token_path

    def next_value(self, response: requests.Response, records: list[t.Any]) -> t.Any:
        """Return the body's next page token. An absent or empty token ends the stream."""
        return read_dotted(response_json(response), self._token_path)


class SingleRequestPaginator(ProgressPaginator):
    """One request and no further pages."""

    def __init__(self, **common: t.Any) -> None:
        super().__init__(None, **common)

    def next_value(self, response: requests.Response, records: list[t.Any]) -> None:
        """Return None: there is never a next page."""
        return None


class BatchesPaginator(SingleRequestPaginator):
    """One response whose body is a JSON array of batches (Google Ads `searchStream` over REST)."""

    def next_value(self, response: requests.Response, records: list[t.Any]) -> None:
        """Check the body is an array of batches, then end."""
        if not isinstance(response_json(response), list):
            msg = (
                f"Stream {self._stream_name!r}: the response is not a JSON array of batches. The batches "
                "paginator fits streaming endpoints such as Google Ads searchStream."
            )
            raise PaginationError(msg)
        return None


def _common(spec: PaginatorSpec, stream_name: str, records_path: str, logger: logging.Logger | None) -> dict[str, t.Any]:
    properties = PAGINATOR_SCHEMAS[spec.type]["properties"]
    common: dict[str, t.Any] = {"stream_name": stream_name, "records_path": records_path, "logger": logger}
    for name in ("total", "record_id"):
        if name in properties:
            common[name] = paginator_option(spec, name)
    return common


def _build_cursor(spec: PaginatorSpec, common: dict[str, t.Any]) -> ProgressPaginator:
    return CursorPaginator(
        has_more=paginator_option(spec, "has_more"),
        cursor_field=paginator_option(spec, "cursor_field"),
        **common,
    )


def _build_next_link(spec: PaginatorSpec, common: dict[str, t.Any]) -> ProgressPaginator:
    return NextLinkPaginator(source=paginator_option(spec, "source"), path=paginator_option(spec, "path"), **common)


def _build_offset(spec: PaginatorSpec, common: dict[str, t.Any]) -> ProgressPaginator:
    return OffsetPaginator(page_size=int(paginator_option(spec, "page_size")), **common)


def _build_page_number(spec: PaginatorSpec, common: dict[str, t.Any]) -> ProgressPaginator:
    return PageNumberPaginator(
        page_size=int(paginator_option(spec, "page_size")),
        first_page=int(paginator_option(spec, "first_page")),
        **common,
    )


def _build_page_token(spec: PaginatorSpec, common: dict[str, t.Any]) -> ProgressPaginator:
    return PageTokenPaginator(token_path=paginator_option(spec, "token_path"), **common)


def _build_batches(spec: PaginatorSpec, common: dict[str, t.Any]) -> ProgressPaginator:
    return BatchesPaginator(**common)


def _build_single_page(spec: PaginatorSpec, common: dict[str, t.Any]) -> ProgressPaginator:
    return SingleRequestPaginator(**common)


_BUILDERS: dict[str, t.Callable[[PaginatorSpec, dict[str, t.Any]], ProgressPaginator]] = {
    "cursor": _build_cursor,
    "next_link": _build_next_link,
    "offset": _build_offset,
    "page_number": _build_page_number,
    "page_token": _build_page_token,
    "batches": _build_batches,
    "single_page": _build_single_page,
}


def build_paginator(
    spec: PaginatorSpec,
    *,
    stream_name: str,
    records_path: str,
    logger: logging.Logger | None = None,
) -> ProgressPaginator:
    """Create a fresh paginator for one partition of a stream."""
    builder = _BUILDERS.get(spec.type)
    if builder is None:
        allowed = ", ".join(_BUILDERS)
        msg = f"Stream {stream_name!r}: paginator type {spec.type!r} is not one of the allowed values: {allowed}"
        raise ValueError(msg)
    return builder(spec, _common(spec, stream_name, records_path, logger))


def cursor_param(spec: PaginatorSpec) -> str | None:
    """Return the query parameter that carries the cursor, or None for other paginator kinds."""
    if spec.type == "cursor":
        return paginator_option(spec, "cursor_param")
    return None


RequestParts = tuple[str, dict[str, t.Any], dict[str, t.Any] | None]


def apply_page(
    spec: PaginatorSpec,
    page_value: t.Any,
    url: str,
    params: dict[str, t.Any],
    body: dict[str, t.Any] | None,
) -> RequestParts:
    """Return the URL, query params and JSON body of the request for `page_value`.

    `page_value` is the paginator's `current_value`. The inputs are not changed.
    """
    params = dict(params)
    body = dict(body) if body is not None else None
    shaper = _SHAPERS.get(spec.type)
    if shaper is None:
        return url, params, body
    return shaper(spec, page_value, url, params, body)


def _place(
    spec: PaginatorSpec,
    values: dict[str, t.Any],
    url: str,
    params: dict[str, t.Any],
    body: dict[str, t.Any] | None,
) -> RequestParts:
    if paginator_option(spec, "in") == "body":
        return url, params, {**(body or {}), **values}
    return url, {**params, **values}, body


def _shape_cursor(spec: PaginatorSpec, page_value: t.Any, url: str, params: dict[str, t.Any], body: t.Any) -> RequestParts:
    if page_value is not None:
        params[paginator_option(spec, "cursor_param")] = page_value
    return url, params, body


def _shape_next_link(spec: PaginatorSpec, page_value: t.Any, url: str, params: dict[str, t.Any], body: t.Any) -> RequestParts:
    if page_value is None:
        return url, params, body
    return str(page_value), {}, body


def _shape_offset(spec: PaginatorSpec, page_value: t.Any, url: str, params: dict[str, t.Any], body: t.Any) -> RequestParts:
    values = {
        paginator_option(spec, "limit_param"): int(paginator_option(spec, "page_size")),
        paginator_option(spec, "offset_param"): 0 if page_value is None else page_value,
    }
    return _place(spec, values, url, params, body)


def _shape_page_number(spec: PaginatorSpec, page_value: t.Any, url: str, params: dict[str, t.Any], body: t.Any) -> RequestParts:
    page = int(paginator_option(spec, "first_page")) if page_value is None else page_value
    params[paginator_option(spec, "page_param")] = page
    params[paginator_option(spec, "size_param")] = int(paginator_option(spec, "page_size"))
    return url, params, body


def _shape_page_token(spec: PaginatorSpec, page_value: t.Any, url: str, params: dict[str, t.Any], body: t.Any) -> RequestParts:
    if page_value is None or page_value == "":
        return url, params, body
    return _place(spec, {paginator_option(spec, "token_param"): page_value}, url, params, body)


_SHAPERS: dict[str, t.Callable[..., RequestParts]] = {
    "cursor": _shape_cursor,
    "next_link": _shape_next_link,
    "offset": _shape_offset,
    "page_number": _shape_page_number,
    "page_token": _shape_page_token,
}


def _value_key(value: t.Any) -> str:
    """Return a stable text form of a JSON value, for set membership and digests."""
    return simplejson.dumps(value, sort_keys=True, default=str)
