"""Tests of the Meta Graph API emulator: paging, insights, report jobs and throttling."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from sandbox.ads_data import AdsWorld
from sandbox.meta_api import DEMO_ACCESS_TOKEN, MetaSession, handle_meta_request
from sandbox.server import start_server
from sandbox.stripe_api import DEMO_API_KEY
from sandbox.stripe_data import StripeWorld

SEED = 7
ANCHOR = int(datetime(2026, 11, 1, 15, 0, tzinfo=UTC).timestamp())
EU = "act_100200300400500"
NZ = "act_600700800900100"
HOST = "127.0.0.1:9999"
BEARER = {"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}", "Host": HOST}
INSIGHT_FIELDS = (
    "account_id,account_currency,campaign_id,campaign_name,adset_id,adset_name,ad_id,ad_name,"
    "date_start,date_stop,spend,impressions,clicks,reach,frequency,cpc,ctr,actions,action_values,"
    "cost_per_action_type,conversions"
)
WINDOWS = '["1d_click","7d_click","1d_view"]'
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}")
ACTION_TYPES = {
    "link_click",
    "landing_page_view",
    "offsite_conversion.fb_pixel_add_to_cart",
    "offsite_conversion.fb_pixel_purchase",
}


@pytest.fixture(scope="module")
def world() -> AdsWorld:
    return AdsWorld(SEED, ANCHOR)


class Client:
    """Calls the handler with one session; every request skips the throttle schedule."""

    def __init__(self, world: AdsWorld, session: MetaSession | None = None, *, unthrottled: bool = True) -> None:
        self.world = world
        self.session = session or MetaSession()
        self.unthrottled = unthrottled

    def call(
        self,
        path: str,
        params: dict[str, str] | str = "",
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> tuple[int, dict[str, str], Any]:
        if self.unthrottled:
            self._skip_throttled_numbers()
        query = params if isinstance(params, str) else urlencode(params)
        status, response_headers, payload = handle_meta_request(
            self.world, self.session, method, path, query, BEARER if headers is None else headers, body
        )
        return status, response_headers, json.loads(payload)

    def follow(self, url: str) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(url)
        assert parts.netloc == HOST
        return self.call(parts.path, parts.query)

    def _skip_throttled_numbers(self) -> None:
        """Use up request numbers the schedule throttles, so the next request is served."""
        while True:
            upcoming = self.session.request_count + 1
            if (upcoming - 4) % 20 == 0 or (upcoming - 7) % 23 == 0:
                self.session.next_request()
            else:
                return


def insights_params(since: str, until: str, **extra: str) -> dict[str, str]:
    params = {
        "level": "ad",
        "time_increment": "1",
        "time_range": json.dumps({"since": since, "until": until}),
        "fields": INSIGHT_FIELDS,
        "action_attribution_windows": WINDOWS,
        "limit": "100",
    }
    params.update(extra)
    return params


def error_of(answer: tuple[int, dict[str, str], Any], status: int, code: int) -> dict[str, Any]:
    answer_status, _, payload = answer
    assert answer_status == status, payload
    error = payload["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["fbtrace_id"]
    return error


def walk(client: Client, path: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow next links until a page has none or is empty; return the rows and the pages."""
    status, _, page = client.call(path, params)
    assert status == 200, page
    pages = [page]
    rows = list(page["data"])
    for _ in range(1_000):
        if "next" not in page.get("paging", {}) or not page["data"]:
            return rows, pages
        status, _, page = client.follow(page["paging"]["next"])
        assert status == 200, page
        pages.append(page)
        rows.extend(page["data"])
    raise AssertionError("paging did not end")


def decimal(text: str) -> Decimal:
    return Decimal(text)


# Authentication and versions


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {"Host": HOST}),
        ("access_token=wrong-token", {"Host": HOST}),
        ("", {"Authorization": "Bearer wrong-token", "Host": HOST}),
        ("", {"Authorization": f"Basic {DEMO_ACCESS_TOKEN}", "Host": HOST}),
    ],
)
def test_bad_token_code_190(world: AdsWorld, query: str, headers: dict[str, str]) -> None:
    session = MetaSession()
    answer = handle_meta_request(world, session, "GET", f"/v26.0/{EU}", query, headers, b"")
    status, _, body = answer

    error = error_of((status, {}, json.loads(body)), 400, 190)

    assert error["message"] == "Invalid OAuth access token."
    assert b"wrong-token" not in body
    assert session.counts() == {"unauthenticated": {"failed": 1}}


