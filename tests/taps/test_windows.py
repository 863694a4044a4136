"""Incremental windows: slicing, lookback, retention horizon and request bounds."""

from __future__ import annotations

import copy
import json
import typing as t
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from taps.engine.declaration import parse_declaration
from taps.engine.tap import build_tap_class
from taps.engine.windows import ExpiredBookmarkError, Window, WindowRules, format_bound, plan_windows
from tests.singer_run import records_of, run_tap
from tests.taps.test_engine import BASE, CONFIG, DECLARATION

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_no_bookmark_reads_from_start() -> None:
    windows = plan_windows("s", bookmark=None, start=NOW - 3 * DAY, now=NOW, rules=WindowRules())

    assert windows == [Window(NOW - 3 * DAY, None)]


def test_window_days_slice_oldest_first() -> None:
    windows = plan_windows("s", bookmark=None, start=NOW - 5 * DAY, now=NOW, rules=WindowRules(window_days=2))

    assert windows == [
        Window(NOW - 5 * DAY, NOW - 3 * DAY),
        Window(NOW - 3 * DAY, NOW - DAY),
        Window(NOW - DAY, NOW),
    ]


def test_lookback_moves_bookmark_back() -> None:
    windows = plan_windows("s", bookmark=NOW - DAY, start=None, now=NOW, rules=WindowRules(lookback_days=3))

    assert windows == [Window(NOW - 4 * DAY, None)]


def test_lookback_stops_at_retention_horizon() -> None:
    rules = WindowRules(lookback_days=30, retention_days=10)

    windows = plan_windows("s", bookmark=NOW - 2 * DAY, start=None, now=NOW, rules=rules)

    assert windows == [Window(NOW - 10 * DAY, None)]


def test_expired_bookmark_fails_by_default() -> None:
    with pytest.raises(ExpiredBookmarkError, match="older than the 30 days the API keeps"):
        plan_windows("events", bookmark=NOW - 40 * DAY, start=None, now=NOW, rules=WindowRules(retention_days=30))


def test_expired_bookmark_full_refresh_warns(caplog: pytest.LogCaptureFixture) -> None:
    rules = WindowRules(retention_days=30, on_expired_bookmark="full_refresh")

    windows = plan_windows("events", bookmark=NOW - 40 * DAY, start=None, now=NOW, rules=rules)

    assert windows == [Window(NOW - 30 * DAY, None)]
    assert "Stream events: the bookmark" in caplog.text
    assert "reading again from" in caplog.text


@pytest.mark.parametrize(
    ("request_format", "zone", "expected"),
    [
        pytest.param("epoch_seconds", None, 1_796_385_600, id="epoch"),
        pytest.param("iso8601", None, "2026-12-04T12:00:00+00:00", id="iso"),
        pytest.param("date", None, "2026-12-04", id="date-utc"),
        pytest.param("date", "Pacific/Kiritimati", "2026-12-05", id="date-ahead-of-utc"),
        pytest.param("date", "America/Los_Angeles", "2026-12-04", id="date-behind-utc"),
    ],
)
def test_format_bound(request_format: str, zone: str | None, expected: t.Any) -> None:
    assert format_bound(NOW, request_format, zone) == expected


def windowed_tap() -> type:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"]["orders"]["paginator"] = {"type": "single_page"}
    declaration["streams"]["orders"]["replication"].update(request_end_param="created[lt]", window_days=7)
    return build_tap_class(parse_declaration(declaration))


def test_stream_requests_each_window() -> None:
    start = datetime.now(UTC) - timedelta(days=20)
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"data": [{"id": "a", "created": int(start.timestamp()) + 10}]})
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"data": []})
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"data": [{"id": "b", "created": int(start.timestamp()) + 900_000}]})
        messages = run_tap(windowed_tap(), {**CONFIG, "start_date": start.isoformat()})
        queries = [parse_qs(urlparse(call.request.url).query) for call in mock.calls]

    assert len(queries) == 3
    assert queries[0]["created[gte]"] == [str(int(start.timestamp()))]
    assert queries[0]["created[lt]"] == queries[1]["created[gte]"]
    assert int(queries[1]["created[lt]"][0]) - int(queries[1]["created[gte]"][0]) == 7 * 86_400
    assert "created[lt]" in queries[2]
    assert [r["id"] for r in records_of(messages, "orders")] == ["a", "b"]


def test_stream_fails_on_expired_bookmark() -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"]["orders"]["replication"]["retention_days"] = 30
    tap_class = build_tap_class(parse_declaration(declaration))
    old = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    state = {"bookmarks": {"orders": {"replication_key": "created", "replication_key_value": old}}}

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(ExpiredBookmarkError, match="Stream 'orders'"):
            run_tap(tap_class, CONFIG, state=state)
        assert len(mock.calls) == 0


def test_range_param_carries_both_bounds() -> None:
    declaration = copy.deepcopy(DECLARATION)
    orders = declaration["streams"]["orders"]
    orders["paginator"] = {"type": "single_page"}
    orders["fields"]["created"] = {"type": "string", "format": "date-time", "transform": "local_timestamp", "pii": "none"}
    orders["replication"] = {
        "key": "created",
        "request_range": {"param": "time_range", "start_key": "since", "end_key": "until"},
        "request_format": "date",
        "timezone": "Pacific/Auckland",
        "window_days": 10,
    }
    tap_class = build_tap_class(parse_declaration(declaration))
    start = datetime(2026, 11, 1, 11, 0, tzinfo=UTC)  # the start setting names its day as written
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"data": []})
        run_tap(tap_class, {**CONFIG, "start_date": start.isoformat()})
        ranges = [json.loads(parse_qs(urlparse(call.request.url).query)["time_range"][0]) for call in mock.calls]

    assert ranges[0] == {"since": "2026-11-01", "until": "2026-11-10"}
    assert ranges[1]["since"] == "2026-11-11"
    assert len(ranges) == len({r["since"] for r in ranges})
