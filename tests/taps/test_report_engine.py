"""Engine features of daily ad reports: per-account days, context and window templates,
defaults for omitted values, typed list items, id normalisation and page-size halving."""

from __future__ import annotations

import copy
import json
import logging
import typing as t
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from singer_sdk.exceptions import ConfigValidationError

from taps.engine.declaration import DeclarationError, parse_declaration
from taps.engine.stream import DeclarativeStream
from taps.engine.tap import StreamsStoppedError, build_tap_class
from tests.singer_run import final_state, records_of, run_tap

BASE = "http://reports.test"
CONFIG = {"api_key": "key-for-report-tests", "api_url": BASE, "account_ids": ["act_11", "act_22"]}

DECLARATION: dict[str, t.Any] = {
    "name": "adsy",
    "api": {"base_url": "{config.api_url}"},
    "auth": {"type": "bearer", "token": "{config.api_key}"},
    "settings": [
        {"name": "api_key", "type": "string", "required": True, "secret": True},
        {"name": "api_url", "type": "string", "default": BASE},
        {"name": "account_ids", "type": "array", "required": True},
        {"name": "start_date", "type": "string", "format": "date-time"},
        {"name": "lookback", "type": "integer", "default": 3},
        {"name": "page_size", "type": "integer", "default": 100},
    ],
    "errors": {"reduce_page": {"when": [{"status": 500, "body": [{"path": "error.code", "values": [1]}]}], "param": "limit"}},
    "streams": {
        "accounts": {
            "path": "/act_{account_id}",
            "partitions": {"setting": "account_ids", "key": "account_id", "remove": ["act_"], "pattern": "^[0-9]+$"},
            "records": "$",
            "primary_key": ["id"],
            "fields": {"id": {"type": "string", "pii": "none"}, "zone": {"type": "string", "pii": "none"}},
        },
        "daily": {
            "path": "/act_{account_id}/report",
            "method": "POST",
            "parent": {"stream": "accounts", "context": {"account_id": "id", "time_zone": "zone"}, "state_keys": ["account_id"]},
            "body": {"query": "FROM stats WHERE day BETWEEN '{window.start}' AND '{window.end}' AND account = {context.account_id}"},
            "params": {"limit": "{config.page_size}"},
            "records": "$.rows[*]",
            "replication": {
                "key": "day",
                "request_format": "date",
                "timezone": "{context.time_zone}",
                "lookback_days": "{config.lookback}",
                "window_days": 10,
                "history_days": 5,
            },
            "primary_key": ["account_id", "day", "country"],
            "fields": {
                "account_id": {"type": "string", "pii": "none"},
                "day": {"type": "string", "format": "date", "pii": "none"},
                "country": {"type": "string", "pii": "none"},
                "clicks": {"type": "integer", "transform": "numeric_string", "default": 0, "pii": "none"},
                "actions": {
                    "type": "array",
                    "pii": "none",
                    "items": {"action_type": {"type": "string"}, "7d_click": {"type": "number", "transform": "numeric_string"}},
                },
            },
        },
    },
}

# 11:30 UTC on 4 December is 00:30 on 5 December in Auckland and 06:30 on 4 December in New York.
NOW = datetime(2026, 12, 4, 11, 30, tzinfo=UTC)
ZONES = {"11": "Pacific/Auckland", "22": "America/New_York"}


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DeclarativeStream, "clock", staticmethod(lambda: NOW))
    monkeypatch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))


def tap_class(declaration: dict[str, t.Any] = DECLARATION) -> type:
    return build_tap_class(parse_declaration(declaration))


class FakeReportAPI:
    """Serves accounts and report rows; records each report request's account and day range."""

    def __init__(self, rows: dict[str, list[dict[str, t.Any]]] | None = None, max_limit: int | None = None) -> None:
        self.rows = rows or {}
        self.max_limit = max_limit
        self.reports: list[tuple[str, str, str, int]] = []

    def install(self, mock: responses.RequestsMock) -> None:
        for account, zone in ZONES.items():
            mock.add(responses.GET, f"{BASE}/act_{account}", json={"id": account, "zone": zone})
            mock.add_callback(responses.POST, f"{BASE}/act_{account}/report", callback=self.report)

    def report(self, request: t.Any) -> tuple[int, dict[str, str], str]:
        query = json.loads(request.body)["query"]
        account = query.rsplit("= ", 1)[1]
        since, until = query.split("BETWEEN '")[1].split("' AND account")[0].split("' AND '")
        until = until.rstrip("'")
        limit = int(parse_qs(urlparse(request.url).query)["limit"][0])
        self.reports.append((account, since, until, limit))
        if self.max_limit is not None and limit > self.max_limit:
            return 500, {}, json.dumps({"error": {"code": 1, "message": "Please reduce the amount of data"}})
        return 200, {}, json.dumps({"rows": self.rows.get(account, [])})