@pytest.mark.parametrize("version", ["v24.0", "v25.0", "v26.0"])
def test_token_as_query_parameter(world: AdsWorld, version: str) -> None:
    client = Client(world)

    status, _, payload = client.call(f"/{version}/{EU}", {"access_token": DEMO_ACCESS_TOKEN}, headers={"Host": HOST})

    assert status == 200
    assert payload == {"id": EU}


@pytest.mark.parametrize("version", ["v23.0", "v27.0"])
def test_other_versions_rejected(world: AdsWorld, version: str) -> None:
    error = error_of(Client(world).call(f"/{version}/{EU}"), 400, 2635)

    assert "v24.0, v25.0, v26.0" in error["message"]


# Ad account and entity lists


def test_ad_account_fields(world: AdsWorld) -> None:
    fields = "account_id,name,currency,timezone_name,timezone_offset_hours_utc,account_status,business_country_code"

    _, _, eu = Client(world).call(f"/v26.0/{EU}", {"fields": fields})
    _, _, nz = Client(world).call(f"/v26.0/{NZ}", {"fields": fields})

    assert eu == {
        "id": EU,
        "account_id": "100200300400500",
        "name": "Spendlake Demo EU",
        "currency": "EUR",
        "timezone_name": "Europe/Berlin",
        "timezone_offset_hours_utc": 1,
        "account_status": 1,
        "business_country_code": "DE",
    }
    assert nz["timezone_offset_hours_utc"] == 13
    assert nz["currency"] == "NZD"


def test_unknown_account_rejected(world: AdsWorld) -> None:
    error = error_of(Client(world).call("/v26.0/act_999/campaigns"), 400, 100)

    assert error["error_subcode"] == 33
    assert "Object with ID 'act_999' does not exist" in error["message"]


def test_campaign_pages_follow_next(world: AdsWorld) -> None:
    client = Client(world)
    fields = "id,name,objective,status,effective_status,daily_budget,lifetime_budget,start_time,stop_time,created_time,updated_time,account_id"

    rows, pages = walk(client, f"/v26.0/{EU}/campaigns", {"fields": fields, "limit": "4"})

    expected = [campaign.id for campaign in world.meta_campaigns(EU) if campaign.effective_status != "ARCHIVED"]
    assert [row["id"] for row in rows] == expected
    assert [len(page["data"]) for page in pages] == [4, 4, 1]
    assert ["next" in page["paging"] for page in pages] == [True, True, False]
    assert all(set(page["paging"]["cursors"]) == {"before", "after"} for page in pages)
    assert all(TIMESTAMP.fullmatch(row["created_time"]) for row in rows)
    assert all(row["account_id"] == "100200300400500" for row in rows)
    budgets = [row["daily_budget"] for row in rows if "daily_budget" in row]
    assert budgets
    assert all(value.isdigit() for value in budgets)


def test_next_link_token_only_from_query(world: AdsWorld) -> None:
    client = Client(world)

    _, _, header_page = client.call(f"/v26.0/{EU}/ads", {"limit": "2"})
    _, _, query_page = client.call(
        f"/v26.0/{EU}/ads", {"limit": "2", "access_token": DEMO_ACCESS_TOKEN}, headers={"Host": HOST}
    )

    header_next = urlsplit(header_page["paging"]["next"])
    query_next = urlsplit(query_page["paging"]["next"])
    assert header_next.scheme == "http"
    assert header_next.netloc == HOST
    assert header_next.path == f"/v26.0/{EU}/ads"
    assert "access_token" not in parse_qs(header_next.query)
    assert parse_qs(query_next.query)["access_token"] == [DEMO_ACCESS_TOKEN]
    assert parse_qs(header_next.query)["after"] == [header_page["paging"]["cursors"]["after"]]


