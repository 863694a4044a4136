"""Paginators driven by singer-sdk's own `request_records` against pages served by `responses`."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import typing as t
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from jsonschema import Draft202012Validator
from singer_sdk import RESTStream, Tap
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.streams.rest import HTTPRequest, PageContext

from taps.engine.declaration import PaginatorSpec
from taps.engine.pagination import (
    PAGINATOR_SCHEMAS,
    PaginationError,
    ProgressPaginator,
    apply_page,
    build_paginator,
)
from taps.engine.responses import response_json

BASE = "http://api.test"
PATH = "/v1/items"
URL = BASE + PATH
STATIC_PARAMS = {"sort": "id"}
GAQL = "SELECT campaign.id, metrics.clicks FROM campaign"
MAX_RECORDS = 100  # far above any case, so a paginator that never stops fails instead of hanging

MAGENTO = {
    "type": "page_number",
    "page_param": "searchCriteria[currentPage]",
    "size_param": "searchCriteria[pageSize]",
    "page_size": 2,
    "record_id": "entity_id",
}


class PagingTap(Tap):
    """A tap with no streams of its own, used only to host `PagedStream`."""

    name = "tap-paging-test"
    config_jsonschema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}

    def discover_streams(self) -> list[t.Any]:
        return []


class PagedStream(RESTStream[t.Any]):
    """A stream wired the way `DeclarativeStream` should call the pagination module."""

    url_base = BASE
    payload_as_json = True

    def __init__(self, tap: Tap, *, spec: PaginatorSpec, records: str, method: str, body: dict[str, t.Any] | None) -> None:
        super().__init__(tap=tap, name="items", schema={"type": "object", "properties": {}}, path=PATH)
        self.http_method = method
        self.spec = spec
        self.records = records
        self.body = body
        self.paginator: ProgressPaginator | None = None

    def get_new_paginator(self) -> ProgressPaginator:
        self.paginator = build_paginator(self.spec, stream_name=self.name, records_path=self.records)
        return self.paginator

    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict[str, t.Any]:
        return dict(STATIC_PARAMS)

    def prepare_request_payload(self, context: t.Any, next_page_token: t.Any) -> dict[str, t.Any] | None:
        return copy.deepcopy(self.body)

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        url, params, data = apply_page(self.spec, page.next_page_token, request.url, request.params, request.data)
        return dataclasses.replace(request, url=url, params=params, data=data)

    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        yield from extract_jsonpath(self.records, response_json(response))


@dataclasses.dataclass
class Page:
    """One served response: a JSON body and extra headers."""

    body: t.Any
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Case:
    """One paging scenario: the paginator, the pages served and what must come of it."""

    paginator: dict[str, t.Any]
    records: str
    pages: list[Page] | t.Callable[..., t.Any]
    ids: list[t.Any]
    sent: list[dict[str, t.Any]]
    method: str = "GET"
    body: dict[str, t.Any] | None = None
    error: str | None = None
    id_path: str = "id"
    rows_read: int | None = None


def rows(*names: str) -> list[dict[str, str]]:
    return [{"id": f"rec-{name}", "name": f"name-{name}"} for name in names]


def ids(*names: str) -> list[str]:
    return [f"rec-{name}" for name in names]


def orders(*entity_ids: int) -> list[dict[str, t.Any]]:
    return [{"entity_id": entity_id, "increment_id": f"00000{entity_id}"} for entity_id in entity_ids]


def magento_server(count: int, *, report_total: bool = True) -> t.Callable[..., t.Any]:
    """Serve `count` orders by page like Magento, which returns the last page again for a page past the end."""
    items = orders(*range(1, count + 1))

    def serve(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlparse(request.url).query)
        size = int(query["searchCriteria[pageSize]"][0])
        last_page = max(1, -(-count // size))
        page = min(int(query["searchCriteria[currentPage]"][0]), last_page)
        body: dict[str, t.Any] = {"items": items[(page - 1) * size : page * size], "search_criteria": {}}
        if report_total:
            body["total_count"] = count
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    return serve


def next_url(query: str) -> str:
    return f"{URL}?{query}"


CASES = [
    pytest.param(
        Case(
            paginator={"type": "cursor"},
            records="$.data[*]",
            pages=[Page({"has_more": True, "data": rows("a", "b")}), Page({"has_more": False, "data": rows("c")})],
            ids=ids("a", "b", "c"),
            sent=[{"starting_after": None, "sort": "id"}, {"starting_after": "rec-b", "sort": "id"}],
        ),
        id="cursor-follows-has-more",
    ),
    pytest.param(
        Case(
            paginator={"type": "cursor"},
            records="$.data[*]",
            pages=[Page({"has_more": True, "data": rows("a", "b")}), Page({"has_more": True, "data": rows("c", "b")})],
            ids=ids("a", "b", "c", "b"),
            sent=[{"starting_after": None}, {"starting_after": "rec-b"}],
            error=r"page 2 returned a next cursor that was already used",
        ),
        id="cursor-repeated-cursor",
    ),
    pytest.param(
        Case(
            paginator={"type": "cursor"},
            records="$.data[*]",
            pages=[Page({"has_more": True, "data": rows("a", "b")}), Page({"has_more": True, "data": rows("a", "b")})],
            ids=ids("a", "b", "a", "b"),
            sent=[{"starting_after": None}, {"starting_after": "rec-b"}],
            error=r"page 2 returned the same 2 record id\(s\) as the page before it",
        ),
        id="cursor-repeated-page",
    ),
    pytest.param(
        Case(
            paginator={"type": "cursor"},
            records="$.data[*]",
            pages=[Page({"has_more": True, "data": rows("a")}), Page({"has_more": True, "data": []})],
            ids=ids("a"),
            sent=[{"starting_after": None}, {"starting_after": "rec-a"}],
            error=r"page 2 has no records but 'has_more' reports more pages",
        ),
        id="cursor-empty-page-with-more-fails",
    ),
    pytest.param(
        Case(
            paginator={"type": "next_link"},
            records="$.data[*]",
            pages=[
                Page({"data": rows("a", "b"), "paging": {"next": next_url("after=cur-1&limit=2")}}),
                Page({"data": rows("c"), "paging": {"cursors": {"before": "cur-0", "after": "cur-2"}}}),
            ],
            ids=ids("a", "b", "c"),
            sent=[{"url": f"{URL}?sort=id"}, {"url": next_url("after=cur-1&limit=2"), "sort": None}],
        ),
        id="next-link-in-body",
    ),
    pytest.param(
        Case(
            paginator={"type": "next_link"},
            records="$.data[*]",
            pages=[
                Page({"data": rows("a"), "paging": {"next": next_url("after=cur-1")}}),
                Page({"data": [], "paging": {"next": next_url("after=cur-2")}}),
            ],
            ids=ids("a"),
            sent=[{"after": None}, {"after": "cur-1"}],
        ),
        id="next-link-on-empty-page",
    ),
    pytest.param(
        Case(
            paginator={"type": "next_link"},
            records="$.data[*]",
            pages=[
                Page({"data": rows("a"), "paging": {"next": next_url("after=cur-1")}}),
                Page({"data": rows("b"), "paging": {"next": next_url("after=cur-1")}}),
            ],
            ids=ids("a", "b"),
            sent=[{"after": None}, {"after": "cur-1"}],
            error=r"page 2 returned a next link that was already used",
        ),
        id="next-link-repeated-url",
    ),
    pytest.param(
        Case(
            paginator={"type": "next_link", "source": "header"},
            records="$[*]",
            pages=[
                Page(rows("a"), {"Link": f'<{next_url("page=2")}>; rel="next"'}),
                Page(rows("b"), {"Link": f'<{PATH}?page=3>; rel="next", <{PATH}?page=1>; rel="first"'}),
                Page(rows("c")),
            ],
            ids=ids("a", "b", "c"),
            sent=[{"page": None}, {"url": next_url("page=2")}, {"url": next_url("page=3")}],
        ),
        id="next-link-in-header-relative",
    ),
    pytest.param(
        Case(
            paginator={"type": "next_link"},
            records="$.data[*]",
            pages=[Page({"data": rows("a"), "paging": {"next": "http://elsewhere.test/v1/items?after=cur-1"}})],
            ids=ids("a"),
            sent=[{"after": None}],
            error=r"page 1 points to another scheme or host",
        ),
        id="next-link-to-other-host",
    ),
    pytest.param(
        Case(
            paginator={"type": "offset", "page_size": 2, "total": "rowCount"},
            records="$.rows[*]",
            pages=[
                Page({"rows": rows("a", "b"), "rowCount": 5}),
                Page({"rows": rows("c", "d"), "rowCount": 5}),
                Page({"rows": rows("e"), "rowCount": 5}),
            ],
            ids=ids("a", "b", "c", "d", "e"),
            sent=[
                {"offset": "0", "limit": "2", "sort": "id"},
                {"offset": "2", "limit": "2", "sort": "id"},
                {"offset": "4", "limit": "2", "sort": "id"},
            ],
        ),
        id="offset-query-against-total",
    ),
    pytest.param(
        Case(
            paginator={"type": "offset", "page_size": 2, "total": "rowCount", "in": "body"},
            records="$.rows[*]",
            method="POST",
            body={"dateRanges": [{"startDate": "2026-01-01", "endDate": "2026-01-31"}]},
            pages=[Page({"rows": rows("a", "b"), "rowCount": 3}), Page({"rows": rows("c"), "rowCount": 3})],
            ids=ids("a", "b", "c"),
            sent=[
                {"offset": 0, "limit": 2, "dateRanges": [{"startDate": "2026-01-01", "endDate": "2026-01-31"}]},
                {"offset": 2, "limit": 2, "dateRanges": [{"startDate": "2026-01-01", "endDate": "2026-01-31"}]},
            ],
        ),
        id="offset-in-body-for-post",
    ),
    pytest.param(
        Case(
            paginator={"type": "offset", "page_size": 3, "total": "rowCount"},
            records="$.rows[*]",
            pages=[
                Page({"rows": rows("a", "b"), "rowCount": 5}),
                Page({"rows": rows("c", "d"), "rowCount": 5}),
                Page({"rows": rows("e"), "rowCount": 5}),
            ],
            ids=ids("a", "b", "c", "d", "e"),
            sent=[{"offset": "0", "limit": "3"}, {"offset": "2", "limit": "3"}, {"offset": "4", "limit": "3"}],
        ),
        id="offset-server-caps-page-size",
    ),
    pytest.param(
        Case(
            paginator={"type": "offset", "page_size": 2, "total": None},
            records="$.rows[*]",
            pages=[Page({"rows": rows("a", "b")}), Page({"rows": rows("c")})],
            ids=ids("a", "b", "c"),
            sent=[{"offset": "0"}, {"offset": "2"}],
        ),
        id="offset-short-page-without-total",
    ),
    pytest.param(
        Case(
            paginator={"type": "offset", "page_size": 2, "total": "rowCount"},
            records="$.rows[*]",
            pages=[Page({"rows": rows("a", "b"), "rowCount": 6}), Page({"rows": rows("a", "b"), "rowCount": 6})],
            ids=ids("a", "b", "a", "b"),
            sent=[{"offset": "0"}, {"offset": "2"}],
            error=r"page 2 returned the same 2 record\(s\) as the page before it",
        ),
        id="offset-ignored-by-api",
    ),
    pytest.param(
        Case(
            paginator=MAGENTO,
            records="$.items[*]",
            pages=magento_server(5),
            ids=[1, 2, 3, 4, 5],
            id_path="entity_id",
            sent=[
                {"searchCriteria[currentPage]": "1", "searchCriteria[pageSize]": "2", "sort": "id"},
                {"searchCriteria[currentPage]": "2", "searchCriteria[pageSize]": "2", "sort": "id"},
                {"searchCriteria[currentPage]": "3", "searchCriteria[pageSize]": "2", "sort": "id"},
            ],
            rows_read=5,
        ),
        id="magento-page-number-with-total",
    ),
    pytest.param(
        Case(
            paginator=MAGENTO,
            records="$.items[*]",
            pages=magento_server(4),
            ids=[1, 2, 3, 4],
            id_path="entity_id",
            sent=[{"searchCriteria[currentPage]": "1"}, {"searchCriteria[currentPage]": "2"}],
            rows_read=4,
        ),
        id="magento-total-stops-before-past-end",
    ),
    pytest.param(
        Case(
            paginator=MAGENTO,
            records="$.items[*]",
            pages=magento_server(5, report_total=False),
            ids=[1, 2, 3, 4, 5],
            id_path="entity_id",
            sent=[
                {"searchCriteria[currentPage]": "1"},
                {"searchCriteria[currentPage]": "2"},
                {"searchCriteria[currentPage]": "3"},
            ],
            rows_read=5,
        ),
        id="magento-short-page-without-total",
    ),
    pytest.param(
        Case(
            paginator=MAGENTO,
            records="$.items[*]",
            pages=magento_server(4, report_total=False),
            ids=[1, 2, 3, 4, 3, 4],
            id_path="entity_id",
            sent=[
                {"searchCriteria[currentPage]": "1"},
                {"searchCriteria[currentPage]": "2"},
                {"searchCriteria[currentPage]": "3"},
            ],
            error=r"page 3 returned the same 2 record id\(s\) as the page before it",
        ),
        id="magento-past-end-repeats-without-total",
    ),
    pytest.param(
        Case(
            paginator=MAGENTO,
            records="$.items[*]",
            pages=[
                Page({"items": orders(1, 2), "total_count": 6}),
                Page({"items": orders(3, 4), "total_count": 6}),
                Page({"items": orders(3, 4), "total_count": 4}),
            ],
            ids=[1, 2, 3, 4, 3, 4],
            id_path="entity_id",
            sent=[
                {"searchCriteria[currentPage]": "1"},
                {"searchCriteria[currentPage]": "2"},
                {"searchCriteria[currentPage]": "3"},
            ],
            rows_read=4,
        ),
        id="magento-past-end-after-total-shrank",
    ),
    pytest.param(
        Case(
            paginator=MAGENTO,
            records="$.items[*]",
            pages=[Page({"items": orders(1, 2), "total_count": 6}), Page({"items": orders(1, 2), "total_count": 6})],
            ids=[1, 2, 1, 2],
            id_path="entity_id",
            sent=[{"searchCriteria[currentPage]": "1"}, {"searchCriteria[currentPage]": "2"}],
            error=r"page 2 returned the same 2 record id\(s\)",
        ),
        id="magento-repeat-before-total",
    ),
    pytest.param(
        Case(
            paginator={"type": "page_token"},
            records="$.results[*]",
            pages=[
                Page({"results": rows("a", "b"), "nextPageToken": "tok-1"}),
                Page({"results": rows("c"), "nextPageToken": "tok-2"}),
                Page({"results": rows("d")}),
            ],
            ids=ids("a", "b", "c", "d"),
            sent=[{"pageToken": None, "sort": "id"}, {"pageToken": "tok-1", "sort": "id"}, {"pageToken": "tok-2"}],
        ),
        id="page-token-in-query",
    ),
    pytest.param(
        Case(
            paginator={"type": "page_token", "in": "body"},
            records="$.results[*]",
            method="POST",
            body={"query": GAQL},
            pages=[Page({"results": rows("a"), "nextPageToken": "tok-1"}), Page({"results": rows("b")})],
            ids=ids("a", "b"),
            sent=[{"query": GAQL, "pageToken": None}, {"query": GAQL, "pageToken": "tok-1"}],
        ),
        id="page-token-in-body-for-post",
    ),
    pytest.param(
        Case(
            paginator={"type": "page_token"},
            records="$.results[*]",
            pages=[
                Page({"results": rows("a"), "nextPageToken": "tok-1"}),
                Page({"results": rows("b"), "nextPageToken": "tok-1"}),
            ],
            ids=ids("a", "b"),
            sent=[{"pageToken": None}, {"pageToken": "tok-1"}],
            error=r"page 2 returned a next page token that was already used",
        ),
        id="page-token-repeated",
    ),
    pytest.param(
        Case(
            paginator={"type": "page_token"},
            records="$.results[*]",
            pages=[
                Page({"results": rows("a"), "nextPageToken": "tok-1"}),
                Page({"results": [], "nextPageToken": "tok-2"}),
            ],
            ids=ids("a"),
            sent=[{"pageToken": None}, {"pageToken": "tok-1"}],
        ),
        id="page-token-on-empty-page",
    ),
    pytest.param(
        Case(
            paginator={"type": "page_token"},
            records="$.results[*]",
            pages=[Page({"results": rows("a"), "nextPageToken": ""})],
            ids=ids("a"),
            sent=[{"pageToken": None}],
        ),
        id="page-token-empty-string-ends",
    ),
    pytest.param(
        Case(
            paginator={"type": "batches"},
            records="$[*].results[*]",
            method="POST",
            body={"query": GAQL},
            pages=[
                Page(
                    [
                        {"results": rows("a", "b"), "requestId": "req-1"},
                        {"results": rows("c"), "requestId": "req-1"},
                        {"fieldMask": "campaign.id", "requestId": "req-1", "queryResourceConsumption": "12"},
                    ]
                )
            ],
            ids=ids("a", "b", "c"),
            sent=[{"query": GAQL}],
            rows_read=3,
        ),
        id="batches-one-request",
    ),
    pytest.param(
        Case(
            paginator={"type": "batches"},
            records="$.results[*]",
            pages=[Page({"results": rows("a")})],
            ids=ids("a"),
            sent=[{}],
            error=r"the response is not a JSON array of batches",
        ),
        id="batches-body-not-an-array",
    ),
    pytest.param(
        Case(
            paginator={"type": "single_page"},
            records="$.data[*]",
            pages=[Page({"data": rows("a"), "has_more": True, "paging": {"next": next_url("after=cur-1")}})],
            ids=ids("a"),
            sent=[{"sort": "id"}],
        ),
        id="single-page-ignores-next",
    ),
]


def make_stream(case: Case) -> PagedStream:
    spec = PaginatorSpec(type=case.paginator["type"], options={k: v for k, v in case.paginator.items() if k != "type"})
    tap = PagingTap(config={}, parse_env_config=False)
    return PagedStream(tap, spec=spec, records=case.records, method=case.method, body=case.body)


def serve(mock: responses.RequestsMock, case: Case) -> None:
    method = responses.POST if case.method == "POST" else responses.GET
    if callable(case.pages):
        mock.add_callback(method, URL, callback=case.pages)
        return
    for page in case.pages:
        mock.add(method, URL, json=page.body, headers=page.headers)


def sent(call: t.Any) -> dict[str, t.Any]:
    """Return what one request carried: its URL, single-valued query params and JSON body keys."""
    query = {key: values[0] for key, values in parse_qs(urlparse(call.request.url).query).items()}
    body = json.loads(call.request.body) if call.request.body else {}
    return {"url": call.request.url, **query, **body}


def read(case: Case, mock: responses.RequestsMock) -> tuple[PagedStream, list[t.Any], Exception | None]:
    """Run singer-sdk's `request_records` and keep the records yielded before any error."""
    stream = make_stream(case)
    records: list[t.Any] = []
    try:
        for record in stream.request_records(None):
            records.append(record)
            if len(records) > MAX_RECORDS:
                pytest.fail(f"the paginator kept requesting pages after {MAX_RECORDS} records")
    except PaginationError as error:
        return stream, records, error
    return stream, records, None


