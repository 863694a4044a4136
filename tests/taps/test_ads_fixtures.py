"""tap-google-ads and tap-facebook parse real public payloads into the expected records."""

from __future__ import annotations

import contextlib
import json
import typing as t
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from taps.engine.stream import DeclarativeStream
from taps.facebook import TapFacebook
from taps.google_ads import TapGoogleAds
from tests.singer_run import catalog_selecting_all, final_state, records_of, run_tap

GOOGLE = "http://googleads.test"
GOOGLE_CONFIG = {
    "customer_ids": ["123-321-3210"],
    "developer_token": "dev-token-fixture",
    "client_id": "client-fixture",
    "client_secret": "secret-fixture",
    "refresh_token": "refresh-fixture",
    "token_url": f"{GOOGLE}/token",
    "api_url": GOOGLE,
    "start_date": "2024-06-01T00:00:00Z",
}
META = "http://graph.test"
META_CONFIG = {"account_ids": ["act_798085168510957"], "access_token": "meta-token-fixture", "api_url": META, "start_date": "2023-06-01T00:00:00Z"}


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make 'today' a fixed day shortly after the fixtures' dates, so windows are few."""
    monkeypatch.setattr(DeclarativeStream, "clock", staticmethod(lambda: datetime(2024, 6, 10, 12, tzinfo=UTC)))


def no_results_batch() -> list[dict[str, t.Any]]:
    return [{"fieldMask": "customer.id", "requestId": "fixture-empty"}]


def google_answer(daily: list[dict[str, t.Any]]) -> t.Callable[[t.Any], tuple[int, dict[str, str], str]]:
    customer = [{"results": [{"customer": {"resourceName": "customers/1233213210", "id": "1233213210", "currencyCode": "USD", "timeZone": "UTC"}}]}]

    def answer(request: t.Any) -> tuple[int, dict[str, str], str]:
        query = json.loads(request.body)["query"]
        if " FROM customer WHERE " in query:
            body: t.Any = daily
        elif query.endswith("FROM customer"):
            body = customer
        else:
            body = no_results_batch()
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    return answer


def test_google_ads_search_stream_payload(fixtures_dir: Path, frozen_clock: None) -> None:
    payload = json.loads((fixtures_dir / "google_ads" / "searchstream_rest_customer_daily_clicks_cost.json").read_text())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{GOOGLE}/token", json={"access_token": "access-fixture", "expires_in": 3600})
        mock.add_callback(responses.POST, f"{GOOGLE}/v26/customers/1233213210/googleAds:searchStream", callback=google_answer(payload))
        messages = run_tap(TapGoogleAds, GOOGLE_CONFIG)

    daily = records_of(messages, "customer_daily_metrics")
    expected_rows = [result for batch in payload for result in batch.get("results", [])]
    assert len(daily) == len(expected_rows)
    assert daily[0] == {
        "customer_id": 123321321,
        "date": "2024-06-01",
        "impressions": 0,
        "clicks": 204,
        "cost_micros": 1061083620,
        "conversions": 0,
        "conversions_value": 0,
        "all_conversions": 0,
        "view_through_conversions": 0,
    }
    assert sum(row["cost_micros"] for row in daily) == sum(int(row["metrics"]["costMicros"]) for row in expected_rows)
    assert records_of(messages, "campaign_daily_metrics") == []


def test_google_ads_empty_batch_means_no_rows(frozen_clock: None) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{GOOGLE}/token", json={"access_token": "access-fixture", "expires_in": 3600})
        mock.add_callback(
            responses.POST, f"{GOOGLE}/v26/customers/1233213210/googleAds:searchStream", callback=google_answer(no_results_batch())
        )
        messages = run_tap(TapGoogleAds, GOOGLE_CONFIG)

    assert records_of(messages, "customer_daily_metrics") == []
    assert [row["customer_id"] for row in records_of(messages, "customers")] == [1233213210]


