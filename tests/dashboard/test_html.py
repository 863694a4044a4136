"""The dashboard page: self-contained, strict CSP, exact KPI values, escaped data, n/a for missing values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import plotly
import pytest

from spendlake.dashboard import charts
from spendlake.dashboard.build import build_dashboard, summary_lines
from spendlake.dashboard.data import read_marts
from spendlake.dashboard.formatting import format_days
from spendlake.dashboard.kpis import channel_metrics
from spendlake.dashboard.render import CONTENT_SECURITY_POLICY
from tests.dashboard.marts import (
    CURRENCY,
    DECIMAL_MONEY,
    HOSTILE_NAMES,
    LOADED_AT,
    TENANT,
    create_marts,
    expected_kpis,
)
from tests.dashboard.page import Element, ParsedPage, parse_page

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
KPI_KEYS = ["spend", "revenue", "roas", "cpa", "mer"]


@pytest.fixture
def page_text(spendlake_env: Path) -> str:
    create_marts(spendlake_env)
    return build_dashboard(spendlake_env, TENANT, now=NOW).html


@pytest.fixture
def page(page_text: str) -> ParsedPage:
    return parse_page(page_text)


def value_of(page: ParsedPage, kpi: str, class_name: str) -> float | None:
    tile = page.find("article", data_kpi=kpi)[0]
    tag = "p" if class_name == "tile-value" else "span"
    text = page.within(tile, tag, class_name).attributes["data-value"]
    return None if text == "" else float(text)


def test_csp_first_and_strict(page: ParsedPage) -> None:
    metas = page.find("meta", http_equiv="Content-Security-Policy")

    assert len(metas) == 1
    policy = metas[0].attributes["content"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in policy
    assert "unsafe-eval" not in policy
    # The policy must be in force before the first script runs.
    assert page.elements.index(metas[0]) < page.elements.index(page.find("script")[0])


def test_nothing_external(page: ParsedPage) -> None:
    for tag in ("link", "img", "iframe", "object", "embed", "form", "base", "a"):
        assert page.find(tag) == [], tag
    for element in page.elements:
        for name in ("src", "href", "srcset", "action", "poster", "background"):
            assert name not in element.attributes, (element.tag, name)


def test_plotly_js_inlined_once(page_text: str, page: ParsedPage) -> None:
    banner = f"plotly.js v{plotly.offline.get_plotlyjs_version()}"

    assert page_text.count(banner) == 1
    assert len(page.scripts) == 4  # plotly.js and one script per chart
    assert 4_000_000 < len(page_text) < 6_000_000


def test_kpi_values_equal_sql(spendlake_env: Path, page: ParsedPage) -> None:
    expected = expected_kpis(spendlake_env)

    for key in KPI_KEYS:
        assert value_of(page, key, "tile-value") == expected[key]["value"], key
        assert value_of(page, key, "previous") == expected[key]["previous"], key
        assert value_of(page, key, "change") == expected[key]["change"], key


def test_decimal_marts_page(spendlake_env: Path) -> None:
    create_marts(spendlake_env, money=DECIMAL_MONEY)
    expected = expected_kpis(spendlake_env)

    page = parse_page(build_dashboard(spendlake_env, TENANT, now=NOW).html)

    for key in KPI_KEYS:
        assert value_of(page, key, "tile-value") == expected[key]["value"], key
    assert len(page.find("div", id="chart-trend")) == 1


def test_kpi_text_formatted(page: ParsedPage) -> None:
    spend = page.within(page.find("article", data_kpi="spend")[0], "p", "tile-value")
    roas = page.within(page.find("article", data_kpi="roas")[0], "p", "tile-value")

    assert spend.text.startswith("EUR ")
    assert spend.text == f"EUR {float(spend.attributes['data-value']):,.2f}"
    assert roas.text == f"{float(roas.attributes['data-value']):.2f}"


def test_reporting_currency_shown(page: ParsedPage) -> None:
    assert page.find("strong", data_value="EUR")[0].text == "EUR"


def test_reporting_zone_shown(page: ParsedPage) -> None:
    zone = page.find("strong", data_value="Europe/Berlin")

    assert len(zone) == 1
    assert zone[0].attributes["class"] == "timezone"
    assert zone[0].text == "Europe/Berlin"
    assert page.find("span", **{"class": "assumed"}) == []


def test_assumed_zone_shown(spendlake_env: Path) -> None:
    create_marts(spendlake_env, timezone=None)

    page = parse_page(build_dashboard(spendlake_env, TENANT, now=NOW).html)

    assert page.find("strong", data_value="UTC")[0].text == "UTC"
    assumed = page.find("span", **{"class": "assumed"})
    assert [element.text for element in assumed] == ["(assumed: the marts have no reporting_settings table)"]


def test_period_days_plural(page: ParsedPage) -> None:
    period = page.find("div", **{"class": "period"})[0]

    assert "2026-02-02 to 2026-03-01 (28 days)" in " ".join(period.text.split())


def test_one_day_period_singular(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    page = parse_page(build_dashboard(spendlake_env, TENANT, days=1, now=NOW).html)

    text = " ".join(page.find("div", **{"class": "period"})[0].text.split())
    assert "2026-03-01 to 2026-03-01 (1 day)" in text
    assert "days" not in text


def test_format_days() -> None:
    assert format_days(1) == "1 day"
    assert format_days(2) == "2 days"
    assert format_days(3660) == "3,660 days"


def test_summary_lines_name_zone(spendlake_env: Path) -> None:
    create_marts(spendlake_env, timezone="Pacific/Auckland")

    lines = summary_lines(build_dashboard(spendlake_env, TENANT, days=1, now=NOW))

    assert lines[0] == (
        "Period 2026-03-01 to 2026-03-01 (1 day, time zone Pacific/Auckland), compared with 2026-02-28 to 2026-02-28"
    )
    assert [line.split()[0] for line in lines[1:]] == ["Spend", "Revenue", "ROAS", "CPA", "MER"]


def test_three_charts(page: ParsedPage) -> None:
    sections = page.find("section")
    names = [section.attributes.get("data-chart") for section in sections if "data-chart" in section.attributes]

    assert names == ["trend", "channels", "campaigns"]
    for name in names:
        assert len(page.find("div", id=f"chart-{name}")) == 1


def test_campaign_table(page: ParsedPage) -> None:
    rows = [element for element in page.elements if element.tag == "tr" and "data-campaign" in element.attributes]

    assert [row.attributes["data-campaign"] for row in rows] == [f"campaign_{number:02d}" for number in range(15)]
    assert "n/a" in page.find("tr", data_campaign="campaign_05")[0].text
    assert page.find("tr", data_campaign="campaign_04")[0].text.strip().startswith("campaign_04")


def test_hostile_names_escaped(page_text: str, page: ParsedPage) -> None:
    table_text = " ".join(row.text for row in page.find("tr") if "data-campaign" in row.attributes)

    for name in HOSTILE_NAMES:
        assert name not in page_text
        assert name in table_text
    # The parser found no element made from a campaign name.
    assert page.find("img") == []
    assert page.find("a") == []
    assert len(page.scripts) == 4


def test_freshness_ages(page: ParsedPage) -> None:
    google_ads = page.find("tr", data_source="google_ads")[0]
    age = page.within(google_ads, "td", "num")

    assert float(age.attributes["data-value"]) == (NOW - LOADED_AT).total_seconds() / 3600
    assert age.text == "6.0 h"
    assert "stale" not in age.attributes["class"]
    assert "stale" in page.within(page.find("tr", data_source="google_analytics")[0], "td", "num").attributes["class"]
    assert page.within(page.find("tr", data_source="magento")[0], "td", "num").text == "7.0 h"


def test_never_loaded_source_not_stale(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["magento"])

    page = parse_page(build_dashboard(spendlake_env, TENANT, now=NOW).html)

    age = page.within(page.find("tr", data_source="magento")[0], "td", "num")
    assert age.text == "not loaded"
    assert age.attributes["class"].split() == ["num", "not-loaded"]
    assert age.attributes["data-value"] == ""


def test_all_loaded_no_notes(page: ParsedPage) -> None:
    assert page.find("p", **{"class": "notice"}) == []


def tile_texts(page: ParsedPage, key: str) -> tuple[str, str, str]:
    """Return the value, change and previous text of a KPI tile."""
    tile = page.find("article", data_kpi=key)[0]
    return (
        page.within(tile, "p", "tile-value").text,
        page.within(tile, "span", "change").text,
        page.within(tile, "span", "previous").text,
    )


def campaign_cells(page: ParsedPage, campaign_key: str) -> list[Element]:
    """Return the number cells (spend, conversions, revenue, CPA, ROAS) of a campaign's table row."""
    start = page.elements.index(page.find("tr", data_campaign=campaign_key)[0])
    cells = []
    for element in page.elements[start + 1 :]:
        if element.tag == "tr":
            break
        if element.tag == "td" and "num" in (element.attributes.get("class") or "").split():
            cells.append(element)
    return cells


