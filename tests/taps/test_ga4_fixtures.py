"""tap-google-analytics parses the real public runReport payload into the expected records."""

from __future__ import annotations

import json
import typing as t
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses

from taps.engine.stream import DeclarativeStream
from taps.google_analytics import TapGoogleAnalytics
from taps.google_analytics.custom_reports import clear_metadata_cache
from tests.singer_run import records_of, run_tap

API = "http://ga4.test"
PROPERTY = "213025502"
CONFIG = {
    "property_ids": [PROPERTY],
    "client_id": "client-fixture",
    "client_secret": "secret-fixture",
    "refresh_token": "refresh-fixture",
    "oauth_token_url": f"{API}/token",
    "api_url": API,
    "admin_api_url": API,
    "start_date": "2024-06-11T00:00:00Z",
    "custom_reports": [{"name": "active_users", "dimensions": ["date"], "metrics": ["activeUsers"]}],
}


def select_only(stream_names: tuple[str, ...]) -> dict[str, t.Any]:
    catalog = TapGoogleAnalytics(config=CONFIG, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
        root["metadata"]["selected"] = entry["tap_stream_id"] in stream_names
    return catalog


def test_fixture_records_and_row_gap(
    fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    payload = json.loads((fixtures_dir / "google_analytics" / "runreport_date_activeusers.json").read_text())
    monkeypatch.setattr(DeclarativeStream, "clock", staticmethod(lambda: datetime(2024, 6, 14, 20, tzinfo=UTC)))
    clear_metadata_cache()

    def run_report(request: t.Any) -> tuple[int, dict[str, str], str]:
        # Serve the payload's rows for the requested day, with its rowCount of 5 for 4 rows.
        sent = json.loads(request.body)
        day = sent["dateRanges"][0]["startDate"].replace("-", "")
        rows = [row for row in payload["rows"] if row["dimensionValues"][0]["value"] == day]
        rows = rows[sent["offset"] : sent["offset"] + sent["limit"]]
        return 200, {}, json.dumps({**payload, "rows": rows})

    admin = {"name": f"properties/{PROPERTY}", "parent": "accounts/1", "displayName": "Fixture", "timeZone": "Europe/Warsaw", "currencyCode": "EUR"}
    metadata = {"dimensions": [{"apiName": "date"}], "metrics": [{"apiName": "activeUsers", "type": "TYPE_INTEGER"}]}
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{API}/token", json={"access_token": "access-fixture", "expires_in": 3600})
        mock.add(responses.GET, f"{API}/v1beta/properties/{PROPERTY}", json=admin)
        mock.add(responses.GET, f"{API}/v1beta/properties/{PROPERTY}/metadata", json=metadata)
        mock.add_callback(responses.POST, f"{API}/v1beta/properties/{PROPERTY}:runReport", callback=run_report)
        messages = run_tap(TapGoogleAnalytics, CONFIG, catalog=select_only(("properties", "custom_active_users")))
        offsets = [json.loads(call.request.body)["offset"] for call in mock.calls if call.request.url.endswith(":runReport")]

    records = records_of(messages, "custom_active_users")
    assert sorted(records, key=lambda record: record["date"]) == [
        {"property_id": int(PROPERTY), "date": "2024-06-11", "active_users": 10},
        {"property_id": int(PROPERTY), "date": "2024-06-12", "active_users": 1011},
        {"property_id": int(PROPERTY), "date": "2024-06-13", "active_users": 101},
        {"property_id": int(PROPERTY), "date": "2024-06-14", "active_users": 2},
    ]
    gaps = [record.getMessage() for record in caplog.records if "reported a total of 5" in record.getMessage()]
    assert gaps[0] == (
        "Stream 'custom_active_users' (window 2024-06-11 to 2024-06-11): read 1 row(s) in 1 page(s), "
        "but the API reported a total of 5 at 'rowCount'."
    )
    assert len(gaps) == 4
    # Each day requested once more for the rows rowCount promised, and the empty response ended the day.
    assert offsets == [0, 1] * 4
