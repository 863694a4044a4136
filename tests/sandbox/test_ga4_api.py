"""The GA4 sandbox: runReport rules, errors in Google's shape, quotas, provisional days and the token endpoint."""

from __future__ import annotations

import json
import typing as t
from datetime import timedelta

import pytest

from sandbox.ga4_api import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, TOKEN_PATH, GA4Session, handle_ga4_request
from sandbox.ga4_data import DEMO_PROPERTY_IDS, QUOTA_PROPERTY, GA4World

ANCHOR = 1773144000
US, NZ = DEMO_PROPERTY_IDS


@pytest.fixture
def session() -> GA4Session:
    return GA4Session()


def authorized(session: GA4Session) -> dict[str, str]:
    return {"Authorization": "Bearer " + session.issue_token()}


def report(world: GA4World, session: GA4Session, body: dict[str, t.Any], property_id: str = US) -> tuple[int, dict[str, t.Any]]:
    status, _, payload = handle_ga4_request(world, session, "POST", f"/v1beta/properties/{property_id}:runReport", "", authorized(session), json.dumps(body).encode())
    return status, json.loads(payload)


def day_range(first: str, last: str) -> list[dict[str, str]]:
    return [{"startDate": first, "endDate": last}]


def test_pages_follow_limit_offset(session: GA4Session) -> None:
    world = GA4World(5, ANCHOR)
    body = {"dateRanges": day_range("yesterday", "yesterday"), "dimensions": [{"name": "date"}, {"name": "landingPage"}], "metrics": [{"name": "sessions"}]}

    _, whole = report(world, session, {**body, "limit": 100000})
    _, first = report(world, session, {**body, "limit": 250})
    _, second = report(world, session, {**body, "limit": 250, "offset": 250})

    assert whole["rowCount"] == first["rowCount"] == second["rowCount"] == len(whole["rows"]) > 250
    assert first["rows"] + second["rows"] == whole["rows"]
    assert whole["metricHeaders"] == [{"name": "sessions", "type": "TYPE_INTEGER"}]
    assert whole["metadata"] == {"currencyCode": "USD", "timeZone": "America/New_York"}


def test_empty_report_omits_rows(session: GA4Session) -> None:
    status, payload = report(GA4World(5, ANCHOR), session, {"dateRanges": day_range("2020-01-01", "2020-01-02"), "dimensions": [{"name": "date"}], "metrics": [{"name": "sessions"}]})

    assert status == 200
    assert "rows" not in payload
    assert "rowCount" not in payload


def test_bad_names_get_google_errors(session: GA4Session) -> None:
    world = GA4World(5, ANCHOR)

    status, payload = report(world, session, {"dateRanges": day_range("today", "today"), "metrics": [{"name": "conversions"}]})
    assert (status, payload["error"]["status"], payload["error"]["code"]) == (400, "INVALID_ARGUMENT", 400)
    assert payload["error"]["message"].startswith("Field conversions is not a valid metric.")

    status, payload = report(world, session, {"dateRanges": day_range("today", "today"), "dimensions": [{"name": "landingPage"}], "metrics": [{"name": "itemsPurchased"}]})
    assert status == 400
    assert "Please remove landingPage to make the request compatible" in payload["error"]["message"]


def test_quotas_return_429(session: GA4Session) -> None:
    world = GA4World(5, ANCHOR)
    body = {"dateRanges": day_range("today", "today"), "dimensions": [{"name": "date"}], "metrics": [{"name": "sessions"}]}

    status, payload = report(world, session, body, QUOTA_PROPERTY.property_id)
    assert (status, payload["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "tokens per day" in payload["error"]["message"]

    throttled = GA4Session(throttle_every=2)
    statuses = [report(world, throttled, body)[0] for _ in range(4)]
    assert statuses == [200, 429, 200, 429]


def test_recent_days_grow_between_ticks(session: GA4Session) -> None:
    first = GA4World(5, ANCHOR)
    later = GA4World(5, ANCHOR, ticks=(ANCHOR + 86400,))
    today = first.today(NZ)
    old = today - timedelta(days=10)

    def sessions(world: GA4World, day: t.Any) -> int:
        return sum(row.sessions for row in world.day_report(NZ, day).traffic)

    assert sessions(later, today) > sessions(first, today)
    assert sessions(later, old) == sessions(first, old)
    assert later.completeness(NZ, today - timedelta(days=4)) == 1.0


def test_other_row_flags_data_loss(session: GA4Session) -> None:
    world = GA4World(5, ANCHOR)
    day = world.other_row_day(US).isoformat()

    _, payload = report(world, session, {"dateRanges": day_range(day, day), "dimensions": [{"name": "date"}, {"name": "landingPage"}], "metrics": [{"name": "sessions"}]})

    other = [row for row in payload["rows"] if row["dimensionValues"][0]["value"] == "(other)"]
    assert [cell["value"] for cell in other[0]["dimensionValues"]] == ["(other)", "(other)"]
    assert payload["metadata"]["dataLossFromOtherRow"] is True


def test_campaigns_and_leaked_emails(session: GA4Session) -> None:
    world = GA4World(5, ANCHOR)
    day = world.today(US) - timedelta(days=3)
    report_day = world.day_report(US, day)

    campaigns = {(row.source, row.medium, row.campaign) for row in report_day.traffic}
    assert ("google", "cpc", "brand_search") in campaigns
    assert ("(direct)", "(none)", "(direct)") in campaigns
    leaks = [row.landing_page for row in report_day.landing_pages if "@" in row.landing_page]
    assert len(leaks) == 1
    assert leaks[0].split("email=")[1].split("&")[0] in world.personal_values()
    assert not any("@" in row.transaction_id for row in report_day.purchases)


def test_token_and_property_checked(session: GA4Session) -> None:
    world = GA4World(5, ANCHOR)

    status, _, _ = handle_ga4_request(world, session, "GET", f"/v1beta/properties/{US}", "", {"Authorization": "Bearer made-up"}, b"")
    assert status == 401
    status, _, payload = handle_ga4_request(world, session, "GET", "/v1beta/properties/1234", "", authorized(session), b"")
    assert (status, json.loads(payload)["error"]["status"]) == (403, "PERMISSION_DENIED")


def test_refresh_grant_checks_credentials(session: GA4Session) -> None:
    world = GA4World(5, ANCHOR)
    form = f"grant_type=refresh_token&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}&refresh_token=wrong"

    status, _, payload = handle_ga4_request(world, session, "POST", TOKEN_PATH, "", {}, form.encode())

    assert (status, json.loads(payload)["error"]) == (400, "invalid_grant")
