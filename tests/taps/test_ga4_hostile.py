"""tap-google-analytics against hostile or malformed GA4 responses: URL leaks, cut-made duplicates, bad headers and rows."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import typing as t
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import responses
from singer_sdk.exceptions import ConfigValidationError

from mappers.pii.plan import MappingError, build_plan
from privacy.policy import build_policy
from sandbox.ga4_api import TOKEN_PATH, GA4Session, demo_service_account_key, handle_ga4_request
from sandbox.ga4_data import DEMO_PROPERTY_IDS, GA4World
from taps.engine.reports import ReportFormatError
from taps.engine.stream import DeclarativeStream, PrimaryKeyConflictError
from taps.google_analytics import TapGoogleAnalytics
from taps.google_analytics.custom_reports import clear_metadata_cache
from tests.singer_run import captured_stdout, records_of, run_tap

API = "http://ga4-hostile.test"
US, NZ = DEMO_PROPERTY_IDS
# 2026-03-10 12:00 UTC.
ANCHOR = 1773144000
DAY = "2026-03-10"

#: Builds the (status, body) reply to a report request from the request's JSON body.
Reply = t.Callable[[dict[str, t.Any]], tuple[int, t.Any]]

#: What the hostile host's metadata lists, beyond the sandbox's names: custom and URL dimensions, and a rate.
METADATA = {
    "dimensions": [{"apiName": name} for name in (
        "date", "landingPage", "sessionSource", "sessionMedium", "sessionCampaignName", "sessionSourceMedium", "transactionId",
        "pageLocation", "landingPagePlusQueryString", "customUser:email", "customUser:plan",
    )],
    "metrics": [{"apiName": name} for name in (
        "sessions", "engagedSessions", "totalUsers", "newUsers", "keyEvents", "purchaseRevenue", "bounceRate",
    )],
}


def config(**overrides: t.Any) -> dict[str, t.Any]:
    """Return a config that reads one day of the US demo property from the hostile host."""
    values = {
        "property_ids": [US],
        "service_account_key": json.dumps(demo_service_account_key()),
        "token_url": API + TOKEN_PATH,
        "api_url": API,
        "admin_api_url": API,
        "start_date": f"{DAY}T00:00:00Z",
        "lookback_days": 0,
    }
    values.update(overrides)
    return values


def headers(request: dict[str, t.Any]) -> dict[str, t.Any]:
    """Return the header lists GA4 sends for a request: its dimensions and metrics, in order."""
    return {
        "dimensionHeaders": [{"name": item["name"]} for item in request["dimensions"]],
        "metricHeaders": [{"name": item["name"], "type": "TYPE_INTEGER"} for item in request["metrics"]],
    }


def rows_of(request: dict[str, t.Any], values: dict[str, str], metrics: list[str]) -> dict[str, t.Any]:
    """Return one row: each requested dimension from `values` (the day for date), then the metric values."""
    day = request["dateRanges"][0]["startDate"].replace("-", "")
    dimensions = [day if item["name"] == "date" else values.get(item["name"], "x") for item in request["dimensions"]]
    return {"dimensionValues": [{"value": value} for value in dimensions], "metricValues": [{"value": value} for value in metrics]}


def landing_reply(pages: list[tuple[str, str]]) -> Reply:
    """Reply to landing-page requests with one row per (page, metric value); other reports get no rows."""

    def build_reply(request: dict[str, t.Any]) -> tuple[int, t.Any]:
        names = [item["name"] for item in request["dimensions"]]
        if "landingPage" not in names:
            return 200, headers(request)
        rows = [rows_of(request, {"landingPage": page}, [value] * len(request["metrics"])) for page, value in pages]
        return 200, {**headers(request), "rows": rows, "rowCount": len(rows)}

    return build_reply


@contextlib.contextmanager
def hostile(build_reply: Reply) -> t.Iterator[responses.RequestsMock]:
    """Serve tokens, properties and metadata from the sandbox, and every runReport from `build_reply`."""
    world = GA4World(seed=3, anchor=ANCHOR)
    session = GA4Session()

    def callback(request: t.Any) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(request.url)
        body = request.body or b""
        body = body if isinstance(body, bytes) else body.encode()
        if parts.path.endswith(":runReport"):
            status, reply = build_reply(json.loads(body))
            return status, {"Content-Type": "application/json"}, json.dumps(reply).encode()
        if parts.path.endswith("/metadata"):
            return 200, {"Content-Type": "application/json"}, json.dumps(METADATA).encode()
        return handle_ga4_request(world, session, request.method, parts.path, parts.query, {"Host": parts.netloc, **request.headers}, body)

    clear_metadata_cache()
    with pytest.MonkeyPatch.context() as patch, responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        patch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))
        patch.setattr(DeclarativeStream, "clock", staticmethod(lambda: datetime.fromisoformat(f"{DAY}T20:00:00+00:00").astimezone(UTC)))
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=callback)
        yield mock


def landing_records(messages: list[dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    return {record["landing_page"]: record for record in records_of(messages, "landing_pages_daily")}


def test_landing_pages_lose_addresses_and_tokens(caplog: pytest.LogCaptureFixture) -> None:
    pages = [
        "/unsubscribe/jane.doe@example.com",
        "/confirm;email=bob@example.com",
        "/r%3Femail%3Dcarl%40example.com",
        "/reset-password/tok_9f8e7d6c5b4a39281706",
        "https://evil.example/path?email=dan@example.com",
        "/x&email=eve@example.com",
    ]

    with hostile(landing_reply([(page, "1") for page in pages])):
        messages = run_tap(TapGoogleAnalytics, config())

    assert sorted(landing_records(messages)) == ["/confirm", "/path", "/r", "/reset-password/(redacted)", "/unsubscribe/(redacted)", "/x"]
    output = json.dumps(messages)
    for leaked in ("example.com", "tok_9f8e", "evil", "email="):
        assert leaked not in output
    assert "replaced path segments containing an e-mail address or a token with '(redacted)' in: landing_page (2)" in caplog.text
    assert "example.com" not in caplog.text


def test_rows_equal_after_cut_are_summed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    pages = [("/a?email=x@example.com", "3"), ("/a?email=y@example.com", "5"), ("/b#tok=abc", "1"), ("/b", "1")]

    with hostile(landing_reply(pages)):
        messages = run_tap(TapGoogleAnalytics, config())

    records = landing_records(messages)
    assert {page: record["sessions"] for page, record in records.items()} == {"/a": 8, "/b": 2}
    assert records["/a"]["total_users"] == 8
    assert "merged 2 row(s) into the row of the same path after the URL cut" in caplog.text


def test_api_duplicates_still_conflict() -> None:
    # The same raw row twice with different numbers is the API's fault, not the cut's: it still stops the stream.
    pages = [("/a", "3"), ("/a", "5")]

    with hostile(landing_reply(pages)), pytest.raises(PrimaryKeyConflictError, match="two different rows share the primary key"):
        run_tap(TapGoogleAnalytics, config())


def test_cut_duplicates_with_rates_fail() -> None:
    reports = [{"name": "page_rates", "dimensions": ["landingPage"], "metrics": ["sessions", "bounceRate"]}]
    pages = [("/a?email=x@example.com", "3"), ("/a?email=y@example.com", "5")]
    catalog = selecting(config(custom_reports=reports), {"properties", "custom_page_rates"})

    with hostile(landing_reply(pages)), pytest.raises(PrimaryKeyConflictError, match=r"metric\(s\) \['bounceRate'\] cannot be summed"):
        run_tap(TapGoogleAnalytics, config(custom_reports=reports), catalog=catalog)


def selecting(values: dict[str, t.Any], names: set[str]) -> dict[str, t.Any]:
    """Return the tap's catalog with only `names` selected."""
    catalog = TapGoogleAnalytics(config=values, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
        root["metadata"]["selected"] = entry["tap_stream_id"] in names
    return catalog


def test_missing_metric_header_fails() -> None:
    def build_reply(request: dict[str, t.Any]) -> tuple[int, t.Any]:
        sent = headers(request)
        sent["metricHeaders"] = sent["metricHeaders"][:1]
        return 200, {**sent, "rows": [rows_of(request, {}, ["7"])], "rowCount": 1}

    with hostile(build_reply), pytest.raises(ReportFormatError) as raised:
        run_tap(TapGoogleAnalytics, config())

    assert str(raised.value) == (
        "Stream 'traffic_daily': the report response's metricHeaders lack ['engagedSessions', 'totalUsers', 'newUsers', "
        "'keyEvents', 'purchaseRevenue']; check api_url, which should reach the GA4 Data API."
    )


def test_reordered_metric_headers_are_read_by_name() -> None:
    def build_reply(request: dict[str, t.Any]) -> tuple[int, t.Any]:
        sent = headers(request)
        if "landingPage" not in [item["name"] for item in request["dimensions"]]:
            return 200, sent
        sent["metricHeaders"].reverse()
        metrics = [str(10 * (position + 1)) for position in range(len(sent["metricHeaders"]))]
        return 200, {**sent, "rows": [rows_of(request, {"landingPage": "/"}, metrics)], "rowCount": 1}

    with hostile(build_reply):
        messages = run_tap(TapGoogleAnalytics, config())

    record = landing_records(messages)["/"]
    # Headers reversed: totalUsers, keyEvents, engagedSessions, sessions.
    assert (record["total_users"], record["key_events"], record["engaged_sessions"], record["sessions"]) == (10, 20, 30, 40)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param({"rows": {"a": 1}, "rowCount": 1}, "Stream 'traffic_daily': the report's rows is a dict, not a list.", id="rows-object"),
        pytest.param(
            {"rows": [{"dimensionValues": ["x"], "metricValues": ["1"]}], "rowCount": 1},
            "Stream 'traffic_daily': the dimensionValues of report row 1 are not a list of objects.",
            id="cells-text",
        ),
        pytest.param({"rows": ["x"], "rowCount": 1}, "Stream 'traffic_daily': report row 1 is not an object.", id="row-text"),
    ],
)
def test_malformed_rows_name_stream_and_row(reply: dict[str, t.Any], message: str) -> None:
    with hostile(lambda request: (200, {**headers(request), **reply})), pytest.raises(ReportFormatError) as raised:
        run_tap(TapGoogleAnalytics, config())

    assert str(raised.value) == message


