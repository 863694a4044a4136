"""tap-google-ads and tap-facebook against the sandbox, in-process, with a fixed clock."""

from __future__ import annotations

import re
import typing as t
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from sandbox.ads_data import AdsWorld
from sandbox.google_ads_api import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_DEVELOPER_TOKEN, DEMO_REFRESH_TOKEN
from sandbox.meta_api import DEMO_ACCESS_TOKEN
from sandbox.server import SandboxServer, start_server
from sandbox.stripe_data import StripeWorld
from taps.engine.stream import DeclarativeStream
from taps.facebook import TapFacebook
from taps.google_ads import TapGoogleAds
from taps.engine.tap import StreamsStoppedError
from tests.singer_run import captured_stdout, catalog_selecting_all, final_state, parse_messages, records_of, run_tap

# 11:30 UTC on 4 December 2026: already 5 December in Auckland, still 4 December in New York.
NOW = datetime(2026, 12, 4, 11, 30, tzinfo=UTC)
SEED = 20261206
US, NZ_GOOGLE = "4567890123", "7890123456"
EU, NZ_META = "100200300400500", "600700800900100"


@pytest.fixture(scope="module")
def server() -> t.Iterator[SandboxServer]:
    anchor = int(NOW.timestamp())
    with start_server(StripeWorld(SEED, anchor), ads_world=AdsWorld(SEED, anchor)) as running:
        yield running


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DeclarativeStream, "clock", staticmethod(lambda: NOW))
    monkeypatch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))


def google_config(server: SandboxServer, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "customer_ids": [US, NZ_GOOGLE],
        "login_customer_id": "1112223334",
        "developer_token": DEMO_DEVELOPER_TOKEN,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": DEMO_REFRESH_TOKEN,
        "api_url": server.url,
        "token_url": f"{server.url}/google/oauth2/token",
        **extra,
    }


def meta_config(server: SandboxServer, **extra: t.Any) -> dict[str, t.Any]:
    return {"account_ids": [f"act_{EU}", NZ_META], "access_token": DEMO_ACCESS_TOKEN, "api_url": server.url, **extra}


def days_by_account(records: list[dict[str, t.Any]], account_field: str, day_field: str) -> dict[str, tuple[str, str]]:
    days: dict[str, list[str]] = {}
    for record in records:
        days.setdefault(str(record[account_field]), []).append(record[day_field])
    return {account: (min(values), max(values)) for account, values in days.items()}


def test_google_days_follow_each_account_zone(server: SandboxServer) -> None:
    messages = run_tap(TapGoogleAds, google_config(server))

    days = days_by_account(records_of(messages, "campaign_daily_metrics"), "customer_id", "date")
    # Auckland's today is 5 December: its 90 days end there; New York's end on 4 December.
    assert days[NZ_GOOGLE] == ("2026-09-07", "2026-12-05")
    assert days[US] == ("2026-09-06", "2026-12-04")


def test_meta_days_follow_each_account_zone(server: SandboxServer) -> None:
    messages = run_tap(TapFacebook, meta_config(server))

    days = days_by_account(records_of(messages, "ads_insights"), "account_id", "date_start")
    assert days[NZ_META][1] == "2026-12-05"
    assert days[EU][1] == "2026-12-04"
    currencies = {record["account_id"]: record["account_currency"] for record in records_of(messages, "ads_insights")}
    assert currencies == {EU: "EUR", NZ_META: "NZD"}


def test_yesterday_in_auckland_is_read_again(server: SandboxServer) -> None:
    """With a bookmark on Auckland's today and a 1-day lookback, the read starts on Auckland's yesterday."""
    state = {
        "bookmarks": {
            "campaign_daily_metrics": {
                "partitions": [
                    {"context": {"customer_id": int(NZ_GOOGLE)}, "replication_key": "date", "replication_key_value": "2026-12-05"},
                    {"context": {"customer_id": int(US)}, "replication_key": "date", "replication_key_value": "2026-12-04"},
                ]
            }
        }
    }

    messages = run_tap(TapGoogleAds, google_config(server, conversion_window_days=1), state=state)

    days = days_by_account(records_of(messages, "campaign_daily_metrics"), "customer_id", "date")
    assert days[NZ_GOOGLE] == ("2026-12-04", "2026-12-05")
    assert days[US] == ("2026-12-03", "2026-12-04")


def test_rows_differing_only_in_country_stay_apart(server: SandboxServer) -> None:
    messages = run_tap(TapFacebook, meta_config(server, start_date="2026-12-01T00:00:00Z"))

    rows = records_of(messages, "ads_insights_country")
    per_ad_day = Counter((row["account_id"], row["ad_id"], row["date_start"]) for row in rows)
    assert max(per_ad_day.values()) >= 2
    assert len({(row["account_id"], row["ad_id"], row["date_start"], row["country"]) for row in rows}) == len(rows)