def test_default_hides_archived(world: AdsWorld) -> None:
    client = Client(world)
    everything = json.dumps(["ACTIVE", "PAUSED", "ARCHIVED", "CAMPAIGN_PAUSED", "ADSET_PAUSED"])
    filtering = json.dumps([{"field": "ad.effective_status", "operator": "IN", "value": ["ARCHIVED"]}])

    default_rows, _ = walk(client, f"/v26.0/{NZ}/ads", {"fields": "effective_status", "limit": "500"})
    all_rows, _ = walk(client, f"/v26.0/{NZ}/ads", {"fields": "effective_status", "limit": "500", "effective_status": everything})
    archived_rows, _ = walk(client, f"/v26.0/{NZ}/ads", {"fields": "effective_status", "filtering": filtering})

    assert "ARCHIVED" not in {row["effective_status"] for row in default_rows}
    assert len(all_rows) == len(world.meta_ads(NZ))
    assert {row["effective_status"] for row in archived_rows} == {"ARCHIVED"}
    assert len(default_rows) + len(archived_rows) == len(all_rows)


@pytest.mark.parametrize(
    ("edge", "params", "message"),
    [
        ("campaigns", {"fields": "id,name,spend"}, "Tried accessing nonexisting field (spend) on node type (Campaign)"),
        ("campaigns", {"effective_status": '["ACTIVE","ADSET_PAUSED"]'}, "Param effective_status[1] must be one of"),
        ("ads", {"fields": "creative{id,body}"}, "does not support the subfields"),
        ("ads", {"after": "bm90LWFuLWlk"}, "is not valid for this list"),
        ("ads", {"limit": "0"}, "Param limit must be a positive integer"),
    ],
)
def test_list_parameter_errors(world: AdsWorld, edge: str, params: dict[str, str], message: str) -> None:
    error = error_of(Client(world).call(f"/v26.0/{EU}/{edge}", params), 400, 100)

    assert message in error["message"]


def test_fields_only_requested(world: AdsWorld) -> None:
    client = Client(world)

    _, _, ads = client.call(f"/v26.0/{EU}/ads", {"fields": "name,creative{id},adset_id", "limit": "3"})
    _, _, bare = client.call(f"/v26.0/{EU}/campaigns", {"limit": "3"})
    _, _, adsets = client.call(f"/v26.0/{EU}/adsets", {"fields": "targeting,daily_budget", "limit": "500"})

    assert all(set(row) == {"id", "name", "creative", "adset_id"} for row in ads["data"])
    assert all(set(row["creative"]) == {"id"} and row["creative"]["id"].isdigit() for row in ads["data"])
    assert all(set(row) == {"id"} for row in bare["data"])
    audiences = [audience for row in adsets["data"] for audience in row["targeting"].get("custom_audiences", [])]
    assert audiences
    assert {audience["name"] for audience in audiences} <= world.personal_values()
    assert all(audience["id"].isdigit() for audience in audiences)
    assert all(set(row["targeting"]["geo_locations"]["countries"]) <= {"DE", "AT", "CH", "NL"} for row in adsets["data"])
    assert all(row["targeting"]["age_max"] == 65 for row in adsets["data"])


# Sync insights


def test_insights_rows_shape(world: AdsWorld) -> None:
    day = world.today(EU) - timedelta(days=3)

    rows, _ = walk(Client(world), f"/v26.0/{EU}/insights", insights_params(str(day), str(day)))

    expected = [row for row in world.meta_ad_days(EU) if row.day == day]
    assert [row["ad_id"] for row in rows] == [source.ad_id for source in expected]
    assert [row["ad_id"] for row in rows] == sorted(row["ad_id"] for row in rows)
    for row, source in zip(rows, expected):
        assert row["account_id"] == "100200300400500"
        assert row["account_currency"] == "EUR"
        assert row["date_start"] == row["date_stop"] == day.isoformat()
        assert row["impressions"] == str(source.impressions)
        assert decimal(row["spend"]) == Decimal(source.spend_minor) / 100
        assert all(isinstance(value, str) for key, value in row.items() if not isinstance(value, list))
        assert int(row["clicks"]) <= int(row["impressions"])
        assert decimal(row["ctr"]) == pytest.approx(Decimal(100 * source.clicks) / source.impressions, abs=Decimal("0.000001"))
        assert decimal(row["frequency"]) == pytest.approx(Decimal(source.impressions) / source.reach, abs=Decimal("0.000001"))
        if source.clicks:
            assert decimal(row["cpc"]) == pytest.approx(decimal(row["spend"]) / source.clicks, abs=Decimal("0.000001"))
        else:
            assert "cpc" not in row
        for entry in row.get("actions", []):
            assert entry["action_type"] in ACTION_TYPES
            assert set(entry) == {"action_type", "value", "1d_click", "7d_click", "1d_view"}
            assert int(entry["value"]) == int(entry["7d_click"]) + int(entry["1d_view"])
            assert int(entry["1d_click"]) <= int(entry["7d_click"])


