"""Tests of the Google Ads REST emulator: OAuth, header checks, GAQL, batches and throttling."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.ads_data import GOOGLE_MANAGER_ID, GOOGLE_QUOTA_CUSTOMER_ID, AdsWorld
from sandbox.google_ads_api import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_DEVELOPER_TOKEN,
    DEMO_REFRESH_TOKEN,
    GoogleAdsSession,
    _LikePattern,
    handle_google_ads_request,
)
from sandbox.server import start_server
from sandbox.stripe_api import DEMO_API_KEY
from sandbox.stripe_data import StripeWorld

SEED = 7
ANCHOR = int(datetime(2026, 11, 1, 15, 0, tzinfo=UTC).timestamp())
US = "4567890123"
NZ = "7890123456"
TOKEN_FORM = (
    f"grant_type=refresh_token&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
    f"&refresh_token={DEMO_REFRESH_TOKEN}"
)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CUSTOMER_QUERY = (
    "SELECT customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone, "
    "customer.manager, customer.test_account, customer.status FROM customer"
)
AD_METRICS_QUERY = (
    "SELECT customer.id, campaign.id, ad_group.id, ad_group_ad.ad.id, segments.date, "
    "metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, "
    "metrics.conversions_value, metrics.all_conversions, metrics.view_through_conversions "
    "FROM ad_group_ad WHERE segments.date BETWEEN '{start}' AND '{end}'"
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def world() -> AdsWorld:
    return AdsWorld(SEED, ANCHOR)


@pytest.fixture
def session() -> GoogleAdsSession:
    return GoogleAdsSession()


def grant(world: AdsWorld, session: GoogleAdsSession, form: str = TOKEN_FORM) -> tuple[int, dict[str, Any]]:
    status, _, body = handle_google_ads_request(
        world, session, "POST", "/google/oauth2/token", "", FORM, form.encode()
    )
    return status, json.loads(body)


def auth_headers(world: AdsWorld, session: GoogleAdsSession, **changes: str | None) -> dict[str, str]:
    """Valid headers for a client customer; a value of None removes that header."""
    _, token = grant(world, session)
    headers: dict[str, str | None] = {
        "Authorization": f"Bearer {token['access_token']}",
        "developer-token": DEMO_DEVELOPER_TOKEN,
        "login-customer-id": GOOGLE_MANAGER_ID,
        **changes,
    }
    return {name: value for name, value in headers.items() if value is not None}


def search(
    world: AdsWorld,
    session: GoogleAdsSession,
    query: str,
    customer: str = US,
    headers: dict[str, str] | None = None,
    version: str = "v26",
) -> tuple[int, Any]:
    status, _, body = search_raw(world, session, query, customer, headers, version)
    return status, json.loads(body)


def search_raw(
    world: AdsWorld,
    session: GoogleAdsSession,
    query: str,
    customer: str = US,
    headers: dict[str, str] | None = None,
    version: str = "v26",
) -> tuple[int, dict[str, str], bytes]:
    return handle_google_ads_request(
        world,
        session,
        "POST",
        f"/{version}/customers/{customer}/googleAds:searchStream",
        "",
        headers if headers is not None else auth_headers(world, session),
        json.dumps({"query": query}).encode(),
    )


def results(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for batch in batches for row in batch.get("results", [])]


def failure(payload: dict[str, Any]) -> dict[str, Any]:
    """Return the single GoogleAdsError of an error body, after checking the envelope."""
    error = payload["error"]
    assert set(error) == {"code", "message", "status", "details"}
    [detail] = error["details"]
    assert detail["@type"].startswith("type.googleapis.com/google.ads.googleads.v")
    assert detail["@type"].endswith(".errors.GoogleAdsFailure")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", detail["requestId"])
    [single] = detail["errors"]
    return single


def no_throttle_session() -> GoogleAdsSession:
    """A session whose next search is number 4, so the next five searches are not throttled."""
    session = GoogleAdsSession()
    for _ in range(3):
        session.next_search()
    return session


# OAuth token endpoint


def test_token_grant_answers_bearer(world: AdsWorld, session: GoogleAdsSession) -> None:
    status, payload = grant(world, session)

    assert status == 200
    assert set(payload) == {"access_token", "expires_in", "token_type", "scope"}
    assert payload["expires_in"] == 3599
    assert payload["token_type"] == "Bearer"
    assert payload["scope"] == "https://www.googleapis.com/auth/adwords"
    assert session.token_state(payload["access_token"]) == "valid"
    assert session.counts() == {"token": {"served": 1}}


def test_token_grant_json_body(world: AdsWorld, session: GoogleAdsSession) -> None:
    body = json.dumps({
        "grant_type": "refresh_token",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": DEMO_REFRESH_TOKEN,
    }).encode()

    status, _, answer = handle_google_ads_request(
        world, session, "POST", "/google/oauth2/token", "", {"Content-Type": "application/json"}, body
    )

    assert status == 200
    assert json.loads(answer)["access_token"].startswith("ya29.")


def test_token_tokens_differ(world: AdsWorld, session: GoogleAdsSession) -> None:
    first = grant(world, session)[1]["access_token"]
    second = grant(world, session)[1]["access_token"]

    assert first != second


@pytest.mark.parametrize(
    "form",
    [
        TOKEN_FORM.replace(DEMO_CLIENT_SECRET, "wrong-secret"),
        TOKEN_FORM.replace(DEMO_REFRESH_TOKEN, "old-refresh-token"),
        TOKEN_FORM.replace(DEMO_CLIENT_ID, "other-client"),
    ],
)
def test_token_wrong_credentials_invalid_grant(world: AdsWorld, session: GoogleAdsSession, form: str) -> None:
    status, payload = grant(world, session, form)

    assert status == 400
    assert payload == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    assert session.counts() == {"token": {"failed": 1}}


def test_token_other_grant_type(world: AdsWorld, session: GoogleAdsSession) -> None:
    status, payload = grant(world, session, TOKEN_FORM.replace("refresh_token&", "password&", 1))

    assert status == 400
    assert payload["error"] == "unsupported_grant_type"


def test_token_missing_parameter(world: AdsWorld, session: GoogleAdsSession) -> None:
    form = f"grant_type=refresh_token&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"

    status, payload = grant(world, session, form)

    assert status == 400
    assert payload == {"error": "invalid_request", "error_description": "Missing required parameter: refresh_token"}


def test_token_expires_after_lifetime(world: AdsWorld) -> None:
    clock = Clock(1_000.0)
    session = GoogleAdsSession(clock=clock)
    headers = auth_headers(world, session)

    clock.now = 1_000.0 + 3_598
    fresh_status, _ = search(world, session, CUSTOMER_QUERY, headers=headers)
    clock.now = 1_000.0 + 3_600
    expired_status, payload = search(world, session, CUSTOMER_QUERY, headers=headers)

    assert fresh_status == 200
    assert expired_status == 401
    assert payload["error"]["status"] == "UNAUTHENTICATED"
    assert failure(payload)["errorCode"] == {"authenticationError": "OAUTH_TOKEN_EXPIRED"}


# Header checks


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"Authorization": None}, 401, {"authenticationError": "OAUTH_TOKEN_HEADER_INVALID"}),
        ({"Authorization": "Bearer ya29.never-issued"}, 401, {"authenticationError": "OAUTH_TOKEN_INVALID"}),
        ({"Authorization": "Basic abc"}, 401, {"authenticationError": "OAUTH_TOKEN_HEADER_INVALID"}),
        ({"developer-token": None}, 401, {"authenticationError": "DEVELOPER_TOKEN_INVALID"}),
        ({"developer-token": "other-developer-token"}, 401, {"authenticationError": "DEVELOPER_TOKEN_INVALID"}),
        ({"login-customer-id": None}, 403, {"authorizationError": "USER_PERMISSION_DENIED"}),
        (
            {"login-customer-id": "111-222-3334"},
            403,
            {"authorizationError": "INVALID_LOGIN_CUSTOMER_ID_SERVING_CUSTOMER_ID_COMBINATION"},
        ),
    ],
)
def test_header_errors(
    world: AdsWorld, session: GoogleAdsSession, changes: dict[str, str | None], status: int, code: dict[str, str]
) -> None:
    headers = auth_headers(world, session, **changes)

    answer_status, payload = search(world, session, CUSTOMER_QUERY, headers=headers)

    assert answer_status == status
    assert payload["error"]["code"] == status
    assert payload["error"]["status"] == {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}[status]
    assert failure(payload)["errorCode"] == code
    assert session.counts()["search_stream"] == {"failed": 1}


def test_header_errors_hide_secrets(world: AdsWorld, session: GoogleAdsSession) -> None:
    wrong_token = "my-secret-developer-token-1234"
    wrong_bearer = "ya29.secret-bearer-5678"

    _, _, body = search_raw(world, session, CUSTOMER_QUERY, headers=auth_headers(world, session, **{"developer-token": wrong_token}))
    _, _, other = search_raw(world, session, CUSTOMER_QUERY, headers=auth_headers(world, session, Authorization=f"Bearer {wrong_bearer}"))

    assert wrong_token.encode() not in body
    assert wrong_bearer.encode() not in other


def test_header_names_case_insensitive(world: AdsWorld, session: GoogleAdsSession) -> None:
    headers = {name.upper(): value for name, value in auth_headers(world, session).items()}

    status, _ = search(world, session, CUSTOMER_QUERY, headers=headers)

    assert status == 200


def test_manager_needs_no_login_header(world: AdsWorld, session: GoogleAdsSession) -> None:
    headers = auth_headers(world, session, **{"login-customer-id": None})

    status, batches = search(world, session, CUSTOMER_QUERY, customer=GOOGLE_MANAGER_ID, headers=headers)
    _, campaigns = search(world, session, "SELECT campaign.id FROM campaign", customer=GOOGLE_MANAGER_ID, headers=headers)

    assert status == 200
    assert results(batches)[0]["customer"]["manager"] is True
    assert "results" not in campaigns[0]


@pytest.mark.parametrize(("customer", "status", "code"), [
    ("1234567890", 403, {"authorizationError": "CUSTOMER_NOT_ENABLED"}),
    ("456-789-0123", 400, {"authenticationError": "CLIENT_CUSTOMER_ID_INVALID"}),
])
def test_unknown_customer_rejected(
    world: AdsWorld, session: GoogleAdsSession, customer: str, status: int, code: dict[str, str]
) -> None:
    answer_status, payload = search(world, session, CUSTOMER_QUERY, customer=customer)

    assert answer_status == status
    assert failure(payload)["errorCode"] == code


@pytest.mark.parametrize("version", ["v24", "v25", "v26"])
def test_supported_versions_served(world: AdsWorld, version: str) -> None:
    session = no_throttle_session()

    status, batches = search(world, session, CUSTOMER_QUERY, version=version)
    error_status, payload = search(world, session, "SELECT campaign.nope FROM campaign", version=version)

    assert status == 200
    assert results(batches)[0]["customer"]["id"] == US
    assert error_status == 400
    assert payload["error"]["details"][0]["@type"] == (
        f"type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v19/customers/4567890123/googleAds:searchStream",
        "/v27/customers/4567890123/googleAds:searchStream",
        "/v26/customers/4567890123/googleAds:search",
        "/v26/customers:listAccessibleCustomers",
    ],
)
def test_other_paths_not_found(world: AdsWorld, session: GoogleAdsSession, path: str) -> None:
    status, _, body = handle_google_ads_request(
        world, session, "POST", path, "", auth_headers(world, session), b'{"query": "SELECT customer.id FROM customer"}'
    )
    payload = json.loads(body)

    assert status == 404
    assert payload["error"]["status"] == "NOT_FOUND"
    assert "googleAds:searchStream" in failure(payload)["message"] or "not served" in failure(payload)["message"]


def test_get_method_not_found(world: AdsWorld, session: GoogleAdsSession) -> None:
    status, _, body = handle_google_ads_request(
        world, session, "GET", f"/v26/customers/{US}/googleAds:searchStream", "", auth_headers(world, session), b""
    )

    assert status == 404
    assert failure(json.loads(body))["message"] == "googleAds:searchStream accepts only POST."


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", {"requestError": "INVALID_INPUT"}),
        (b'{"queries": "SELECT customer.id FROM customer"}', {"requestError": "REQUIRED_FIELD_MISSING"}),
        (b'{"query": "   "}', {"requestError": "REQUIRED_FIELD_MISSING"}),
    ],
)
def test_bad_body_rejected(world: AdsWorld, body: bytes, code: dict[str, str]) -> None:
    session = no_throttle_session()

    status, _, answer = handle_google_ads_request(
        world, session, "POST", f"/v26/customers/{US}/googleAds:searchStream", "", auth_headers(world, session), body
    )

    assert status == 400
    assert failure(json.loads(answer))["errorCode"] == code


# GAQL and results


def test_customer_row_proto3_json(world: AdsWorld, session: GoogleAdsSession) -> None:
    status, batches = search(world, session, CUSTOMER_QUERY, customer=NZ)

    assert status == 200
    assert len(batches) == 1
    assert batches[0]["fieldMask"] == (
        "customer.id,customer.descriptiveName,customer.currencyCode,customer.timeZone,"
        "customer.manager,customer.testAccount,customer.status"
    )
    # manager and test_account are false, so proto3 JSON leaves them out.
    assert batches[0]["results"] == [{
        "customer": {
            "resourceName": f"customers/{NZ}",
            "id": NZ,
            "descriptiveName": "Spendlake Demo NZ",
            "currencyCode": "NZD",
            "timeZone": "Pacific/Auckland",
            "status": "ENABLED",
        }
    }]
    assert re.fullmatch(r"\d+", batches[0]["queryResourceConsumption"])


def test_entity_queries_match_world(world: AdsWorld) -> None:
    session = no_throttle_session()

    _, campaigns = search(world, session, (
        "SELECT customer.id, campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type, "
        "campaign.bidding_strategy_type, campaign.start_date_time, campaign.end_date_time, campaign.campaign_budget "
        "FROM campaign"
    ))
    _, groups = search(world, session, "SELECT campaign.id, ad_group.id, ad_group.name, ad_group.status, ad_group.type, ad_group.campaign FROM ad_group")
    _, ads = search(world, session, (
        "SELECT campaign.id, ad_group.id, ad_group_ad.ad.id, ad_group_ad.ad.name, ad_group_ad.ad.type, "
        "ad_group_ad.ad.final_urls, ad_group_ad.status FROM ad_group_ad"
    ))
    _, budgets = search(world, session, (
        "SELECT customer.id, customer.currency_code, campaign_budget.id, campaign_budget.name, "
        "campaign_budget.amount_micros, campaign_budget.delivery_method, campaign_budget.status FROM campaign_budget"
    ))

    campaign_rows = results(campaigns)
    brand = next(row["campaign"] for row in campaign_rows if row["campaign"]["name"] == "brand_search")
    expected = next(c for c in world.google_campaigns(US) if c.name == "brand_search")
    assert [row["campaign"]["id"] for row in campaign_rows] == [str(c.id) for c in world.google_campaigns(US)]
    assert brand["resourceName"] == f"customers/{US}/campaigns/{expected.id}"
    assert brand["campaignBudget"] == f"customers/{US}/campaignBudgets/{expected.budget_id}"
    assert brand["startDateTime"] == f"{expected.start_date.isoformat()} 00:00:00"
    assert brand["endDateTime"] == "2037-12-30 23:59:59"
    assert {row["campaign"]["advertisingChannelType"] for row in campaign_rows} >= {"SEARCH", "SHOPPING"}
    assert len(results(groups)) == len(world.google_ad_groups(US))
    assert all(row["adGroup"]["campaign"] == f"customers/{US}/campaigns/{row['campaign']['id']}" for row in results(groups))
    ad_rows = results(ads)
    assert len(ad_rows) == len(world.google_ads(US))
    assert all(row["adGroupAd"]["resourceName"] == f"customers/{US}/adGroupAds/{row['adGroup']['id']}~{row['adGroupAd']['ad']['id']}" for row in ad_rows)
    assert all(row["adGroupAd"]["ad"]["finalUrls"][0].startswith("https://shop.example.com/") for row in ad_rows)
    budget_rows = results(budgets)
    assert len(budget_rows) == 10
    assert all(re.fullmatch(r"\d+000000", row["campaignBudget"]["amountMicros"]) for row in budget_rows)
    assert {row["customer"]["currencyCode"] for row in budget_rows} == {"USD"}


def test_every_resource_has_resource_name(world: AdsWorld, session: GoogleAdsSession) -> None:
    query = AD_METRICS_QUERY.format(start="2026-10-20", end="2026-10-20")

    _, batches = search(world, session, query)

    for row in results(batches):
        assert row["customer"]["resourceName"] == f"customers/{US}"
        assert row["campaign"]["resourceName"].startswith(f"customers/{US}/campaigns/")
        assert row["adGroup"]["resourceName"].startswith(f"customers/{US}/adGroups/")
        assert row["adGroupAd"]["ad"]["resourceName"] == f"customers/{US}/ads/{row['adGroupAd']['ad']['id']}"
        assert "resourceName" not in row["metrics"]


def test_metrics_int64_strings_and_omitted_zeros(world: AdsWorld, session: GoogleAdsSession) -> None:
    day = world.today(US) - timedelta(days=10)
    query = AD_METRICS_QUERY.format(start=day, end=day)
    expected = {row.ad_id: row for row in world.google_ad_days(US) if row.day == day}

    _, batches = search(world, session, query)
    rows = results(batches)

    assert len(rows) == len(expected)
    for row in rows:
        source = expected[int(row["adGroupAd"]["ad"]["id"])]
        metrics = row["metrics"]
        assert metrics["impressions"] == str(source.impressions)
        assert metrics.get("clicks") == (str(source.clicks) if source.clicks else None)
        assert metrics.get("costMicros") == (str(source.cost_micros) if source.cost_micros else None)
        if source.conversions_centi:
            assert metrics["conversions"] == source.conversions_centi / 100
            assert isinstance(metrics["conversions"], float)
        else:
            assert "conversions" not in metrics
            assert "conversionsValue" not in metrics
        assert row["segments"] == {"date": day.isoformat()}
    assert any("conversions" not in row["metrics"] for row in rows)


def test_where_between_limits_days(world: AdsWorld, session: GoogleAdsSession) -> None:
    query = (
        "SELECT campaign.id, segments.date, metrics.clicks FROM campaign "
        "WHERE segments.date BETWEEN '2026-10-01' AND '2026-10-07' AND campaign.status = 'ENABLED'"
    )

    _, batches = search(world, session, query)
    rows = results(batches)
    enabled = {str(c.id) for c in world.google_campaigns(US) if c.status == "ENABLED"}

    assert {row["segments"]["date"] for row in rows} == {f"2026-10-0{day}" for day in range(1, 8)}
    assert {row["campaign"]["id"] for row in rows} <= enabled
    assert len({(row["campaign"]["id"], row["segments"]["date"]) for row in rows}) == len(rows)
    assert [row["segments"]["date"] for row in rows] == sorted(row["segments"]["date"] for row in rows)


@pytest.mark.parametrize(
    ("condition", "days"),
    [
        ("segments.date = '2026-10-05'", {"2026-10-05"}),
        ("segments.date >= '2026-10-30'", {"2026-10-30", "2026-10-31", "2026-11-01"}),
        ("segments.date > '2026-10-30' AND segments.date <= '2026-10-31'", {"2026-10-31"}),
        ("segments.date IN ('2026-10-02', '2026-10-04')", {"2026-10-02", "2026-10-04"}),
        ("segments.date DURING YESTERDAY", {"2026-10-31"}),
    ],
)
def test_where_date_operators(world: AdsWorld, condition: str, days: set[str]) -> None:
    session = no_throttle_session()

    status, batches = search(world, session, f"SELECT metrics.clicks FROM customer WHERE {condition}")
    _, segmented = search(world, session, (
        f"SELECT segments.date, metrics.clicks FROM customer WHERE {condition} "
        "AND segments.date BETWEEN '2026-01-01' AND '2026-12-31'"
    ))
    segmented_days = {row["segments"]["date"] for row in results(segmented)}
    total = sum(row.clicks for row in world.google_ad_days(US) if row.day.isoformat() in days)

    assert status == 200
    assert int(results(batches)[0]["metrics"]["clicks"]) == total
    assert segmented_days == days


def test_during_uses_customer_zone(world: AdsWorld, session: GoogleAdsSession) -> None:
    query = "SELECT segments.date, metrics.impressions FROM customer WHERE segments.date DURING TODAY"

    _, us = search(world, session, query, customer=US)
    _, nz = search(world, session, query, customer=NZ)

    assert [row["segments"]["date"] for row in results(us)] == ["2026-11-01"]
    assert [row["segments"]["date"] for row in results(nz)] == ["2026-11-02"]


def test_status_filters_and_order(world: AdsWorld) -> None:
    session = no_throttle_session()

    _, not_removed = search(world, session, "SELECT campaign.name FROM campaign WHERE campaign.status != 'REMOVED' ORDER BY campaign.name DESC")
    _, chosen = search(world, session, "SELECT campaign.name, campaign.status FROM campaign WHERE campaign.status IN ('PAUSED', 'REMOVED')")
    _, liked = search(world, session, "SELECT campaign.name FROM campaign WHERE campaign.name LIKE '%_search' LIMIT 2")

    names = [row["campaign"]["name"] for row in results(not_removed)]
    assert len(names) == 9
    assert "black_friday_2025" not in names
    assert names == sorted(names, reverse=True)
    assert sorted(row["campaign"]["status"] for row in results(chosen)) == ["PAUSED", "REMOVED"]
    assert [row["campaign"]["name"] for row in results(liked)] == ["brand_search", "generic_search"]


def like_regex(pattern: str) -> re.Pattern[str]:
    """Translate a LIKE pattern to a regular expression, which is slow but obviously right."""
    wildcards = {"%": ".*", "_": "."}
    parts = [wildcards.get(char, re.escape(char)) for char in pattern]
    return re.compile("".join(parts), re.DOTALL)


def step_limit(pattern: str, text: str) -> int:
    return (len(pattern) + 1) * (len(text) + 1)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("", "", True),
        ("", "a", False),
        ("%", "", True),
        ("%", "brand_search", True),
        ("_", "", False),
        ("_", "b", True),
        ("brand_search", "brand_search", True),
        ("brand_search", "brandXsearch", True),
        ("brand_search", "brand_searches", False),
        ("Brand%", "brand_search", False),
        ("%search", "brand_search", True),
        ("%search", "dynamic_search_catchall", False),
        ("%_search%", "dynamic_search_catchall", True),
        ("b%d%h", "brand_search", True),
        ("b%d%h", "brand_searches", False),
        ("%%%", "x", True),
        ("a%b%c", "abcbc", True),
        ("a%b%c", "acb", False),
        ("%", "two\nlines", True),
    ],
)
def test_like_pattern_cases(pattern: str, text: str, expected: bool) -> None:
    matched, steps = _LikePattern(pattern).match_steps(text)

    assert matched is expected
    assert steps <= step_limit(pattern, text)


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.text(alphabet="ab%_", max_size=8),
    text=st.text(alphabet="ab%_\n", max_size=10),
)
def test_like_pattern_agrees_with_regex(pattern: str, text: str) -> None:
    matched, steps = _LikePattern(pattern).match_steps(text)

    assert matched is bool(like_regex(pattern).fullmatch(text))
    assert steps <= step_limit(pattern, text)


def test_like_thirty_wildcards_stay_bounded() -> None:
    # A backtracking regular expression tries about C(60, 29) ways to place the 29 a's here.
    pattern = "%a" * 29 + "%b"
    missing = "a" * 60
    present = "a" * 59 + "b"

    missed, missed_steps = _LikePattern(pattern).match_steps(missing)
    found, found_steps = _LikePattern(pattern).match_steps(present)

    assert pattern.count("%") == 30
    assert missed is False
    assert missed_steps <= step_limit(pattern, missing)
    assert found is True
    assert found_steps <= step_limit(pattern, present)


def test_like_query_with_many_wildcards(world: AdsWorld) -> None:
    session = no_throttle_session()
    pattern = "%" * 30 + "_search"

    _, liked = search(world, session, f"SELECT campaign.name FROM campaign WHERE campaign.name LIKE '{pattern}'")
    _, unliked = search(world, session, f"SELECT campaign.name FROM campaign WHERE campaign.name NOT LIKE '{pattern}'")

    assert sorted(row["campaign"]["name"] for row in results(liked)) == [
        "brand_search", "competitor_search", "generic_search", "local_inventory_search", "spring_sale_search",
    ]
    assert sorted(row["campaign"]["name"] for row in results(unliked)) == [
        "black_friday_2025", "display_remarketing", "dynamic_search_catchall", "shopping_pmax", "youtube_awareness",
    ]


def test_not_in_excludes_values(world: AdsWorld) -> None:
    session = no_throttle_session()

    _, kept = search(world, session, "SELECT campaign.status FROM campaign WHERE campaign.status NOT IN ('ENABLED', 'PAUSED')")

    assert [row["campaign"]["status"] for row in results(kept)] == ["REMOVED"]


def test_metrics_without_dates_are_totals(world: AdsWorld, session: GoogleAdsSession) -> None:
    _, batches = search(world, session, "SELECT campaign.id, metrics.cost_micros FROM campaign")
    expected = Counter()
    for row in world.google_ad_days(US):
        expected[str(row.campaign_id)] += row.cost_micros

    assert {row["campaign"]["id"]: int(row["metrics"]["costMicros"]) for row in results(batches)} == dict(expected)


def test_campaign_sums_match_ads(world: AdsWorld) -> None:
    session = no_throttle_session()
    window = "segments.date BETWEEN '2026-09-01' AND '2026-09-30'"

    _, campaigns = search(world, session, f"SELECT campaign.id, metrics.clicks, metrics.conversions FROM campaign WHERE {window}")
    _, ads = search(world, session, f"SELECT campaign.id, metrics.clicks, metrics.conversions FROM ad_group_ad WHERE {window}")

    per_campaign = {row["campaign"]["id"]: int(row["metrics"]["clicks"]) for row in results(campaigns)}
    from_ads: Counter[str] = Counter()
    for row in results(ads):
        from_ads[row["campaign"]["id"]] += int(row["metrics"].get("clicks", "0"))
    assert per_campaign == dict(from_ads)


@pytest.mark.parametrize(
    ("query", "code", "trigger"),
    [
        ("SELECT campaign.id, campaign.budget_name FROM campaign", "UNRECOGNIZED_FIELD", "campaign.budget_name"),
        ("SELECT metrics.clicks FROM keyword_view", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", "keyword_view"),
        ("SELECT ad_group.id FROM campaign", "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE", "ad_group.id"),
        ("SELECT metrics.clicks FROM campaign_budget", "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE", "metrics.clicks"),
        ("SELECT campaign.id, segments.date, metrics.clicks FROM campaign", "EXPECTED_FILTERS_ON_DATE_RANGE", None),
        ("SELECT segments.date FROM campaign WHERE segments.date >= '2026-10-01'", "EXPECTED_FILTERS_ON_DATE_RANGE", None),
        ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-10-09' AND '2026-10-01'", "DATE_RANGE_TOO_NARROW", None),
        ("SELECT campaign.id FROM campaign WHERE segments.date = '2026-13-01'", "BAD_VALUE", "2026-13-01"),
        ("SELECT campaign.id FROM campaign WHERE campaign.status = 'RUNNING'", "BAD_ENUM_CONSTANT", "RUNNING"),
        ("SELECT campaign.id FROM campaign WHERE campaign.id = 'abc'", "BAD_NUMBER", None),
        ("campaign.id FROM campaign", "EXPECTED_SELECT", None),
        ("SELECT campaign.id campaign", "EXPECTED_FROM", None),
        ("SELECT campaign.id FROM campaign ORDER campaign.id", "EXPECTED_BY", None),
        ("SELECT campaign.id FROM campaign LIMIT 0", "BAD_LIMIT_VALUE", None),
        ("SELECT campaign.id FROM campaign WHERE campaign.name ~ 'x'", "UNEXPECTED_INPUT", None),
        ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-10-01' '2026-10-02'", "EXPECTED_AND", None),
        ("SELECT campaign.id FROM campaign WHERE", "UNEXPECTED_END_OF_QUERY", None),
        ("SELECT campaign.id FROM campaign WHERE campaign.name NOT BETWEEN 'a' AND 'b'", "UNEXPECTED_INPUT", "BETWEEN"),
        ("SELECT campaign.id FROM campaign WHERE campaign.name NOT", "UNEXPECTED_END_OF_QUERY", None),
    ],
)
def test_query_errors(world: AdsWorld, query: str, code: str, trigger: str | None) -> None:
    session = no_throttle_session()

    status, payload = search(world, session, query)

    assert status == 400
    assert payload["error"]["status"] == "INVALID_ARGUMENT"
    error = failure(payload)
    assert error["errorCode"] == {"queryError": code}
    assert error["message"]
    if trigger is not None:
        assert error["trigger"] == {"stringValue": trigger}


def test_unknown_field_message(world: AdsWorld, session: GoogleAdsSession) -> None:
    _, payload = search(world, session, "SELECT campaign.id, metrics.cost FROM campaign")

    assert failure(payload)["message"] == "Unrecognized field in the query: 'metrics.cost'."


# Batches


def test_long_query_split_into_batches(world: AdsWorld, session: GoogleAdsSession) -> None:
    start, end = world.first_day(US), world.today(US)
    expected = len(world.google_ad_days(US))

    status, batches = search(world, session, AD_METRICS_QUERY.format(start=start, end=end))

    assert status == 200
    assert expected > 1_500
    assert len(batches) == -(-expected // 500)
    assert [len(batch["results"]) for batch in batches[:-1]] == [500] * (len(batches) - 1)
    assert 0 < len(batches[-1]["results"]) <= 500
    assert len(results(batches)) == expected
    assert ["queryResourceConsumption" in batch for batch in batches] == [False] * (len(batches) - 1) + [True]
    assert len({batch["requestId"] for batch in batches}) == 1
    assert {batch["fieldMask"] for batch in batches} == {
        "customer.id,campaign.id,adGroup.id,adGroupAd.ad.id,segments.date,metrics.impressions,metrics.clicks,"
        "metrics.costMicros,metrics.conversions,metrics.conversionsValue,metrics.allConversions,"
        "metrics.viewThroughConversions"
    }


def test_no_match_single_batch_without_results(world: AdsWorld, session: GoogleAdsSession) -> None:
    skipped = world.no_delivery_day(US)

    status, batches = search(world, session, AD_METRICS_QUERY.format(start=skipped, end=skipped))

    assert status == 200
    assert len(batches) == 1
    assert set(batches[0]) == {"fieldMask", "requestId", "queryResourceConsumption"}


def test_late_day_conversions_grow_via_api(world: AdsWorld) -> None:
    late = world.late_attribution_day(NZ)
    query = f"SELECT metrics.conversions FROM customer WHERE segments.date = '{late}'"
    later_world = AdsWorld(SEED, ANCHOR, (ANCHOR + 60, ANCHOR + 120))

    _, before = search(world, no_throttle_session(), query, customer=NZ)
    _, after = search(later_world, no_throttle_session(), query, customer=NZ)

    clicked = sum(1 for row in world.google_ad_days(NZ) if row.day == late and row.clicks)
    growth = results(after)[0]["metrics"]["conversions"] - results(before)[0]["metrics"]["conversions"]
    assert growth == pytest.approx(2 * clicked)


# Throttling and quota


def test_throttle_schedule_every_eighth_from_third(world: AdsWorld, session: GoogleAdsSession) -> None:
    headers = auth_headers(world, session)

    statuses = [search(world, session, CUSTOMER_QUERY, headers=headers)[0] for _ in range(20)]

    throttled = [number for number, status in enumerate(statuses, start=1) if status == 429]
    assert throttled == [3, 11, 19]
    assert session.counts()["search_stream"] == {"served": 17, "throttled": 3}


def test_throttle_answer_shape(world: AdsWorld, session: GoogleAdsSession) -> None:
    headers = auth_headers(world, session)
    search(world, session, CUSTOMER_QUERY, headers=headers)
    search(world, session, CUSTOMER_QUERY, headers=headers)

    status, payload = search(world, session, CUSTOMER_QUERY, headers=headers)

    assert status == 429
    assert payload["error"]["status"] == "RESOURCE_EXHAUSTED"
    error = failure(payload)
    assert error["errorCode"] == {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"}
    assert error["details"] == {
        "quotaErrorDetails": {"rateScope": "ACCOUNT", "rateName": "Requests per minute", "retryDelay": "1s"}
    }


def test_rejected_requests_skip_schedule(world: AdsWorld, session: GoogleAdsSession) -> None:
    headers = auth_headers(world, session)
    bad = auth_headers(world, session, **{"developer-token": "wrong"})

    statuses = []
    for _ in range(3):
        search(world, session, CUSTOMER_QUERY, headers=bad)
        statuses.append(search(world, session, CUSTOMER_QUERY, headers=headers)[0])

    assert statuses == [200, 200, 429]


def test_quota_customer_always_exhausted(world: AdsWorld, session: GoogleAdsSession) -> None:
    headers = auth_headers(world, session)

    answers = [search(world, session, CUSTOMER_QUERY, customer=GOOGLE_QUOTA_CUSTOMER_ID, headers=headers) for _ in range(4)]
    follow_up = [search(world, session, CUSTOMER_QUERY, headers=headers)[0] for _ in range(3)]

    for status, payload in answers:
        assert status == 429
        error = failure(payload)
        assert error["errorCode"] == {"quotaError": "RESOURCE_EXHAUSTED"}
        assert error["details"]["quotaErrorDetails"] == {
            "rateScope": "DEVELOPER",
            "rateName": "Number of operations for basic access",
            "retryDelay": "43200s",
        }
    assert follow_up == [200, 200, 429]
    assert session.counts()["search_stream"] == {"quota_exhausted": 4, "served": 2, "throttled": 1}


def test_same_requests_same_bytes(world: AdsWorld) -> None:
    query = AD_METRICS_QUERY.format(start="2026-10-01", end="2026-10-31")
    bodies = []
    for _ in range(2):
        session = GoogleAdsSession()
        headers = auth_headers(world, session)
        answers = [search_raw(world, session, query, headers=headers)[2] for _ in range(4)]
        bodies.append(answers)

    assert bodies[0] == bodies[1]
    assert AdsWorld(SEED, ANCHOR).google_ad_days(US) == world.google_ad_days(US)


# Through a real server


def test_server_serves_google_and_stripe() -> None:
    stripe_world = StripeWorld(SEED, ANCHOR)
    with start_server(stripe_world) as server:
        token = requests.post(f"{server.url}/google/oauth2/token", data={
            "grant_type": "refresh_token",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "refresh_token": DEMO_REFRESH_TOKEN,
        }, timeout=10).json()["access_token"]
        headers = {
            "Authorization": f"Bearer {token}",
            "developer-token": DEMO_DEVELOPER_TOKEN,
            "login-customer-id": GOOGLE_MANAGER_ID,
        }
        url = f"{server.url}/v26/customers/{NZ}/googleAds:searchStream"
        query = AD_METRICS_QUERY.format(start="2026-08-05", end="2026-11-02")
        answers = [requests.post(url, json={"query": query}, headers=headers, timeout=30) for _ in range(3)]
        charges = requests.get(f"{server.url}/v1/charges?limit=3", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}, timeout=10)
        stripe_customers = requests.get(f"{server.url}/v1/customers?limit=1", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}, timeout=10)
        counts = server.google_ads_session.counts()

    ads_world = AdsWorld(SEED, ANCHOR)
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[0].headers["Content-Type"] == "application/json; charset=UTF-8"
    assert len(results(answers[0].json())) == len(ads_world.google_ad_days(NZ))
    assert answers[2].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert counts == {"search_stream": {"served": 2, "throttled": 1}, "token": {"served": 1}}
    assert charges.status_code == 200
    assert [charge["id"] for charge in charges.json()["data"]] == [charge["id"] for charge in stripe_world.charges[:3]]
    assert stripe_customers.status_code == 200
    assert stripe_customers.json()["object"] == "list"


def test_server_large_body_rejected() -> None:
    with start_server(StripeWorld(SEED, ANCHOR)) as server:
        answer = requests.post(
            f"{server.url}/v26/customers/{US}/googleAds:searchStream",
            data=b"x" * ((1 << 20) + 1),
            timeout=10,
        )
        after = requests.get(f"{server.url}/__sandbox/health", timeout=10)

    assert answer.status_code == 413
    assert "larger than 1048576 bytes" in answer.json()["error"]["message"]
    assert after.status_code == 200


# Shape against a real payload


def nested_keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return {prefix}
    keys: set[str] = set()
    for key, item in value.items():
        keys |= nested_keys(item, f"{prefix}.{key}" if prefix else key)
    return keys


def test_shape_matches_real_search_stream(world: AdsWorld, session: GoogleAdsSession, fixtures_dir: Path) -> None:
    real = json.loads((fixtures_dir / "google_ads" / "searchstream_rest_customer_daily_clicks_cost.json").read_text())
    query = (
        "SELECT metrics.clicks, metrics.cost_micros, segments.date FROM customer "
        "WHERE segments.date BETWEEN '2026-10-01' AND '2026-10-07'"
    )

    _, ours = search(world, session, query)

    assert set(ours[-1]) == set(real[-1])
    assert ours[0]["fieldMask"] == real[0]["fieldMask"]
    assert len(ours[0]["requestId"]) == len(real[0]["requestId"])
    assert {key for row in results(ours) for key in nested_keys(row)} == nested_keys(real[0]["results"][0])
    for row in results(ours):
        assert isinstance(row["metrics"]["clicks"], str)
        assert isinstance(row["metrics"]["costMicros"], str)
        assert row["customer"] == {"resourceName": f"customers/{US}"}