def test_empty_page_with_next_link_ends(server: SandboxServer) -> None:
    world = AdsWorld(SEED, int(NOW.timestamp()))
    day = date(2026, 12, 1)
    rows_that_day = sum(1 for row in world.meta_ad_days(EU) if row.day == day)
    before = server.meta_session.counts().get("report_run_insights", {}).get("served", 0)
    clock = datetime(2026, 12, 1, 12, tzinfo=UTC)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DeclarativeStream, "clock", staticmethod(lambda: clock))
        config = {**meta_config(server, start_date="2026-12-01T00:00:00Z", page_size=rows_that_day), "account_ids": [EU]}
        messages = run_tap(TapFacebook, config, catalog=only_streams(config, {"ad_accounts", "ads_insights"}))

    served = server.meta_session.counts()["report_run_insights"]["served"] - before
    assert len(records_of(messages, "ads_insights")) == rows_that_day
    # One full page, then the empty page that still carries a next link, and nothing after it.
    assert served == 2
    assert rows_that_day < 100


def only_streams(config: dict[str, t.Any], names: set[str]) -> dict[str, t.Any]:
    catalog = catalog_selecting_all(TapFacebook, config)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in names
    return catalog


def test_spent_quota_stops_one_account(server: SandboxServer) -> None:
    config = google_config(server, customer_ids=[US, "999-000-1112"], start_date="2026-11-20T00:00:00Z")
    before = server.google_ads_session.counts().get("search_stream", {}).get("quota_exhausted", 0)

    with captured_stdout() as raw:
        tap = TapGoogleAds(config=config, parse_env_config=False)
        with pytest.raises(StreamsStoppedError) as caught:
            tap.sync_all()
    messages = parse_messages(raw.getvalue())

    assert "stream partition(s) stopped on an API error" in str(caught.value)
    assert "the API requests a wait of 43200 s" in str(caught.value)
    assert "so the stream stopped with its bookmark unchanged" in str(caught.value)
    # Each full-table stream asked once for the spent customer, with no retries.
    assert server.google_ads_session.counts()["search_stream"]["quota_exhausted"] - before == 5
    # The other customer was read whole, and its bookmark was saved.
    assert {record["customer_id"] for record in records_of(messages, "campaign_daily_metrics")} == {int(US)}
    partitions = final_state(messages)["bookmarks"]["campaign_daily_metrics"]["partitions"]
    assert [(p["context"], p["replication_key_value"]) for p in partitions] == [({"customer_id": int(US)}, "2026-12-04")]


def facebook_with_long_jobs(stall_polls: int) -> type:
    """Return tap-facebook with 90-day report jobs, which the sandbox fails (NZ) or stalls (EU)."""
    import yaml
    from importlib import resources

    from taps.engine.declaration import parse_declaration
    from taps.engine.tap import build_tap_class

    document = yaml.safe_load(resources.files("taps.facebook").joinpath("facebook.yaml").read_text())
    insights = document["streams"]["ads_insights"]
    insights["replication"] = {**insights["replication"], "window_days": 90}
    insights["report_job"] = {**insights["report_job"], "stall_polls": stall_polls}
    return build_tap_class(parse_declaration(document))


def test_failed_and_stalled_jobs_split(server: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    world = AdsWorld(SEED, int(NOW.timestamp()))
    tap_class = facebook_with_long_jobs(stall_polls=3)
    config = meta_config(server)
    created_before = server.meta_session.counts().get("report_run_create", {}).get("served", 0)

    messages = run_tap(tap_class, config, catalog=only_streams(config, {"ad_accounts", "ads_insights"}))

    rows = records_of(messages, "ads_insights")
    for account in (EU, NZ_META):
        first = NOW.astimezone(world.account(account).zone).date() - timedelta(days=89)
        served = [row for row in world.meta_ad_days(account) if row.day >= first]
        assert sum(1 for row in rows if row["account_id"] == account) == len(served)
    created = server.meta_session.counts()["report_run_create"]["served"] - created_before
    # EU: 90 days stall, 45 + 45 finish. NZ: 90 and 45 + 45 fail, four ranges of 22-23 days finish.
    assert created == 3 + 7
    assert re.search(r"report job \d+ for 2026-09-06 to 2026-12-04 stalled; submitting 2026-09-06 to 2026-10-20 and", caplog.text)
    assert re.search(r"report job \d+ for 2026-09-07 to 2026-12-05 failed; submitting 2026-09-07 to 2026-10-21 and", caplog.text)


def test_google_throttles_wait_the_delay_they_state(server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(DeclarativeStream, "retry_sleep", staticmethod(waits.append))
    throttled_before = server.google_ads_session.counts().get("search_stream", {}).get("throttled", 0)

    run_tap(TapGoogleAds, google_config(server, start_date="2026-11-01T00:00:00Z"))

    throttled = server.google_ads_session.counts()["search_stream"]["throttled"] - throttled_before
    assert throttled >= 2
    # The sandbox's quotaErrorDetails.retryDelay is "1s"; each throttled request was retried once.
    assert waits == [1.0] * throttled