def test_insights_ordered_by_date_then_ad(world: AdsWorld) -> None:
    rows, _ = walk(Client(world), f"/v26.0/{NZ}/insights", insights_params("2026-10-20", "2026-10-24"))

    keys = [(row["date_start"], row["ad_id"]) for row in rows]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert {row["date_start"] for row in rows} == {f"2026-10-2{day}" for day in range(5)}


def test_insights_purchase_lists_agree(world: AdsWorld) -> None:
    rows, _ = walk(Client(world), f"/v26.0/{EU}/insights", insights_params("2026-10-01", "2026-10-10"))

    with_purchases = [row for row in rows if any(a["action_type"] == "offsite_conversion.fb_pixel_purchase" for a in row.get("actions", []))]
    assert with_purchases
    for row in with_purchases:
        purchase = next(a for a in row["actions"] if a["action_type"] == "offsite_conversion.fb_pixel_purchase")
        value = next(a for a in row["action_values"] if a["action_type"] == "offsite_conversion.fb_pixel_purchase")
        cost = next(a for a in row["cost_per_action_type"] if a["action_type"] == "offsite_conversion.fb_pixel_purchase")
        assert row["conversions"] == [purchase]
        assert decimal(value["value"]) > 0
        assert decimal(cost["value"]) == pytest.approx(decimal(row["spend"]) / int(purchase["value"]), abs=Decimal("0.000001"))


def test_insights_no_delivery_day_empty(world: AdsWorld) -> None:
    skipped = str(world.no_delivery_day(NZ))

    status, _, page = Client(world).call(f"/v26.0/{NZ}/insights", insights_params(skipped, skipped))

    assert status == 200
    assert page == {"data": []}


def test_country_rows_differ_only_in_country(world: AdsWorld) -> None:
    client = Client(world)
    params = insights_params("2026-10-12", "2026-10-13")

    plain, _ = walk(client, f"/v26.0/{EU}/insights", params)
    split, _ = walk(client, f"/v26.0/{EU}/insights", {**params, "breakdowns": "country"})

    by_ad: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in split:
        by_ad.setdefault((row["date_start"], row["ad_id"]), []).append(row)
    assert set(by_ad) == {(row["date_start"], row["ad_id"]) for row in plain}
    assert Counter(len(rows) for rows in by_ad.values()).keys() <= {1, 2, 3}
    assert sum(1 for rows in by_ad.values() if len(rows) >= 2) > 0.8 * len(by_ad)
    dimensions = ("account_id", "account_currency", "campaign_id", "campaign_name", "adset_id", "adset_name", "ad_id", "ad_name", "date_start", "date_stop")
    for whole in plain:
        parts = by_ad[(whole["date_start"], whole["ad_id"])]
        assert len({part["country"] for part in parts}) == len(parts)
        assert all({key: part[key] for key in dimensions} == {key: whole[key] for key in dimensions} for part in parts)
        assert sum(int(part["impressions"]) for part in parts) == int(whole["impressions"])
        assert sum(int(part["clicks"]) for part in parts) == int(whole["clicks"])
        assert sum(decimal(part["spend"]) for part in parts) == decimal(whole["spend"])
        for action in whole.get("actions", []):
            split_total = sum(
                int(entry["value"]) for part in parts for entry in part.get("actions", []) if entry["action_type"] == action["action_type"]
            )
            assert split_total == int(action["value"])
    keys = [(row["date_start"], row["ad_id"], row["country"]) for row in split]
    assert keys == sorted(keys)