def test_error_message_stays_out_of_logs(caplog: pytest.LogCaptureFixture) -> None:
    error = {"code": 400, "status": "INVALID_ARGUMENT", "message": "Field landingPage value /confirm?email=leak@example.com is invalid"}
    tap = TapGoogleAnalytics(config=config(), parse_env_config=False)

    with hostile(lambda request: (400, {"error": error})), pytest.raises(Exception) as raised:
        with captured_stdout():
            tap.sync_all()

    assert "error.code=400, error.status=INVALID_ARGUMENT" in caplog.text
    assert "leak@example.com" not in caplog.text
    assert "leak@example.com" not in str(raised.value)


def test_custom_report_names_checked_before_any_report() -> None:
    reports = [{"name": "sources", "dimensions": ["sessionSourceMedum"], "metrics": ["sessions"]}]
    values = config(property_ids=[US, NZ], custom_reports=reports)
    calls: list[dict[str, t.Any]] = []

    def build_reply(request: dict[str, t.Any]) -> tuple[int, t.Any]:
        calls.append(request)
        return 200, headers(request)

    tap = TapGoogleAnalytics(config=values, parse_env_config=False)
    with hostile(build_reply), pytest.raises(Exception, match="Custom report validation failed") as raised:
        with captured_stdout():
            tap.sync_all()

    assert calls == []
    assert raised.value.errors == [  # type: ignore[attr-defined]
        f"custom_reports[0].dimensions[1]: property {number} has no dimension 'sessionSourceMedum'. Did you mean 'sessionSourceMedium'?"
        for number in (US, NZ)
    ]


