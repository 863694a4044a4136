"""Report layouts (GA4 runReport, columns plus rows) become one record per row."""

from __future__ import annotations

import copy
import json
import typing as t
from pathlib import Path

import pytest
import responses

from taps.engine.declaration import parse_declaration
from taps.engine.reports import ReportFormatError, report_records
from taps.engine.tap import build_tap_class
from tests.singer_run import records_of, run_tap
from tests.taps.test_engine import BASE, CONFIG, DECLARATION


def test_ga4_fixture_rows_become_records(fixtures_dir: Path) -> None:
    body = json.loads((fixtures_dir / "google_analytics" / "runreport_date_activeusers.json").read_text())

    records = list(report_records(body, {"type": "ga4"}, stream="traffic"))

    assert records[0] == {"date": "20240614", "activeUsers": "2"}
    assert len(records) == len(body["rows"])


def test_columns_rows_layout() -> None:
    body = {"report": {"columns": ["day", "clicks"], "rows": [["2026-11-01", 3], ["2026-11-02", 5]]}}

    records = list(report_records(body, {"type": "columns_rows", "headers": "report.columns", "rows": "report.rows"}, stream="s"))

    assert records == [{"day": "2026-11-01", "clicks": 3}, {"day": "2026-11-02", "clicks": 5}]


def test_short_row_rejected_without_values() -> None:
    body = {"columns": ["day", "clicks"], "rows": [["2026-11-01", 3], ["secret-value"]]}

    with pytest.raises(ReportFormatError, match="report row 2 has a different number of values") as raised:
        list(report_records(body, {"type": "columns_rows"}, stream="s"))
    assert "secret-value" not in str(raised.value)


def test_ga4_stream_transforms_report_values() -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"] = {
        "traffic": {
            "path": "/v1beta/properties/1:runReport",
            "method": "POST",
            "body": {"dimensions": [{"name": "date"}], "metrics": [{"name": "activeUsers"}]},
            "report_format": {"type": "ga4"},
            "paginator": {"type": "single_page"},
            "primary_key": ["date"],
            "fields": {
                "date": {"type": "string", "format": "date", "transform": "yyyymmdd", "pii": "none"},
                "active_users": {"type": "integer", "path": "activeUsers", "transform": "numeric_string", "pii": "none"},
            },
        }
    }
    tap_class = build_tap_class(parse_declaration(declaration))
    body = {
        "dimensionHeaders": [{"name": "date"}],
        "metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"}],
        "rows": [{"dimensionValues": [{"value": "20261104"}], "metricValues": [{"value": "101"}]}],
    }
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{BASE}/v1beta/properties/1:runReport", json=body)
        records = records_of(run_tap(tap_class, CONFIG), "traffic")

    assert records == [{"date": "2026-11-04", "active_users": 101}]


def test_ga4_offset_pages_count_report_rows() -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"] = {
        "traffic": {
            "path": "/ga4",
            "method": "POST",
            "body": {"limit": 2},
            "report_format": {"type": "ga4"},
            "paginator": {"type": "offset", "in": "body", "page_size": 2, "total": "rowCount"},
            "strict_totals": True,
            "primary_key": ["date"],
            "fields": {"date": {"type": "string", "format": "date", "transform": "yyyymmdd", "pii": "none"}},
        }
    }
    days = [f"202611{day:02d}" for day in range(1, 6)]

    def serve(request: t.Any) -> tuple[int, dict[str, str], str]:
        offset = json.loads(request.body).get("offset", 0)
        rows = [{"dimensionValues": [{"value": day}], "metricValues": []} for day in days[offset : offset + 2]]
        return 200, {}, json.dumps({"dimensionHeaders": [{"name": "date"}], "metricHeaders": [], "rows": rows, "rowCount": len(days)})

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, f"{BASE}/ga4", callback=serve)
        records = records_of(run_tap(build_tap_class(parse_declaration(declaration)), CONFIG), "traffic")
        offsets = [json.loads(call.request.body).get("offset", 0) for call in mock.calls]

    assert [r["date"] for r in records] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
    assert offsets == [0, 2, 4]