def run_reports(api: FakeReportAPI, declaration: dict[str, t.Any] = DECLARATION, state: dict[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        api.install(mock)
        return run_tap(tap_class(declaration), CONFIG, state=state)


def test_days_are_each_accounts_own() -> None:
    api = FakeReportAPI()

    run_reports(api)

    assert ("11", "2026-12-01", "2026-12-05", 100) in api.reports  # Auckland: today is 5 December
    assert ("22", "2026-11-30", "2026-12-04", 100) in api.reports  # New York: today is 4 December


def test_bookmark_per_account_and_lookback() -> None:
    api = FakeReportAPI(
        rows={
            "11": [{"account_id": "11", "day": "2026-12-05", "country": "NZ", "clicks": "4"}],
            "22": [{"account_id": "22", "day": "2026-12-04", "country": "US", "clicks": "2"}],
        }
    )
    messages = run_reports(api)
    state = final_state(messages)

    second = FakeReportAPI()
    run_reports(second, state=state)

    # Each account restarts from its own bookmark minus the 3 lookback days.
    assert ("11", "2026-12-02", "2026-12-05", 100) in second.reports
    assert ("22", "2026-12-01", "2026-12-04", 100) in second.reports
    partitions = state["bookmarks"]["daily"]["partitions"]
    assert sorted(p["context"]["account_id"] for p in partitions) == ["11", "22"]
    assert all(set(p["context"]) == {"account_id"} for p in partitions)


def test_defaults_and_typed_list_items() -> None:
    row = {"account_id": "11", "day": "2026-12-05", "country": "NZ", "actions": [{"action_type": "purchase", "7d_click": "2.5", "28d_view": "9"}]}
    messages = run_reports(FakeReportAPI(rows={"11": [row]}))

    [record] = records_of(messages, "daily")
    assert record["clicks"] == 0
    assert record["actions"] == [{"action_type": "purchase", "7d_click": 2.5}]


def test_breakdown_rows_stay_apart() -> None:
    rows = [
        {"account_id": "11", "day": "2026-12-05", "country": "NZ", "clicks": "4"},
        {"account_id": "11", "day": "2026-12-05", "country": "AU", "clicks": "1"},
    ]
    messages = run_reports(FakeReportAPI(rows={"11": rows}))

    assert sorted(r["country"] for r in records_of(messages, "daily")) == ["AU", "NZ"]


def test_page_size_halved_until_accepted(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeReportAPI(rows={"11": [{"account_id": "11", "day": "2026-12-05", "country": "NZ"}]}, max_limit=30)

    with caplog.at_level(logging.WARNING):
        messages = run_reports(api)

    limits = [limit for account, *_, limit in api.reports if account == "11"]
    assert limits[:3] == [100, 50, 25]
    assert len(records_of(messages, "daily")) == 1
    assert "requested less data per page; limit 100 -> 50" in caplog.text


def test_page_size_that_cannot_shrink_fails_clearly() -> None:
    api = FakeReportAPI(max_limit=0)

    with pytest.raises(Exception, match="still asks for less data with limit=1, the smallest page allowed"):
        run_reports(api)


def test_account_ids_are_normalised_and_checked() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        FakeReportAPI().install(mock)
        with pytest.raises(ConfigValidationError) as caught:
            run_tap(tap_class(), {**CONFIG, "account_ids": ["act_11", "act_2x"]})
    assert "element 1 of setting 'account_ids' does not match" in caught.value.errors[0]


def test_unknown_time_zone_from_the_parent_fails_clearly() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{BASE}/act_11", json={"id": "11", "zone": "Mars/Olympus"})
        with pytest.raises(StreamsStoppedError) as caught:
            run_tap(tap_class(), {**CONFIG, "account_ids": ["11"]})
    assert "context key 'time_zone' is 'Mars/Olympus', which is not an IANA time zone" in str(caught.value)


def test_setting_time_zone_fails_at_once() -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["settings"].append({"name": "zone", "type": "string", "default": "Mars/Olympus"})
    declaration["streams"]["daily"]["replication"]["timezone"] = "{config.zone}"

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        FakeReportAPI().install(mock)
        with pytest.raises(ConfigValidationError) as caught:
            run_tap(tap_class(declaration), {**CONFIG, "account_ids": ["11"]})
    assert "replication.timezone '{config.zone}' gives 'Mars/Olympus', which is not an IANA time zone" in caught.value.errors[0]
    assert "Fix the setting it names." in caught.value.errors[0]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["streams"]["daily"]["body"].update(query="{context.nope}"), "{context.nope} is not a partition key or parent.context key"),
        (lambda d: d["streams"]["daily"]["body"].update(query="{window.middle}"), "{window.middle} is unknown"),
        (lambda d: d["streams"]["daily"]["parent"].update(state_keys=["zone"]), "parent.state_keys.0: 'zone' is not a key of parent.context"),
        (lambda d: d["streams"]["daily"]["fields"]["clicks"].update(default="none"), "default is not of the field's type 'integer'"),
        (lambda d: d["streams"]["daily"]["replication"].update(request_format="iso8601"), "a bookmark on a date field needs request_format: date"),
    ],
)
def test_declaration_problems_are_named_by_path(change: t.Callable[[dict[str, t.Any]], None], problem: str) -> None:
    declaration = copy.deepcopy(DECLARATION)
    change(declaration)

    with pytest.raises(DeclarationError) as caught:
        parse_declaration(declaration)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["streams"]["daily"].setdefault("headers", {}).update({"X-Account": "{context.account_id}"}), "are not filled in headers"),
        (lambda d: d["settings"].append({"name": "bad", "type": "string", "pattern": "(["}), "settings.6.pattern: not a valid regular expression"),
        (lambda d: d["settings"][0].update(pattern="^k"), "settings.0.pattern: a secret setting cannot have a pattern"),
        (
            lambda d: d["streams"]["daily"]["fields"]["actions"]["items"]["action_type"].update(transform="numeric_string"),
            "items.action_type.transform: numeric_string produces integer or number",
        ),
        (lambda d: d["settings"][4].pop("default"), "lookback_days: setting 'lookback' must be an integer setting with a default"),
    ],
)
def test_more_declaration_problems_are_named_by_path(change: t.Callable[[dict[str, t.Any]], None], problem: str) -> None:
    declaration = copy.deepcopy(DECLARATION)
    change(declaration)

    with pytest.raises(DeclarationError) as caught:
        parse_declaration(declaration)
    assert problem in str(caught.value)