def meta_routes(mock: responses.RequestsMock, fixtures: Path, insights: dict[str, t.Any]) -> None:
    """Serve the entity fixtures and the insights fixture.

    The insights fixture goes to the product stream, or to the unbroken
    ads_insights stream when the `_serve` marker is absent. Every other job
    has no rows."""
    folder = fixtures / "facebook"
    account = {"account_id": "798085168510957", "name": "Porsche Riverside", "currency": "USD", "timezone_name": "America/Los_Angeles", "id": "act_798085168510957"}
    mock.add(responses.GET, f"{META}/v26.0/act_798085168510957", json=account)
    for name, file in (("campaigns", "airbyte_campaigns.json"), ("adsets", "airbyte_ad_sets.json"), ("ads", "airbyte_ads.json")):
        mock.add(responses.GET, f"{META}/v26.0/act_798085168510957/{name}", json=json.loads((folder / file).read_text()))
    jobs = {"product_id": "4242", "country": "4343", None: "4444"}

    def submit(request: t.Any) -> tuple[int, dict[str, str], str]:
        breakdown = parse_qs(urlparse(request.url).query).get("breakdowns", [None])[0]
        return 200, {}, json.dumps({"report_run_id": jobs[breakdown]})

    insights_for = "product_id" if insights.get("_serve") == "product" else None
    mock.add_callback(responses.POST, f"{META}/v26.0/act_798085168510957/insights", callback=submit)
    for breakdown, job_id in jobs.items():
        mock.add(responses.GET, f"{META}/v26.0/{job_id}", json={"id": job_id, "async_status": "Job Completed", "async_percent_completion": 100})
        body = {key: value for key, value in insights.items() if key != "_serve"} if breakdown == insights_for else {"data": []}
        mock.add(responses.GET, f"{META}/v26.0/{job_id}/insights", json=body)


@pytest.fixture(autouse=True)
def no_poll_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))


def test_meta_payloads_parse(fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DeclarativeStream, "clock", staticmethod(lambda: datetime(2023, 6, 2, 12, tzinfo=UTC)))
    insights = json.loads((fixtures_dir / "facebook" / "airbyte_ads_insights_action_product_id.json").read_text())
    insights["_serve"] = "product"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        meta_routes(mock, fixtures_dir, insights)
        messages = run_tap(TapFacebook, META_CONFIG, catalog=catalog_selecting_all(TapFacebook, META_CONFIG))
        submitted = [call.request for call in mock.calls if call.request.method == "POST"]

    campaign = records_of(messages, "campaigns")[0]
    assert campaign["updated_time"] == "2024-03-12T22:02:47+00:00"
    assert campaign["status"] == "ARCHIVED"
    adset = records_of(messages, "adsets")[0]
    assert adset["daily_budget"] == 600
    assert "targeting" not in adset
    ad = records_of(messages, "ads")[0]
    assert ad["creative_id"] == "23853666124230398"
    assert "targeting" not in ad
    assert "tracking_specs" not in ad

    # The product breakdown stream keeps both rows of one ad and day: they differ only in product_id.
    products = records_of(messages, "ads_insights_product")
    assert [(row["ad_id"], row["date_start"], row["product_id"]) for row in products] == [
        ("23854695759200548", "2023-06-01", "5983858725075630"),
        ("23854695759200548", "2023-06-01", "6023934044385671"),
    ]
    first = products[0]
    assert first["spend"] == Decimal("14.35") or first["spend"] == 14.35
    assert first["impressions"] == 185
    assert first["clicks"] == 9
    assert first["ctr"] == pytest.approx(4.864865)
    assert first["actions"][0] == {"action_type": "page_engagement", "value": 10, "1d_click": 10, "7d_click": 10, "28d_click": 10}
    assert "account_name" not in first

    time_range = json.loads(parse_qs(urlparse(submitted[0].url).query)["time_range"][0])
    assert time_range == {"since": "2023-06-01", "until": "2023-06-02"}  # today in Los Angeles is 2 June