def test_all_days_one_row_per_ad(world: AdsWorld) -> None:
    params = insights_params("2026-10-01", "2026-10-07")
    params["time_increment"] = "all_days"

    rows, _ = walk(Client(world), f"/v26.0/{EU}/insights", params)

    expected: Counter[str] = Counter()
    for row in world.meta_ad_days(EU):
        if date(2026, 10, 1) <= row.day <= date(2026, 10, 7):
            expected[row.ad_id] += row.impressions
    assert {row["ad_id"]: int(row["impressions"]) for row in rows} == dict(expected)
    assert {(row["date_start"], row["date_stop"]) for row in rows} == {("2026-10-01", "2026-10-07")}


def test_limit_over_100_reduce_data(world: AdsWorld) -> None:
    client = Client(world)

    over = client.call(f"/v26.0/{EU}/insights", insights_params("2026-10-01", "2026-10-03", limit="101"))
    status, _, at_max = client.call(f"/v26.0/{EU}/insights", insights_params("2026-10-01", "2026-10-03", limit="100"))
    total = sum(1 for row in world.meta_ad_days(EU) if date(2026, 10, 1) <= row.day <= date(2026, 10, 3))

    error = error_of(over, 500, 1)
    assert error["message"] == "Please reduce the amount of data you're asking for, then retry your request"
    assert error["error_subcode"] == 99
    assert error["is_transient"] is False
    assert status == 200
    assert total > 100
    assert len(at_max["data"]) == 100


def test_entity_lists_allow_500(world: AdsWorld) -> None:
    status, _, page = Client(world).call(f"/v26.0/{EU}/ads", {"limit": "500"})

    assert status == 200
    assert "next" not in page["paging"]


def test_next_link_only_with_more_rows(world: AdsWorld) -> None:
    client = Client(world)
    day = "2026-10-15"
    total = sum(1 for row in world.meta_ad_days(EU) if row.day.isoformat() == day)

    _, _, one_page = client.call(f"/v26.0/{EU}/insights", insights_params(day, day, limit=str(total + 1)))
    _, _, first = client.call(f"/v26.0/{EU}/insights", insights_params(day, day, limit=str(total - 1)))
    _, _, second = client.follow(first["paging"]["next"])

    assert len(one_page["data"]) == total
    assert "next" not in one_page["paging"]
    assert len(first["data"]) == total - 1
    assert len(second["data"]) == 1
    assert "next" not in second["paging"]


def test_empty_page_with_next_on_boundary(world: AdsWorld) -> None:
    client = Client(world)
    day = "2026-10-15"
    total = sum(1 for row in world.meta_ad_days(EU) if row.day.isoformat() == day)

    _, _, full = client.call(f"/v26.0/{EU}/insights", insights_params(day, day, limit=str(total)))
    status, _, empty = client.follow(full["paging"]["next"])
    _, _, again = client.follow(empty["paging"]["next"])

    assert len(full["data"]) == total
    assert "next" in full["paging"]
    assert status == 200
    assert empty["data"] == []
    assert empty["paging"]["next"] == full["paging"]["next"]
    assert set(empty["paging"]["cursors"]) == {"before", "after"}
    assert again == empty
    rows, pages = walk(client, f"/v26.0/{EU}/insights", insights_params(day, day, limit=str(total)))
    assert len(rows) == total
    assert len(pages) == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"level": "campaign"}, "only with level=ad"),
        ({"fields": "spend,purchase_roas"}, "fields must be one of the following values"),
        ({"time_range": '{"since": "2026-10-05"}'}, "Param time_range must be JSON"),
        ({"time_range": '{"since": "2026-10-05", "until": "2026-10-01"}'}, "has since 2026-10-05 after until 2026-10-01"),
        ({"action_attribution_windows": '["7d_view"]'}, "Param action_attribution_windows[0] must be one of"),
        ({"breakdowns": "age"}, "only breakdowns=country"),
        ({"time_increment": "7"}, "time_increment 1 or all_days"),
    ],
)
def test_insights_parameter_errors(world: AdsWorld, params: dict[str, str], message: str) -> None:
    error = error_of(Client(world).call(f"/v26.0/{EU}/insights", {**insights_params("2026-10-01", "2026-10-02"), **params}), 400, 100)

    assert message in error["message"]


