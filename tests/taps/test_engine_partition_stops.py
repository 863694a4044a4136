"""Partitions of a daily report that stop alone: spent retries, a time zone the API left invalid.

Also the bookmark of windows without rows, and a start day after today.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import typing as t

import pytest
import responses

from taps.engine.declaration import parse_declaration
from taps.engine.stream import DeclarativeStream
from taps.engine.tap import StreamsStoppedError, build_tap_class
from tests.singer_run import captured_stdout, final_state, parse_messages, records_of, run_tap
from tests.taps.test_report_engine import BASE, CONFIG, DECLARATION, NOW

WAF_PAGE = "<html><body>Request blocked by WAF, incident 7f3a-secret-body</body></html>"
ROW_22 = {"account_id": "22", "day": "2026-12-03", "country": "US", "clicks": "2"}
OLD_BOOKMARK = "2026-11-20"
STATE = {
    "bookmarks": {
        "daily": {
            "partitions": [
                {"context": {"account_id": account}, "replication_key": "day", "replication_key_value": OLD_BOOKMARK}
                for account in ("11", "22")
            ]
        }
    }
}


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DeclarativeStream, "clock", staticmethod(lambda: NOW))
    monkeypatch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))


class ReportAPI:
    """Serves two accounts; `failure` is the response every report request of account 11 gets."""

    def __init__(
        self,
        zones: dict[str, t.Any] | None = None,
        failure: tuple[int, dict[str, str], str] | None = None,
        rows: dict[str, list[dict[str, t.Any]]] | None = None,
    ) -> None:
        self.zones = zones or {"11": "Pacific/Auckland", "22": "America/New_York"}
        self.failure = failure
        self.rows = rows if rows is not None else {"22": [ROW_22]}
        self.reports: list[tuple[str, str, str]] = []
        self.attempts_11 = 0

    def install(self, mock: responses.RequestsMock) -> None:
        for account, zone in self.zones.items():
            body = {"id": account} if zone is None else {"id": account, "zone": zone}
            mock.add(responses.GET, f"{BASE}/act_{account}", json=body)
            mock.add_callback(responses.POST, f"{BASE}/act_{account}/report", callback=self.report)

    def report(self, request: t.Any) -> tuple[int, dict[str, str], str]:
        query = json.loads(request.body)["query"]
        account = query.rsplit("= ", 1)[1]
        since, until = query.split("BETWEEN '")[1].split("' AND account")[0].split("' AND '")
        if account == "11" and self.failure is not None:
            self.attempts_11 += 1
            return self.failure
        self.reports.append((account, since, until.rstrip("'")))
        return 200, {}, json.dumps({"rows": self.rows.get(account, [])})


def sync_until_stopped(api: ReportAPI, config: dict[str, t.Any] = CONFIG, declaration: dict[str, t.Any] = DECLARATION) -> tuple[list[dict[str, t.Any]], StreamsStoppedError]:
    """Run the tap, expect it to fail at the end, and return its messages and the error."""
    tap_class = build_tap_class(parse_declaration(declaration))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, captured_stdout() as raw:
        api.install(mock)
        tap = tap_class(config=config, state=copy.deepcopy(STATE), parse_env_config=False)
        with pytest.raises(StreamsStoppedError) as raised:
            tap.sync_all()
        sys.stdout.flush()
    return parse_messages(raw.getvalue()), raised.value


def partition_bookmarks(messages: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    partitions = final_state(messages)["bookmarks"]["daily"]["partitions"]
    return {p["context"]["account_id"]: p.get("replication_key_value") for p in partitions}


FAILURES = {
    "persistent-503": (503, {}, json.dumps({"error": {"message": "backend unavailable"}})),
    "hourly-quota-429": (429, {"Retry-After": "60"}, json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})),
    "waf-html-200": (200, {"Content-Type": "text/html"}, WAF_PAGE),
}
LAST_ERRORS = {
    "persistent-503": "HTTP 503 Service Unavailable for path /act_11/report",
    "hourly-quota-429": "HTTP 429 Too Many Requests for path /act_11/report; throttled",
    "waf-html-200": "the HTTP 200 body from path /act_11/report is not valid JSON",
}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_spent_retries_stop_one_partition(caplog: pytest.LogCaptureFixture, kind: str) -> None:
    api = ReportAPI(failure=FAILURES[kind])

    with caplog.at_level(logging.INFO):
        messages, error = sync_until_stopped(api)

    assert api.attempts_11 == 6
    assert [record["account_id"] for record in records_of(messages, "daily")] == ["22"]
    assert ("22", "2026-11-17", "2026-11-26") in api.reports
    bookmarks = partition_bookmarks(messages)
    assert bookmarks["11"] == OLD_BOOKMARK
    assert bookmarks["22"] == "2026-12-04"
    message = str(error)
    assert message.startswith("1 stream partition(s) stopped")
    assert "Stream daily: gave up on path /act_11/report after 6 attempt(s)" in message
    assert f"the last attempt failed with {LAST_ERRORS[kind]}" in message
    assert "stopped with its bookmark unchanged" in message
    for text in ("WAF", "secret-body", "backend unavailable", "RESOURCE_EXHAUSTED"):
        assert text not in message
        assert text not in caplog.text


@pytest.mark.parametrize(
    ("zone", "problem"),
    [
        (None, "context key 'time_zone' has no value."),
        ("Mars/Olympus", "context key 'time_zone' is 'Mars/Olympus', which is not an IANA time zone such as 'Europe/Berlin'."),
    ],
    ids=["missing", "invalid"],
)
def test_api_time_zone_stops_one_partition(zone: str | None, problem: str) -> None:
    api = ReportAPI(zones={"11": zone, "22": "America/New_York"})

    messages, error = sync_until_stopped(api)

    assert [account for account, *_ in api.reports] == ["22", "22"]
    assert [record["account_id"] for record in records_of(messages, "daily")] == ["22"]
    bookmarks = partition_bookmarks(messages)
    assert bookmarks["11"] == OLD_BOOKMARK
    assert bookmarks["22"] == "2026-12-04"
    message = str(error)
    assert f"Stream 'daily' (account_id=11): {problem}" in message
    assert "The value came from the API of stream 'accounts', so this partition stopped with its bookmark unchanged" in message
    assert "Fix the setting" not in message


def test_windows_without_rows_move_bookmark_to_today() -> None:
    first = ReportAPI(rows={})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        first.install(mock)
        messages = run_tap(build_tap_class(parse_declaration(DECLARATION)), CONFIG)

    # Today is 5 December in Auckland and 4 December in New York.
    assert records_of(messages, "daily") == []
    assert partition_bookmarks(messages) == {"11": "2026-12-05", "22": "2026-12-04"}

    second = ReportAPI(rows={})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        second.install(mock)
        run_tap(build_tap_class(parse_declaration(DECLARATION)), CONFIG, state=final_state(messages))

    # Only the 3 lookback days and today are read again.
    assert sorted(second.reports) == [("11", "2026-12-02", "2026-12-05"), ("22", "2026-12-01", "2026-12-04")]


def test_start_after_today_warns(caplog: pytest.LogCaptureFixture) -> None:
    api = ReportAPI()
    config = {**CONFIG, "start_date": "2027-01-01T00:00:00Z"}

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, caplog.at_level(logging.WARNING):
        api.install(mock)
        messages = run_tap(build_tap_class(parse_declaration(DECLARATION)), config)

    assert api.reports == []
    assert records_of(messages, "daily") == []
    warnings = [record.getMessage() for record in caplog.records if "names a day after today" in record.getMessage()]
    # One warning per stream, not one per account.
    assert warnings == [
        "Stream daily: setting start_date names a day after today (2026-12-05 in time zone Pacific/Auckland), "
        "so no days are read; set it to a past day to load history."
    ]