def test_meta_key_without_breakdown_fails(fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows that differ only in a breakdown must never collapse into one silently."""
    monkeypatch.setattr(DeclarativeStream, "clock", staticmethod(lambda: datetime(2023, 6, 2, 12, tzinfo=UTC)))
    insights = json.loads((fixtures_dir / "facebook" / "airbyte_ads_insights_action_product_id.json").read_text())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        meta_routes(mock, fixtures_dir, insights)
        with pytest.raises(Exception, match="two different rows share the primary key"):
            run_tap(TapFacebook, META_CONFIG)


def stream_answer(body: t.Any) -> t.Callable[[t.Any], tuple[int, dict[str, str], str]]:
    """Serve the customer query normally and every daily query with `body`."""
    normal = google_answer(no_results_batch())

    def answer(request: t.Any) -> tuple[int, dict[str, str], str]:
        if " WHERE " in json.loads(request.body)["query"]:
            return 200, {"Content-Type": "application/json"}, json.dumps(body)
        return normal(request)

    return answer


def run_google(body: t.Any) -> list[dict[str, t.Any]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{GOOGLE}/token", json={"access_token": "access-fixture", "expires_in": 3600})
        mock.add_callback(responses.POST, f"{GOOGLE}/v26/customers/1233213210/googleAds:searchStream", callback=stream_answer(body))
        return run_tap(TapGoogleAds, GOOGLE_CONFIG)


def test_google_ads_error_after_batches_fails_the_stream(fixtures_dir: Path, frozen_clock: None) -> None:
    payload = json.loads((fixtures_dir / "google_ads" / "searchstream_rest_customer_daily_clicks_cost.json").read_text())
    failure = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "Request contains an invalid argument."}}

    with pytest.raises(Exception, match=r"ended with an error after 1 batch\(es\) \(error.status=INVALID_ARGUMENT"):
        run_google([payload[0], failure])


@pytest.mark.parametrize("body", [{"results": []}, [{"results": []}, "junk"]])
def test_google_ads_answer_that_is_not_batches_fails(body: t.Any, frozen_clock: None) -> None:
    with pytest.raises(Exception, match="not a JSON array of batches|is not a batch object"):
        run_google(body)


def test_google_ads_missing_key_field_is_named(frozen_clock: None) -> None:
    batch = [{"results": [{"customer": {"resourceName": "customers/1233213210"}, "metrics": {"clicks": "3"}}]}]

    with pytest.raises(Exception, match=r"Stream 'customer_daily_metrics': a record has no value for primary-key field\(s\) \['date'\]"):
        run_google(batch)


def test_google_ads_bookmark_after_today_reads_from_today(frozen_clock: None, caplog: pytest.LogCaptureFixture) -> None:
    state = {
        "bookmarks": {
            "customer_daily_metrics": {
                "partitions": [{"context": {"customer_id": 1233213210}, "replication_key": "date", "replication_key_value": "2030-01-01"}]
            }
        }
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{GOOGLE}/token", json={"access_token": "access-fixture", "expires_in": 3600})
        mock.add_callback(responses.POST, f"{GOOGLE}/v26/customers/1233213210/googleAds:searchStream", callback=google_answer(no_results_batch()))
        run_tap(TapGoogleAds, {**GOOGLE_CONFIG, "conversion_window_days": 1}, state=state)
        queries = [json.loads(call.request.body)["query"] for call in mock.calls if call.request.url.endswith(":searchStream")]
        daily_queries = [query for query in queries if "FROM customer WHERE" in query]

    assert "the bookmark 2030-01-01 is after the account's today 2024-06-10; reading from today instead" in caplog.text
    assert len(daily_queries) == 1
    assert "BETWEEN '2024-06-09' AND '2024-06-10'" in daily_queries[0]


def test_duplicate_customer_ids_are_read_once(frozen_clock: None) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{GOOGLE}/token", json={"access_token": "access-fixture", "expires_in": 3600})
        mock.add_callback(responses.POST, f"{GOOGLE}/v26/customers/1233213210/googleAds:searchStream", callback=google_answer(no_results_batch()))
        messages = run_tap(TapGoogleAds, {**GOOGLE_CONFIG, "customer_ids": ["123-321-3210", "1233213210"]})

    assert len(records_of(messages, "customers")) == 1


def test_empty_customer_list_is_rejected() -> None:
    from singer_sdk.exceptions import ConfigValidationError

    with pytest.raises(ConfigValidationError) as caught:
        run_tap(TapGoogleAds, {**GOOGLE_CONFIG, "customer_ids": []})
    assert "setting 'customer_ids' lists no values; add at least one" in caught.value.errors[0]


def quota_element(delay: str) -> dict[str, t.Any]:
    details = {"quotaErrorDetails": {"rateScope": "DEVELOPER", "retryDelay": delay}}
    failure = {"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "details": details}
    error = {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"errors": [failure]}]}
    return {"error": error}


def test_streamed_long_quota_stops_account(frozen_clock: None) -> None:
    from taps.engine.tap import StreamsStoppedError

    with pytest.raises(StreamsStoppedError, match="requests a wait of 43200 s, longer than the stream's max_wait_seconds"):
        run_google([{"results": []}, quota_element("43200s")])


def test_streamed_throttle_with_short_delay_is_waited_out(frozen_clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(DeclarativeStream, "retry_sleep", staticmethod(waits.append))
    row = {"customer": {"resourceName": "customers/1233213210"}, "segments": {"date": "2024-06-10"}, "metrics": {"clicks": "2"}}
    answers = iter([[quota_element("3s")], [{"results": [row]}]])

    messages = run_google_with(lambda: next(answers, [{"results": [row]}]))

    assert waits[0] == 3.0
    assert [r["clicks"] for r in records_of(messages, "customer_daily_metrics") if r["date"] == "2024-06-10"] == [2]


@contextlib.contextmanager
def google_routes(next_body: t.Callable[[], t.Any]) -> t.Iterator[None]:
    """Serve customer 1233213210 (daily totals from `next_body`) and refuse customer 2222222222."""
    normal = google_answer(no_results_batch())

    def answer(request: t.Any) -> tuple[int, dict[str, str], str]:
        if " FROM customer WHERE " in json.loads(request.body)["query"]:
            return 200, {"Content-Type": "application/json"}, json.dumps(next_body())
        return normal(request)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{GOOGLE}/token", json={"access_token": "access-fixture", "expires_in": 3600})
        mock.add_callback(responses.POST, f"{GOOGLE}/v26/customers/1233213210/googleAds:searchStream", callback=answer)
        mock.add(
            responses.POST,
            f"{GOOGLE}/v26/customers/2222222222/googleAds:searchStream",
            status=403,
            json={"error": {"code": 403, "status": "PERMISSION_DENIED"}},
        )
        yield


def run_google_with(next_body: t.Callable[[], t.Any]) -> list[dict[str, t.Any]]:
    with google_routes(next_body):
        return run_tap(TapGoogleAds, GOOGLE_CONFIG)


def test_refused_account_keeps_the_other_accounts_bookmarks(frozen_clock: None) -> None:
    from taps.engine.tap import StreamsStoppedError
    from tests.singer_run import captured_stdout, final_state, parse_messages

    row = {"customer": {"resourceName": "customers/1233213210"}, "segments": {"date": "2024-06-10"}, "metrics": {"clicks": "2"}}
    config = {**GOOGLE_CONFIG, "customer_ids": ["123-321-3210", "222-222-2222"]}
    with google_routes(lambda: [{"results": [row]}]), captured_stdout() as raw:
        tap = TapGoogleAds(config=config, parse_env_config=False)
        with pytest.raises(StreamsStoppedError, match="HTTP 403"):
            tap.sync_all()

    state = final_state(parse_messages(raw.getvalue()))
    partitions = state["bookmarks"]["customer_daily_metrics"]["partitions"]
    assert [(p["context"], p.get("replication_key_value")) for p in partitions] == [({"customer_id": 1233213210}, "2024-06-10")]


def test_row_after_its_window_never_becomes_the_bookmark(frozen_clock: None, caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        {"customer": {"resourceName": "customers/1233213210"}, "segments": {"date": "2024-06-09"}, "metrics": {"clicks": "1"}},
        {"customer": {"resourceName": "customers/1233213210"}, "segments": {"date": "2030-01-01"}, "metrics": {"clicks": "1"}},
    ]

    messages = run_google_with(lambda: [{"results": rows}])

    partitions = final_state(messages)["bookmarks"]["customer_daily_metrics"]["partitions"]
    # The bookmark is the last day read (today in the account's zone), never the row's 2030-01-01.
    assert partitions[0]["replication_key_value"] == "2024-06-10"
    assert "1 row(s) were dated outside the day range they were requested for" in caplog.text
    assert len(records_of(messages, "customer_daily_metrics")) == 2