def test_windows_as_comma_list(world: AdsWorld) -> None:
    params = insights_params("2026-10-01", "2026-10-05", action_attribution_windows="7d_click,28d_click")

    rows, _ = walk(Client(world), f"/v26.0/{EU}/insights", params)

    entries = [entry for row in rows for entry in row.get("actions", [])]
    assert entries
    assert all(set(entry) == {"action_type", "value", "7d_click", "28d_click"} for entry in entries)


def test_late_purchases_grow_via_api(world: AdsWorld) -> None:
    late = str(world.late_attribution_day(EU))
    later_world = AdsWorld(SEED, ANCHOR, (ANCHOR + 60, ANCHOR + 120, ANCHOR + 180))

    def purchases(source: AdsWorld) -> tuple[int, int]:
        rows, _ = walk(Client(source), f"/v26.0/{EU}/insights", insights_params(late, late))
        entries = [a for row in rows for a in row.get("actions", []) if a["action_type"] == "offsite_conversion.fb_pixel_purchase"]
        return sum(int(a["7d_click"]) for a in entries), sum(int(a["1d_click"]) for a in entries)

    before, after = purchases(world), purchases(later_world)
    clicked = sum(1 for row in world.meta_ad_days(EU) if str(row.day) == late and row.link_clicks)

    assert after[0] - before[0] == 3 * clicked
    assert after[1] == before[1]


# Report jobs


def create_job(client: Client, account: str, since: str, until: str, *, in_body: bool = False) -> str:
    params = insights_params(since, until)
    if in_body:
        answer = client.call(f"/v26.0/{account}/insights", "", method="POST", body=urlencode(params).encode())
    else:
        answer = client.call(f"/v26.0/{account}/insights", params, method="POST")
    status, _, payload = answer
    assert status == 200, payload
    assert set(payload) == {"report_run_id"}
    assert payload["report_run_id"].isdigit()
    return payload["report_run_id"]


def poll(client: Client, run_id: str) -> dict[str, Any]:
    status, _, payload = client.call(f"/v26.0/{run_id}")
    assert status == 200, payload
    return payload


@pytest.mark.parametrize("in_body", [False, True])
def test_job_lifecycle_completes(world: AdsWorld, in_body: bool) -> None:
    client = Client(world)
    run_id = create_job(client, EU, "2026-10-01", "2026-10-20", in_body=in_body)

    early = client.call(f"/v26.0/{run_id}/insights", {"limit": "100"})
    states = [poll(client, run_id) for _ in range(5)]
    rows, pages = walk(client, f"/v26.0/{run_id}/insights", {"limit": "100"})
    sync_rows, _ = walk(client, f"/v26.0/{EU}/insights", insights_params("2026-10-01", "2026-10-20"))

    error = error_of(early, 400, 100)
    assert "not complete" in error["message"]
    assert [(state["async_status"], state["async_percent_completion"]) for state in states] == [
        ("Job Not Started", 0),
        ("Job Completed", 100),
        ("Job Completed", 100),
        ("Job Completed", 100),
        ("Job Completed", 100),
    ]
    assert states[0]["id"] == run_id
    assert states[0]["account_id"] == "100200300400500"
    assert (states[0]["date_start"], states[0]["date_stop"]) == ("2026-10-01", "2026-10-20")
    assert rows == sync_rows
    assert len(pages) > 5
    assert all(urlsplit(page["paging"]["next"]).path == f"/v26.0/{run_id}/insights" for page in pages[:-1])


def test_job_results_reduce_data(world: AdsWorld) -> None:
    client = Client(world)
    run_id = create_job(client, NZ, "2026-10-01", "2026-10-03")
    for _ in range(4):
        poll(client, run_id)

    error = error_of(client.call(f"/v26.0/{run_id}/insights", {"limit": "250"}), 500, 1)

    assert error["error_subcode"] == 99


def test_job_results_empty_page_with_next(world: AdsWorld) -> None:
    client = Client(world)
    day = "2026-10-15"
    total = sum(1 for row in world.meta_ad_days(NZ) if row.day.isoformat() == day)
    run_id = create_job(client, NZ, day, day)
    for _ in range(4):
        poll(client, run_id)

    _, _, full = client.call(f"/v26.0/{run_id}/insights", {"limit": str(total)})
    _, _, empty = client.follow(full["paging"]["next"])

    assert len(full["data"]) == total
    assert empty["data"] == []
    assert "next" in empty["paging"]