def test_custom_dimensions_default_to_identifier() -> None:
    reports = [{
        "name": "pages",
        "dimensions": ["landingPagePlusQueryString", "pageLocation", "customUser:email", "customUser:plan", "sessionSource"],
        "metrics": ["sessions"],
        "pii": {"customUser:plan": "none"},
    }]
    values = {
        "landingPagePlusQueryString": "/confirm?email=frank@example.com",
        "pageLocation": "https://shop.example/confirm?email=gina@example.com",
        "customUser:email": "hank@example.com",
        "customUser:plan": "gold",
        "sessionSource": "google",
    }
    values_config = config(custom_reports=reports)

    with hostile(lambda request: (200, {**headers(request), "rows": [rows_of(request, values, ["1"])], "rowCount": 1})):
        messages = run_tap(TapGoogleAnalytics, values_config, catalog=selecting(values_config, {"properties", "custom_pages"}))

    schema = next(m for m in messages if m["type"] == "SCHEMA" and m["stream"] == "custom_pages")
    classes = {name: prop["x-pii"] for name, prop in schema["schema"]["properties"].items()}
    assert classes == {
        "property_id": "none", "date": "none", "landing_page_plus_query_string": "identifier", "page_location": "identifier",
        "custom_user_email": "identifier", "custom_user_plan": "none", "session_source": "none", "sessions": "none",
    }
    [record] = records_of(messages, "custom_pages")
    # URL dimensions keep only their path, whatever their class.
    assert (record["landing_page_plus_query_string"], record["page_location"]) == ("/confirm", "/confirm")
    # The default policy hashes them, so the report runs and stores no visitor text in clear.
    plan = build_plan("custom_pages", schema["schema"], schema["key_properties"], build_policy(None))
    assert plan is not None
    with pytest.raises(MappingError, match="drops key properties landing_page_plus_query_string, page_location, custom_user_email"):
        build_plan("custom_pages", schema["schema"], schema["key_properties"], build_policy({"identifier": "drop"}))


