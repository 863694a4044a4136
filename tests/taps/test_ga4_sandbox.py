"""tap-google-analytics against the GA4 sandbox handlers: paging, placeholders, lookback, quotas, custom reports."""

from __future__ import annotations

import contextlib
import json
import re
import typing as t
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import responses
from singer_sdk.exceptions import ConfigValidationError

from sandbox.ga4_api import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    TOKEN_PATH,
    GA4Session,
    demo_service_account_key,
    handle_ga4_request,
)
from sandbox.ga4_data import DEMO_PROPERTY_IDS, QUOTA_PROPERTY, GA4World
from taps.engine.stream import DeclarativeStream
from taps.engine.tap import StreamsStoppedError
from taps.google_analytics import TapGoogleAnalytics
from taps.google_analytics.custom_reports import clear_metadata_cache
from tests.singer_run import captured_stdout, final_state, records_of, run_tap

API = "http://ga4-sandbox.test"
US, NZ = DEMO_PROPERTY_IDS
# 2026-03-10 12:00 UTC: the anchor of the worlds below.
ANCHOR = 1773144000


def demo_config(**overrides: t.Any) -> dict[str, t.Any]:
    """Return the demo config: the sandbox's service account and both demo properties."""
    config = {
        "property_ids": list(DEMO_PROPERTY_IDS),
        "service_account_key": json.dumps(demo_service_account_key()),
        "token_url": API + TOKEN_PATH,
        "api_url": API,
        "admin_api_url": API,
        "page_size": 250,
    }
    config.update(overrides)
    return config


@contextlib.contextmanager
def serving(
    world: GA4World,
    session: GA4Session | None = None,
    *,
    now: datetime | None = None,
    spent_from: str | None = None,
) -> t.Iterator[responses.RequestsMock]:
    """Route the tap's requests to the sandbox handlers; the tap's clock reads `now` (default: the world's now).

    With `spent_from` (a day), traffic reports that start on or after it get the daily-quota 429.
    """
    session = session or GA4Session()
    clock_now = now or datetime.fromtimestamp(world.now, UTC)

    def callback(request: t.Any) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(request.url)
        body = request.body or b""
        if spent_from and parts.path.endswith(":runReport"):
            sent = json.loads(body)
            if sent["dimensions"][1]["name"] == "sessionSource" and sent["dateRanges"][0]["startDate"] >= spent_from:
                error = {"code": 429, "message": "Exhausted property tokens per day for this property.", "status": "RESOURCE_EXHAUSTED"}
                return 429, {"Content-Type": "application/json"}, json.dumps({"error": error}).encode()
        headers = {"Host": parts.netloc, **request.headers}
        return handle_ga4_request(world, session, request.method, parts.path, parts.query, headers, body if isinstance(body, bytes) else body.encode())

    clear_metadata_cache()
    with pytest.MonkeyPatch.context() as patch, responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        patch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))
        patch.setattr(DeclarativeStream, "clock", staticmethod(lambda: clock_now))
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=callback)
        yield mock


def start_days_before(world: GA4World, days: int) -> str:
    return (datetime.fromtimestamp(world.now, UTC) - timedelta(days=days)).strftime("%Y-%m-%dT00:00:00Z")


def test_multi_page_landing_pages_arrive_whole() -> None:
    world = GA4World(seed=3, anchor=ANCHOR)
    config = demo_config(property_ids=[US], start_date=start_days_before(world, 1))

    with serving(world) as mock:
        messages = run_tap(TapGoogleAnalytics, config)
        bodies = [json.loads(call.request.body) for call in mock.calls if call.request.url.endswith(":runReport")]

    pages = records_of(messages, "landing_pages_daily")
    days = sorted({record["date"] for record in pages})
    expected = sum(len(world.day_report(US, datetime.fromisoformat(day).date()).landing_pages) for day in days)
    assert len(pages) == expected > 250 * len(days)
    landing_offsets = [body["offset"] for body in bodies if body["dimensions"][1]["name"] == "landingPage"]
    assert landing_offsets.count(250) == len(days)
    assert all(body["limit"] == 250 for body in bodies)
    assert "/account/confirm" in {record["landing_page"] for record in pages}
    output = json.dumps(messages)
    assert not any(value in output for value in world.personal_values())
    assert "?" not in "".join(record["landing_page"] for record in pages)