def test_nz_long_job_fails(world: AdsWorld) -> None:
    client = Client(world)
    run_id = create_job(client, NZ, "2026-09-01", "2026-10-02")

    states = [poll(client, run_id) for _ in range(4)]
    results = client.call(f"/v26.0/{run_id}/insights")

    assert [(state["async_status"], state["async_percent_completion"]) for state in states] == [
        ("Job Not Started", 0),
        ("Job Failed", 20),
        ("Job Failed", 20),
        ("Job Failed", 20),
    ]
    assert states[1]["error_code"] == 2
    assert states[1]["error_message"] == "Service temporarily unavailable"
    assert "error_code" not in states[0]
    assert "not complete" in error_of(results, 400, 100)["message"]


def test_eu_long_job_stalls(world: AdsWorld) -> None:
    client = Client(world)
    run_id = create_job(client, EU, "2026-09-01", "2026-10-16")

    states = [poll(client, run_id) for _ in range(12)]

    assert states[0]["async_status"] == "Job Not Started"
    assert {(state["async_status"], state["async_percent_completion"]) for state in states[1:]} == {("Job Running", 35)}


@pytest.mark.parametrize(("account", "since", "until"), [(NZ, "2026-09-01", "2026-10-01"), (EU, "2026-09-01", "2026-10-15")])
def test_jobs_at_limit_complete(world: AdsWorld, account: str, since: str, until: str) -> None:
    client = Client(world)
    run_id = create_job(client, account, since, until)

    states = [poll(client, run_id) for _ in range(4)]

    assert states[-1]["async_status"] == "Job Completed"


def test_unknown_report_run(world: AdsWorld) -> None:
    error = error_of(Client(world).call("/v26.0/1200000000000999"), 400, 100)

    assert error["error_subcode"] == 33


# Throttling


def test_throttle_schedules(world: AdsWorld) -> None:
    client = Client(world, unthrottled=False)

    answers = [client.call(f"/v26.0/{EU}/campaigns", {"limit": "2"}) for _ in range(30)]

    codes = {number: payload["error"]["code"] for number, (status, _, payload) in enumerate(answers, start=1) if status != 200}
    assert codes == {4: 80000, 7: 17, 24: 80000, 30: 17}
    assert all(answers[number - 1][0] == 400 for number in codes)
    assert client.session.counts() == {"campaigns": {"served": 26, "throttled": 4}}


def test_throttle_answer_headers(world: AdsWorld) -> None:
    client = Client(world, unthrottled=False)
    answers = [client.call(f"/v26.0/{NZ}/insights", insights_params("2026-10-01", "2026-10-01")) for _ in range(7)]

    status, headers, payload = answers[3]
    user_status, _, user_payload = answers[6]
    served_headers = answers[0][1]

    assert status == 400
    assert payload["error"]["message"] == (
        "(#80000) There have been too many calls from this ad-account. Wait a bit and try again."
    )
    assert payload["error"]["error_subcode"] == 2446079
    usage = json.loads(headers["X-Business-Use-Case-Usage"])
    assert list(usage) == ["600700800900100"]
    assert usage["600700800900100"][0] == {
        "type": "ads_insights",
        "call_count": 100,
        "total_cputime": 40,
        "total_time": 60,
        "estimated_time_to_regain_access": 0,
        "ads_api_access_tier": "standard_access",
    }
    assert json.loads(headers["X-App-Usage"]) == {"call_count": 95, "total_time": 20, "total_cputime": 20}
    assert user_status == 400
    assert user_payload["error"]["code"] == 17
    assert user_payload["error"]["error_subcode"] == 2446079
    assert "User request limit reached" in user_payload["error"]["message"]
    assert max(json.loads(served_headers["X-App-Usage"]).values()) < 50