@pytest.mark.parametrize(
    ("report", "errors"),
    [
        pytest.param(
            {"dimensions": ["customEvent:planTier", "customEvent:plan_tier"]},
            ["custom_reports[0].dimensions[1]: 'customEvent:plan_tier' becomes column 'custom_event_plan_tier', like "
             "'customEvent:planTier'; remove one of them."],
            id="same-column",
        ),
        pytest.param(
            {"dimensions": ["property_id", "Date"]},
            ["custom_reports[0].dimensions[0]: 'property_id' becomes column 'property_id', like the property_id column "
             "every report has; remove one of them.",
             "custom_reports[0].dimensions[1]: 'Date' becomes column 'date', like the date column every report has; "
             "remove one of them."],
            id="fixed-columns",
        ),
        pytest.param(
            {"dimensions": ["customUser:plan"], "pii": {"customUser:plan": "public", "pagePath": "none"}},
            ["custom_reports[0].pii['customUser:plan']: unknown PII class; use one of: none, email, phone, name, address, "
             "ip, free_text, identifier, date_of_birth, secret.",
             "custom_reports[0].pii: 'pagePath' is not one of the report's dimensions; list it in dimensions or remove it."],
            id="pii-entry",
        ),
    ],
)
def test_custom_report_entry_rejected(report: dict[str, t.Any], errors: list[str]) -> None:
    entry = {"name": "bad", "metrics": ["sessions"], **report}

    with pytest.raises(ConfigValidationError) as raised:
        TapGoogleAnalytics(config=config(custom_reports=[entry]), parse_env_config=False)

    assert raised.value.errors == errors


def test_discover_rejects_invalid_custom_reports(tmp_path: Path) -> None:
    values = config(custom_reports=[{"name": "Bad Name", "dimensions": ["sessionSource"], "metrics": ["sessions"]}])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))

    result = subprocess.run(
        [str(Path(sys.executable).parent / "tap-google-analytics"), "--config", str(path), "--discover"],
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert result.returncode != 0
    assert "custom_reports[0].name: use 1 to 41 lower-case letters" in result.stderr
    assert '"streams"' not in result.stdout