def test_records_carry_property_and_types() -> None:
    world = GA4World(seed=3, anchor=ANCHOR)

    with serving(world):
        messages = run_tap(TapGoogleAnalytics, demo_config(start_date=start_days_before(world, 0)))

    traffic = records_of(messages, "traffic_daily")
    assert {record["property_id"] for record in traffic} == {int(US), int(NZ)}
    assert {record["currency_code"] for record in traffic} == {"USD", "NZD"}
    assert {"brand_search", "retargeting_q4", "(direct)", "(not set)"} <= {record["session_campaign_name"] for record in traffic}
    assert all(isinstance(record["sessions"], int) for record in traffic)
    purchases = records_of(messages, "ecommerce_purchases")
    first = purchases[0]
    day = world.day_report(str(first["property_id"]), datetime.fromisoformat(first["date"]).date())
    source = next(row for row in day.purchases if row.transaction_id == first["transaction_id"])
    assert str(source.purchase_revenue) == f"{first['purchase_revenue']:.2f}"


def test_other_date_takes_window_day(caplog: pytest.LogCaptureFixture) -> None:
    world = GA4World(seed=3, anchor=ANCHOR)
    day = world.other_row_day(US)
    config = demo_config(property_ids=[US], start_date=f"{day.isoformat()}T00:00:00Z")
    later = datetime.fromtimestamp(world.now, UTC)

    # The clock ends the read two days after the "(other)" day, so few windows are read.
    with serving(world, now=later - timedelta(days=(world.today(US) - day).days - 1)):
        messages = run_tap(TapGoogleAnalytics, config)

    other = [record for record in records_of(messages, "landing_pages_daily") if record["landing_page"] == "(other)"]
    assert [record["date"] for record in other] == [day.isoformat()]
    assert "(other) in date (1)" in caplog.text
    assert "exceeded GA4's cardinality limit" in caplog.text


def test_lookback_updates_provisional_days() -> None:
    first_world = GA4World(seed=3, anchor=ANCHOR)
    config = demo_config(property_ids=[US], lookback_days=2, start_date=start_days_before(first_world, 3))
    with serving(first_world):
        first = run_tap(TapGoogleAnalytics, config)
    state = final_state(first)
    today = first_world.today(US)

    # The next daily run, one day later: the world's recent days have grown.
    second_world = GA4World(seed=3, anchor=ANCHOR, ticks=(ANCHOR + 86400,))
    with serving(second_world) as mock:
        second = run_tap(TapGoogleAnalytics, config, state=state)
        ranges = [json.loads(call.request.body)["dateRanges"][0]["startDate"] for call in mock.calls if call.request.url.endswith(":runReport")]

    assert min(ranges) == (today - timedelta(days=2)).isoformat()

    def sessions_on(messages: list[dict[str, t.Any]], day: str) -> int:
        return sum(record["sessions"] for record in records_of(messages, "traffic_daily") if record["date"] == day)

    assert first_world.completeness(US, today) < 1
    assert sessions_on(second, today.isoformat()) > sessions_on(first, today.isoformat()) > 0
    bookmark = final_state(second)["bookmarks"]["traffic_daily"]["partitions"][0]["replication_key_value"]
    assert bookmark == second_world.today(US).isoformat()


def test_daily_quota_keeps_bookmark(caplog: pytest.LogCaptureFixture) -> None:
    world = GA4World(seed=3, anchor=ANCHOR)
    today = world.today(US)
    bookmark = {"context": {"property_id": int(US)}, "replication_key": "date", "replication_key_value": (today - timedelta(days=4)).isoformat()}
    state = {"bookmarks": {"traffic_daily": {"partitions": [bookmark]}}}
    tap = TapGoogleAnalytics(config=demo_config(property_ids=[US], lookback_days=0), state=state, parse_env_config=False)

    # The first two windows are read, then the daily quota is spent.
    with serving(world, spent_from=(today - timedelta(days=2)).isoformat()), pytest.raises(StreamsStoppedError, match="1 stream partition"):
        with captured_stdout():
            tap.sync_all()

    assert tap.state["bookmarks"]["traffic_daily"]["partitions"] == [bookmark]
    assert "the API quota is exhausted, so the stream stopped with its bookmark unchanged" in caplog.text
    assert "error.code=429, error.status=RESOURCE_EXHAUSTED" in caplog.text
    # The quota is still recognised by its message, but the message text stays out of the logs.
    assert "Exhausted property tokens" not in caplog.text
    # The other reports of the property were read to the end.
    landing = tap.state["bookmarks"]["landing_pages_daily"]["partitions"][0]["replication_key_value"]
    assert landing == today.isoformat()


def test_daily_quota_fails_run_last() -> None:
    world = GA4World(seed=3, anchor=ANCHOR)
    config = demo_config(property_ids=[QUOTA_PROPERTY.property_id, US], start_date=start_days_before(world, 0))
    tap = TapGoogleAnalytics(config=config, parse_env_config=False)

    with serving(world), pytest.raises(StreamsStoppedError, match="3 stream partition"):
        with captured_stdout():
            tap.sync_all()

    partitions = tap.state["bookmarks"]["traffic_daily"]["partitions"]
    assert [item["context"]["property_id"] for item in partitions if "replication_key_value" in item] == [int(US)]