def assert_tiles(spendlake_env: Path, page: ParsedPage, not_available: list[str]) -> None:
    """Check that the tiles in `not_available` show n/a with empty data-value, and the others the SQL values."""
    expected = expected_kpis(spendlake_env, now=NOW)
    for key in KPI_KEYS:
        assert value_of(page, key, "tile-value") == expected[key]["value"], key
        assert value_of(page, key, "previous") == expected[key]["previous"], key
        assert value_of(page, key, "change") == expected[key]["change"], key
        if key in not_available:
            assert tile_texts(page, key) == ("n/a", "n/a", "previous n/a"), key
            assert value_of(page, key, "tile-value") is None, key
        else:
            assert value_of(page, key, "tile-value") is not None, key


def test_without_analytics_page(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["google_analytics"])

    page = parse_page(build_dashboard(spendlake_env, TENANT, now=NOW).html)

    assert_tiles(spendlake_env, page, ["roas", "cpa"])
    notes = page.find("p", **{"class": "notice"})
    assert [note.attributes["data-missing"] for note in notes] == ["analytics"]
    assert notes[0].text == (
        "Google Analytics 4 is not loaded, so conversions, attributed revenue, CPA and ROAS are not available."
    )
    spend, conversions, revenue, cpa, roas = campaign_cells(page, "campaign_00")
    assert spend.text.startswith("EUR ")
    for cell in (conversions, revenue, cpa, roas):
        assert (cell.text, cell.attributes["data-value"]) == ("n/a", "")