def test_report_job_needs_get_and_a_day_range() -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"]["daily"]["report_job"] = {
        "job_id_path": "id",
        "status_path": "/{job_id}",
        "status_field": "status",
        "done_values": ["done"],
        "failed_values": ["failed"],
        "results_path": "/{job_id}/rows",
    }

    with pytest.raises(DeclarationError) as caught:
        parse_declaration(declaration)
    assert "use method GET and no body" in str(caught.value)


def test_list_field_that_is_not_a_list_fails() -> None:
    row = {"account_id": "11", "day": "2026-12-05", "country": "NZ", "actions": {"action_type": "purchase"}}

    with pytest.raises(Exception, match="Field 'actions': expected an array of objects, got a dict"):
        run_reports(FakeReportAPI(rows={"11": [row]}))


def test_day_windows_without_any_start_fail_clearly() -> None:
    declaration = copy.deepcopy(DECLARATION)
    del declaration["streams"]["daily"]["replication"]["history_days"]

    with pytest.raises(ConfigValidationError) as caught:
        run_reports(FakeReportAPI(), declaration)
    assert "no bookmark and no start date" in caught.value.errors[0]


def test_warehouse_marker_in_state_is_carried_through() -> None:
    marker = {"warehouse_id": "5" * 32}
    state = {"bookmarks": {}, "spendlake_warehouse": marker}

    messages = run_reports(FakeReportAPI(), state=state)

    assert final_state(messages)["spendlake_warehouse"] == marker