def test_refresh_token_without_key() -> None:
    world = GA4World(seed=3, anchor=ANCHOR)
    config = demo_config(property_ids=[NZ], start_date=start_days_before(world, 0), oauth_token_url=API + TOKEN_PATH)
    del config["service_account_key"]
    config.update(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, refresh_token=DEMO_REFRESH_TOKEN)

    with serving(world) as mock:
        messages = run_tap(TapGoogleAnalytics, config)
        grants = [call.request.body for call in mock.calls if call.request.url.endswith(TOKEN_PATH)]

    assert len(grants) == 1
    assert "grant_type=refresh_token" in grants[0]
    assert records_of(messages, "traffic_daily")


def test_missing_credentials_name_alternatives() -> None:
    config = demo_config()
    del config["service_account_key"]

    with pytest.raises(ConfigValidationError) as raised:
        TapGoogleAnalytics(config=config, parse_env_config=False)

    text = " ".join(raised.value.errors)
    for setting in ("service_account_key", "service_account_key_file", "client_id", "client_secret", "refresh_token"):
        assert setting in text


def test_measurement_id_rejected() -> None:
    with pytest.raises(ConfigValidationError) as raised:
        TapGoogleAnalytics(config=demo_config(property_ids=["G-AB12CD34", US]), parse_env_config=False)

    assert raised.value.errors == [
        "Setting 'property_ids' element 0 is a measurement id; the numeric GA4 property id is needed, such as "
        "123456789. Find it in Google Analytics under Admin > Property settings > Property details."
    ]


def test_custom_report_static_checks() -> None:
    reports = [
        {"name": "by_device", "dimensions": ["sessionSource"], "metrics": ["conversions", "sessions"]},
        {"name": "wide", "dimensions": [f"customEvent:d{number}" for number in range(9)], "metrics": ["sessions"]},
        {"name": "Bad-Name", "dimensions": ["date"], "metrics": ["sessions", "sessions"]},
    ]

    with pytest.raises(ConfigValidationError) as raised:
        TapGoogleAnalytics(config=demo_config(custom_reports=reports), parse_env_config=False)

    assert raised.value.errors == [
        "custom_reports[0].metrics[0]: 'conversions' is deprecated; use 'keyEvents'.",
        "custom_reports[1].dimensions: 10 names (date is added to every report); GA4 allows at most 9 per request.",
        "custom_reports[2].name: use 1 to 41 lower-case letters, digits or underscores, starting with a letter.",
        "custom_reports[2].metrics[1]: 'sessions' is listed twice.",
    ]


def test_custom_report_unknown_name() -> None:
    world = GA4World(seed=3, anchor=ANCHOR)
    reports = [{"name": "sources", "dimensions": ["sessionSourceMedum"], "metrics": ["sessions"]}]
    config = demo_config(property_ids=[US], custom_reports=reports, start_date=start_days_before(world, 0))
    catalog = TapGoogleAnalytics(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
        root["metadata"]["selected"] = entry["tap_stream_id"] in ("properties", "custom_sources")

    with serving(world) as mock, pytest.raises(ConfigValidationError) as raised:
        run_tap(TapGoogleAnalytics, config, catalog=catalog)
    reports_sent = [call for call in mock.calls if call.request.url.endswith(":runReport")]

    assert raised.value.errors == [
        f"custom_reports[0].dimensions[1]: property {US} has no dimension 'sessionSourceMedum'. Did you mean 'sessionSourceMedium'?"
    ]
    assert reports_sent == []


def test_custom_report_stream_keys() -> None:
    world = GA4World(seed=3, anchor=ANCHOR)
    reports = [{
        "name": "paid_sources",
        "dimensions": ["sessionSourceMedium"],
        "metrics": ["activeUsers", "purchaseRevenue"],
        "dimension_filter": {"filter": {"fieldName": "sessionMedium", "inListFilter": {"values": ["cpc", "paid_social"]}}},
    }]
    config = demo_config(property_ids=[US], custom_reports=reports, start_date=start_days_before(world, 0))

    with serving(world):
        messages = run_tap(TapGoogleAnalytics, config)

    rows = records_of(messages, "custom_paid_sources")
    assert {row["session_source_medium"] for row in rows} == {"google / cpc", "facebook / paid_social"}
    assert all(isinstance(row["active_users"], int) for row in rows)
    schema = next(m for m in messages if m["type"] == "SCHEMA" and m["stream"] == "custom_paid_sources")
    assert schema["key_properties"] == ["property_id", "date", "session_source_medium"]