def test_without_ads_page(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["google_ads", "facebook"])

    page = parse_page(build_dashboard(spendlake_env, TENANT, now=NOW).html)

    assert_tiles(spendlake_env, page, ["spend", "roas", "cpa", "mer"])
    notes = page.find("p", **{"class": "notice"})
    assert [note.attributes["data-missing"] for note in notes] == ["ads"]
    assert notes[0].text == (
        "Neither Google Ads nor Meta (Facebook) is loaded, so spend, ROAS, CPA and MER are not available."
    )
    spend, conversions, revenue, cpa, roas = campaign_cells(page, "campaign_00")
    assert conversions.text != "n/a"
    assert revenue.text.startswith("EUR ")
    for cell in (spend, cpa, roas):
        assert (cell.text, cell.attributes["data-value"]) == ("n/a", "")


def test_without_stores_page(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["stripe", "magento"])

    page = parse_page(build_dashboard(spendlake_env, TENANT, now=NOW).html)

    assert_tiles(spendlake_env, page, ["revenue", "mer"])
    notes = page.find("p", **{"class": "notice"})
    assert [note.attributes["data-missing"] for note in notes] == ["stores"]
    assert notes[0].text == "Neither Stripe nor Magento is loaded, so store revenue and MER are not available."


def test_without_analytics_charts(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["google_analytics"])
    marts = read_marts(spendlake_env, TENANT, days=28, now=NOW)
    channels = channel_metrics(marts.daily, marts.period)
    colours = charts.channel_colours([item.channel for item in channels])

    trend = charts.trend_figure(marts.daily, marts.period, CURRENCY)
    channel_bars = charts.channel_figure(channels, colours, CURRENCY)
    campaign_bars = charts.campaign_figure(marts.campaigns, colours, CURRENCY)

    assert [trace.name for trace in trend.data] == ["Spend", "Store net revenue"]
    for figure in (channel_bars, campaign_bars):
        assert {text for trace in figure.data for text in trace.text} == {"n/a"}


def test_empty_marts_page(spendlake_env: Path) -> None:
    create_marts(spendlake_env, with_rows=False)

    page = parse_page(build_dashboard(spendlake_env, TENANT, now=NOW).html)

    for key in KPI_KEYS:
        tile = page.find("article", data_kpi=key)[0]
        value = page.within(tile, "p", "tile-value")
        assert value.attributes["data-value"] == ""
        assert value.text == "n/a"
    assert page.find("strong", data_value="")[0].text == "n/a"
    assert len(page.find("div", id="chart-trend")) == 1
    assert "No campaign rows in the reporting period." in page.find("section", data_table="campaigns")[0].text