def test_throttle_counts_per_kind(world: AdsWorld) -> None:
    client = Client(world, unthrottled=False)
    paths = [f"/v26.0/{EU}", f"/v26.0/{EU}/ads", f"/v26.0/{EU}/adsets", f"/v26.0/{EU}/campaigns"] * 2

    for path in paths:
        client.call(path)

    # Request 4 (campaigns) fails with code 80000 and request 7 (adsets) with code 17.
    assert client.session.counts() == {
        "ad_account": {"served": 2},
        "ads": {"served": 2},
        "adsets": {"served": 1, "throttled": 1},
        "campaigns": {"served": 1, "throttled": 1},
    }


def test_same_requests_same_bytes(world: AdsWorld) -> None:
    bodies = []
    for _ in range(2):
        session = MetaSession()
        answers = []
        for path, params in [
            (f"/v26.0/{EU}/campaigns", "limit=3"),
            (f"/v26.0/{EU}/insights", urlencode(insights_params("2026-10-01", "2026-10-03", breakdowns="country"))),
            (f"/v26.0/{EU}/insights", urlencode(insights_params("2026-10-01", "2026-10-03"))),
        ]:
            answers.append(handle_meta_request(world, session, "GET", path, params, BEARER, b"")[2])
        bodies.append(answers)

    assert bodies[0] == bodies[1]


# Through a real server


def test_server_meta_paging_and_stripe() -> None:
    stripe_world = StripeWorld(SEED, ANCHOR)
    auth = {"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"}
    with start_server(stripe_world) as server:
        session = requests.Session()
        url = f"{server.url}/v26.0/{NZ}/insights"
        params = insights_params("2026-10-20", "2026-10-21", limit="10")
        rows: list[dict[str, Any]] = []
        statuses = []
        for _ in range(100):
            answer = session.get(url, params=params, headers=auth, timeout=10)
            statuses.append(answer.status_code)
            if answer.status_code == 400:
                continue
            page = answer.json()
            rows.extend(page["data"])
            if not page["data"] or "next" not in page["paging"]:
                break
            url, params = page["paging"]["next"], {}
        charges = session.get(f"{server.url}/v1/refunds?limit=2", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}, timeout=10)
        counts = server.meta_session.counts()

    expected = [row for row in AdsWorld(SEED, ANCHOR).meta_ad_days(NZ) if str(row.day) in {"2026-10-20", "2026-10-21"}]
    assert [row["ad_id"] for row in rows] == [row.ad_id for row in expected]
    assert statuses[3] == 400
    assert statuses[6] == 400
    assert counts["insights"]["throttled"] == statuses.count(400)
    assert counts["insights"]["served"] == statuses.count(200)
    assert charges.status_code == 200
    assert charges.json()["url"] == "/v1/refunds"


# Shape against real payloads


def test_shape_matches_real_insights(world: AdsWorld, fixtures_dir: Path) -> None:
    real = json.loads((fixtures_dir / "facebook" / "airbyte_ads_insights_action_product_id.json").read_text())
    real_row = real["data"][0]
    params = insights_params("2026-10-01", "2026-10-01", limit="5")
    params["action_attribution_windows"] = '["1d_click","7d_click","28d_click"]'

    _, _, ours = Client(world).call(f"/v26.0/{EU}/insights", params)

    assert set(ours["paging"]["cursors"]) == set(real["paging"]["cursors"])
    for row in ours["data"]:
        shared = set(row) & set(real_row)
        assert {"ad_id", "spend", "impressions", "clicks", "ctr", "actions", "date_start"} <= shared
        assert all(type(row[key]) is type(real_row[key]) for key in shared)
        for entry in row["actions"]:
            assert set(entry) == set(real_row["actions"][0])


def test_throttle_matches_real_error(world: AdsWorld, fixtures_dir: Path) -> None:
    real = json.loads((fixtures_dir / "facebook" / "airbyte_error_80000_rate_limit.json").read_text())
    client = Client(world, unthrottled=False)

    status, headers, payload = [client.call(f"/v26.0/{EU}/campaigns") for _ in range(4)][-1]

    assert status == real["status_code"]
    assert set(payload["error"]) == set(real["json"]["error"])
    assert payload["error"]["code"] == real["json"]["error"]["code"]
    assert payload["error"]["error_subcode"] == real["json"]["error"]["error_subcode"]
    assert real["json"]["error"]["message"].startswith(payload["error"]["message"])
    assert set(json.loads(headers["X-App-Usage"])) == set(json.loads(real["headers"]["x-app-usage"]))