def string_values(value: t.Any) -> t.Iterator[str]:
    """Yield every string leaf of a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from string_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from string_values(item)


@pytest.mark.parametrize("case", CASES)
def test_paginator_reads_pages(case: Case) -> None:
    with responses.RequestsMock() as mock:
        serve(mock, case)
        stream, records, error = read(case, mock)
        calls = [sent(call) for call in mock.calls]

    assert [record[case.id_path] for record in records] == case.ids
    assert len(calls) == len(case.sent)
    for number, (actual, expected) in enumerate(zip(calls, case.sent, strict=True), start=1):
        assert {key: actual.get(key) for key in expected} == expected, f"request {number}"

    if case.error is None:
        assert error is None
        assert stream.paginator is not None
        if case.rows_read is not None:
            assert stream.paginator.rows_read == case.rows_read
        return

    assert error is not None, "expected a PaginationError"
    message = str(error)
    assert "'items'" in message
    with pytest.raises(PaginationError, match=case.error):
        raise error
    if not callable(case.pages):
        leaked = [value for page in case.pages for value in string_values(page.body) if len(value) >= 4 and value in message]
        assert leaked == []


def test_total_shrinking_past_end_logs_warning(caplog: pytest.LogCaptureFixture) -> None:
    case = next(param.values[0] for param in CASES if param.id == "magento-past-end-after-total-shrank")
    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING, logger="taps.engine.pagination"):
        serve(mock, case)
        stream, _, error = read(case, mock)

    assert error is None
    assert stream.paginator is not None
    stream.paginator.reconcile(strict=True)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        "Stream 'items': page 3 lies past the end of the reported total of 4 and repeated the page before it. "
        "The stream ends here, and the repeated 2 row(s) are not counted."
    ]


TOTAL_CASES = [
    pytest.param({"type": "cursor", "total": "total_count"}, "$.data[*]", [{"has_more": False, "data": rows("a", "b", "c"), "total_count": 5}], id="cursor"),
    pytest.param(
        {"type": "next_link", "total": "summary.total_count"},
        "$.data[*]",
        [{"data": rows("a", "b", "c"), "paging": {}, "summary": {"total_count": 5}}],
        id="next-link",
    ),
    pytest.param(
        {"type": "offset", "page_size": 10, "total": "rowCount"},
        "$.rows[*]",
        [{"rows": rows("a", "b", "c"), "rowCount": 5}, {"rowCount": 5}],
        id="offset-page-ended-early",
    ),
    pytest.param({"type": "page_number", "page_size": 10}, "$.items[*]", [{"items": rows("a", "b", "c"), "total_count": 5}], id="page-number"),
    pytest.param(
        {"type": "page_token", "total": "totalResultsCount"},
        "$.results[*]",
        [{"results": rows("a", "b", "c"), "totalResultsCount": "5"}],
        id="page-token-int64-string",
    ),
    pytest.param({"type": "single_page", "total": "count"}, "$.data[*]", [{"data": rows("a", "b", "c"), "count": 5}], id="single-page"),
]


def total_case(paginator: dict[str, t.Any], records: str, bodies: list[t.Any]) -> Case:
    return Case(paginator=paginator, records=records, pages=[Page(body) for body in bodies], ids=ids("a", "b", "c"), sent=[])


@pytest.mark.parametrize(("paginator", "records", "bodies"), TOTAL_CASES)
def test_total_mismatch_logs_warning(
    paginator: dict[str, t.Any], records: str, bodies: list[t.Any], caplog: pytest.LogCaptureFixture
) -> None:
    case = total_case(paginator, records, bodies)
    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING, logger="taps.engine.pagination"):
        serve(mock, case)
        stream, records_read, error = read(case, mock)
        assert stream.paginator is not None
        stream.paginator.reconcile(strict=False)
        assert len(mock.calls) == len(bodies)

    assert error is None
    assert len(records_read) == 3
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "read 3 row(s)" in warnings[0]
    assert "reported a total of 5" in warnings[0]


@pytest.mark.parametrize(("paginator", "records", "bodies"), TOTAL_CASES)
def test_total_mismatch_strict_raises(paginator: dict[str, t.Any], records: str, bodies: list[t.Any]) -> None:
    case = total_case(paginator, records, bodies)
    with responses.RequestsMock() as mock:
        serve(mock, case)
        stream, _, error = read(case, mock)

    assert error is None
    assert stream.paginator is not None
    with pytest.raises(PaginationError, match=r"'items': read 3 row\(s\) in 1 page\(s\), but the API reported a total of 5"):
        stream.paginator.reconcile(strict=True)


def test_matching_total_stays_quiet(caplog: pytest.LogCaptureFixture) -> None:
    case = next(param.values[0] for param in CASES if param.id == "offset-query-against-total")
    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING, logger="taps.engine.pagination"):
        serve(mock, case)
        stream, _, _ = read(case, mock)
        assert stream.paginator is not None
        stream.paginator.reconcile(strict=True)
        stream.paginator.reconcile(strict=False)

    assert stream.paginator.rows_read == 5
    assert stream.paginator.reported_total == 5
    assert caplog.records == []


@pytest.mark.parametrize("total", ["many", True, 4.5, "-1"], ids=["word", "boolean", "fraction", "negative"])
def test_total_not_a_number_raises(total: t.Any) -> None:
    case = total_case({"type": "page_number", "page_size": 10}, "$.items[*]", [{"items": rows("a"), "total_count": total}])
    with responses.RequestsMock() as mock:
        serve(mock, case)
        _, _, error = read(case, mock)

    assert isinstance(error, PaginationError)
    with pytest.raises(PaginationError, match=r"the total at 'total_count' on page 1 is not a whole number"):
        raise error
    assert str(total) not in str(error)


def response_of(body: t.Any, headers: dict[str, str] | None = None) -> requests.Response:
    """Build a received response by hand, as `advance` gets one."""
    response = requests.Response()
    response.status_code = 200
    response.url = f"{URL}?sort=id"
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    return response


EMPTY_PAGES = [
    pytest.param({"type": "cursor"}, "$.data[*]", {"has_more": False, "data": []}, {}, id="cursor"),
    pytest.param({"type": "next_link"}, "$.data[*]", {"data": [], "paging": {"next": next_url("after=cur-9")}}, {}, id="next-link-body"),
    pytest.param({"type": "next_link", "source": "header"}, "$[*]", [], {"Link": f'<{next_url("page=9")}>; rel="next"'}, id="next-link-header"),
    pytest.param({"type": "offset"}, "$.rows[*]", {"rows": [], "total": 50}, {}, id="offset"),
    pytest.param({"type": "page_number"}, "$.items[*]", {"items": [], "total_count": 50}, {}, id="page-number"),
    pytest.param({"type": "page_token"}, "$.results[*]", {"results": [], "nextPageToken": "tok-9"}, {}, id="page-token"),
    pytest.param({"type": "batches"}, "$[*].results[*]", [{"fieldMask": "campaign.id"}], {}, id="batches"),
    pytest.param({"type": "single_page"}, "$.data[*]", {"data": []}, {}, id="single-page"),
]


@pytest.mark.parametrize(("paginator", "records", "body", "headers"), EMPTY_PAGES)
def test_advance_on_empty_page_finishes(paginator: dict[str, t.Any], records: str, body: t.Any, headers: dict[str, str]) -> None:
    spec = PaginatorSpec(type=paginator["type"], options={k: v for k, v in paginator.items() if k != "type"})
    pager = build_paginator(spec, stream_name="items", records_path=records)

    pager.advance(response_of(body, headers))

    assert pager.finished
    assert pager.rows_read == 0


APPLY_CASES = [
    pytest.param({"type": "cursor"}, None, None, (URL, {"sort": "id"}, None), id="cursor-first"),
    pytest.param({"type": "cursor", "cursor_param": "after"}, "rec-b", None, (URL, {"sort": "id", "after": "rec-b"}, None), id="cursor-next"),
    pytest.param({"type": "next_link"}, None, None, (URL, {"sort": "id"}, None), id="next-link-first"),
    pytest.param({"type": "next_link"}, next_url("after=cur-1"), None, (next_url("after=cur-1"), {}, None), id="next-link-replaces-query"),
    pytest.param({"type": "offset"}, None, None, (URL, {"sort": "id", "limit": 100, "offset": 0}, None), id="offset-defaults"),
    pytest.param(
        {"type": "offset", "in": "body", "limit_param": "size", "offset_param": "from", "page_size": 5},
        10,
        None,
        (URL, {"sort": "id"}, {"size": 5, "from": 10}),
        id="offset-body-without-body",
    ),
    pytest.param(
        MAGENTO,
        None,
        None,
        (URL, {"sort": "id", "searchCriteria[currentPage]": 1, "searchCriteria[pageSize]": 2}, None),
        id="page-number-first",
    ),
    pytest.param({"type": "page_number", "first_page": 0}, 3, None, (URL, {"sort": "id", "page": 3, "page_size": 100}, None), id="page-number-next"),
    pytest.param({"type": "page_token", "in": "body"}, None, {"query": GAQL}, (URL, {"sort": "id"}, {"query": GAQL}), id="page-token-first"),
    pytest.param(
        {"type": "page_token", "in": "body"},
        "tok-1",
        {"query": GAQL},
        (URL, {"sort": "id"}, {"query": GAQL, "pageToken": "tok-1"}),
        id="page-token-body",
    ),
    pytest.param({"type": "page_token"}, "tok-1", None, (URL, {"sort": "id", "pageToken": "tok-1"}, None), id="page-token-query"),
    pytest.param({"type": "batches"}, None, {"query": GAQL}, (URL, {"sort": "id"}, {"query": GAQL}), id="batches"),
    pytest.param({"type": "single_page"}, None, None, (URL, {"sort": "id"}, None), id="single-page"),
]


@pytest.mark.parametrize(("paginator", "page_value", "body", "expected"), APPLY_CASES)
def test_apply_page_shapes_request(paginator: dict[str, t.Any], page_value: t.Any, body: t.Any, expected: tuple[t.Any, ...]) -> None:
    spec = PaginatorSpec(type=paginator["type"], options={k: v for k, v in paginator.items() if k != "type"})
    params = dict(STATIC_PARAMS)
    body_before = copy.deepcopy(body)

    shaped = apply_page(spec, page_value, URL, params, body)

    assert shaped == expected
    assert params == STATIC_PARAMS
    assert body == body_before


def test_unknown_type_lists_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"paginator type 'scroll' is not one of the allowed values: cursor, next_link, offset"):
        build_paginator(PaginatorSpec(type="scroll"), stream_name="items", records_path="$[*]")


def test_schemas_cover_every_type() -> None:
    for kind, schema in PAGINATOR_SCHEMAS.items():
        paginator = build_paginator(PaginatorSpec(type=kind), stream_name="items", records_path="$[*]")
        assert isinstance(paginator, ProgressPaginator)
        assert schema["properties"]["type"]["const"] == kind
        assert schema["additionalProperties"] is False
        for name, option in schema["properties"].items():
            assert "description" in option, f"{kind}.{name}"
            if name != "type":
                assert "default" in option, f"{kind}.{name}"


def test_schemas_validate_declarations() -> None:
    validator = Draft202012Validator({"oneOf": list(PAGINATOR_SCHEMAS.values())})

    assert list(validator.iter_errors(MAGENTO)) == []
    assert list(validator.iter_errors({"type": "offset", "in": "body", "total": None})) == []

    chosen = Draft202012Validator(PAGINATOR_SCHEMAS["offset"])
    messages = [error.message for error in chosen.iter_errors({"type": "offset", "in": "header", "page_size": 0, "limt": 5})]
    assert "'header' is not one of ['query', 'body']" in messages
    assert "0 is less than the minimum of 1" in messages
    assert any("'limt' was unexpected" in message for message in messages)


def test_meta_insights_last_page_has_no_next(fixtures_dir: Path) -> None:
    insights = json.loads((fixtures_dir / "facebook" / "airbyte_ads_insights_action_product_id.json").read_text())
    assert "next" not in insights["paging"]
    link = next_url("after=" + insights["paging"]["cursors"]["before"] + "&limit=1")
    first = {"data": insights["data"][:1], "paging": {"cursors": insights["paging"]["cursors"], "next": link}}
    case = Case(
        paginator={"type": "next_link"},
        records="$.data[*]",
        pages=[Page(first), Page(insights)],
        ids=[],
        sent=[],
    )

    with responses.RequestsMock() as mock:
        serve(mock, case)
        stream, records, error = read(case, mock)
        urls = [call.request.url for call in mock.calls]

    assert error is None
    assert urls == [f"{URL}?sort=id", link]
    assert len(records) == 1 + len(insights["data"])
    assert [record["ad_id"] for record in records[1:]] == [row["ad_id"] for row in insights["data"]]
    assert stream.paginator is not None
    assert stream.paginator.finished


def test_google_ads_search_stream_batches(fixtures_dir: Path) -> None:
    batches = json.loads((fixtures_dir / "google_ads" / "searchstream_rest_customer_daily_clicks_cost.json").read_text())
    expected = [result for batch in batches for result in batch.get("results", [])]
    assert expected
    case = Case(
        paginator={"type": "batches"},
        records="$[*].results[*]",
        method="POST",
        body={"query": GAQL},
        pages=[Page(batches)],
        ids=[],
        sent=[],
    )

    with responses.RequestsMock() as mock:
        serve(mock, case)
        stream, records, error = read(case, mock)
        bodies = [json.loads(call.request.body) for call in mock.calls]

    assert error is None
    assert bodies == [{"query": GAQL}]
    assert records == expected
    assert stream.paginator is not None
    assert stream.paginator.rows_read == len(expected)
    assert stream.paginator.reported_total is None


def test_page_cycle_is_caught() -> None:
    """Pages A, B, A with fresh next links would loop forever; the third page raises."""
    spec = PaginatorSpec(type="next_link", options={})
    pager = build_paginator(spec, stream_name="insights", records_path="$.data[*]")
    page_a = {"data": [{"id": 1}, {"id": 2}], "paging": {"next": next_url("after=a1")}}
    page_b = {"data": [{"id": 3}], "paging": {"next": next_url("after=b1")}}
    page_a_again = {"data": [{"id": 1}, {"id": 2}], "paging": {"next": next_url("after=a2")}}

    pager.advance(response_of(page_a))
    pager.advance(response_of(page_b))
    with pytest.raises(PaginationError, match="page 3 returned the same 2 record\(s\) as a page already read"):
        pager.advance(response_of(page_a_again))
