"""Reading the marts: top campaigns, stores, freshness, and the errors for missing or inconsistent marts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spendlake.dashboard.data import read_marts
from spendlake.dashboard.errors import DashboardError
from spendlake.dashboard.sources import LoadedSources, loaded_sources
from targets.warehouse.duckdb_store import connect_warehouse
from tests.dashboard.marts import LOADED_AT, TENANT, create_marts


def test_top_campaigns_by_spend(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert [row.campaign_key for row in marts.campaigns] == [f"campaign_{number:02d}" for number in range(15)]
    assert marts.campaigns[0].channel == "google_ads"
    assert marts.campaigns[1].channel == "meta"


def test_campaign_sums_match_sql(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    marts = read_marts(spendlake_env, TENANT, days=28)
    period = marts.period

    with connect_warehouse(spendlake_env, TENANT, read_only=True) as connection:
        expected = connection.execute(
            "SELECT sum(spend_rc), sum(conversions), sum(revenue_rc) FROM marts.campaign_performance_daily "
            "WHERE campaign_key = 'campaign_00' AND date BETWEEN ? AND ?",
            [period.start, period.end],
        ).fetchone()

    first = marts.campaigns[0]
    assert (first.spend, first.conversions, first.revenue) == expected
    assert first.cpa == expected[0] / expected[1]
    assert first.roas == expected[2] / expected[0]


def test_campaign_name_and_null_ratios(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    campaigns = {row.campaign_key: row for row in read_marts(spendlake_env, TENANT, days=28).campaigns}

    assert campaigns["campaign_04"].campaign_name == "campaign_04"
    assert campaigns["campaign_05"].conversions == 0.0
    assert campaigns["campaign_05"].cpa is None
    assert campaigns["campaign_05"].roas is not None


def test_campaign_without_spend_has_no_roas(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    campaigns = read_marts(spendlake_env, TENANT, days=28, campaign_limit=20).campaigns

    assert campaigns[-1].campaign_key == "campaign_19"
    assert campaigns[-1].spend == 0.0
    assert campaigns[-1].roas is None


def test_stores_and_freshness(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert [row.store for row in marts.stores] == ["magento", "stripe"]
    stripe = marts.stores[1]
    assert stripe.net == stripe.gross - stripe.refunds
    freshness = {row.source: row for row in marts.freshness}
    assert sorted(freshness) == ["facebook", "google_ads", "google_analytics", "magento", "stripe"]
    assert freshness["google_ads"].last_loaded_at == LOADED_AT
    assert freshness["google_ads"].last_loaded_at.tzinfo is not None
    assert freshness["magento"].last_loaded_at == LOADED_AT - dt.timedelta(hours=1)
    assert freshness["google_analytics"].last_data_date == dt.date(2026, 2, 26)
    assert marts.loaded == LoadedSources(analytics=True, ads=True, stores=True)


def test_unloaded_analytics_values_none(spendlake_env: Path) -> None:
    # Without GA4 the marts hold 0 conversions and revenue, which are not results.
    create_marts(spendlake_env, unloaded=["google_analytics"])

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert marts.loaded == LoadedSources(analytics=False, ads=True, stores=True)
    assert {(row.conversions, row.revenue) for row in marts.daily} == {(None, None)}
    assert all(row.spend is not None for row in marts.daily)
    assert {(row.conversions, row.revenue, row.cpa, row.roas) for row in marts.campaigns} == {(None, None, None, None)}
    assert marts.campaigns[0].spend is not None


def test_unloaded_ads_and_stores_none(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["google_ads", "facebook", "stripe", "magento"])

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert marts.loaded == LoadedSources(analytics=True, ads=False, stores=False)
    assert {(row.spend, row.store_revenue) for row in marts.daily} == {(None, None)}
    assert all(row.conversions is not None for row in marts.daily)
    assert {row.spend for row in marts.campaigns} == {None}
    assert marts.stores == []


def test_one_ad_platform_keeps_spend(spendlake_env: Path) -> None:
    # Meta not loaded but Google Ads loaded: spend is real, and Meta's 0 is part of it.
    create_marts(spendlake_env, unloaded=["facebook", "magento"])

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert marts.loaded == LoadedSources(analytics=True, ads=True, stores=True)
    assert {row.spend for row in marts.daily if row.channel == "meta"} == {0.0}
    assert [row.store for row in marts.stores] == ["stripe"]


def test_source_without_freshness_row(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute("DELETE FROM marts.source_freshness WHERE source = 'google_analytics'")

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert marts.loaded == LoadedSources(analytics=False, ads=True, stores=True)


def test_loaded_sources_null_rows() -> None:
    loaded = loaded_sources({"google_analytics": None, "google_ads": 0, "facebook": 3, "magento": 1})

    assert loaded == LoadedSources(analytics=False, ads=True, stores=True)
    assert loaded_sources({}) == LoadedSources(analytics=False, ads=False, stores=False)


def test_days_option_sets_period(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    marts = read_marts(spendlake_env, TENANT, days=7)

    assert marts.period.start == dt.date(2026, 2, 23)
    assert marts.period.previous_start == dt.date(2026, 2, 16)
    assert min(row.date for row in marts.daily) == dt.date(2026, 2, 16)


def test_empty_marts(spendlake_env: Path) -> None:
    create_marts(spendlake_env, with_rows=False)

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert marts.period is None
    assert marts.reporting_currency is None
    assert marts.daily == []
    assert marts.campaigns == []


def test_missing_warehouse(spendlake_env: Path) -> None:
    with pytest.raises(DashboardError, match=r"Tenant 'acme' has no warehouse .*run `spendlake transform`"):
        read_marts(spendlake_env, TENANT, days=28)

    assert not (spendlake_env / "keys" / f"{TENANT}.json").exists()


def test_missing_marts(spendlake_env: Path) -> None:
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute("CREATE SCHEMA stripe")
        connection.execute("CREATE TABLE stripe.charges (id VARCHAR)")

    with pytest.raises(DashboardError) as caught:
        read_marts(spendlake_env, TENANT, days=28)

    message = str(caught.value)
    assert "marts.marketing_performance_daily" in message
    assert "marts.source_freshness" in message
    assert message.endswith("run `spendlake transform` first.")


def test_missing_column(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute("ALTER TABLE marts.revenue_daily DROP COLUMN net_rc")

    with pytest.raises(DashboardError, match=r"lack the columns marts\.revenue_daily\.net_rc"):
        read_marts(spendlake_env, TENANT, days=28)


def test_mixed_reporting_currencies(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute("UPDATE marts.revenue_daily SET reporting_currency = 'USD' WHERE store = 'stripe'")

    with pytest.raises(DashboardError, match="mix the reporting currencies EUR, USD"):
        read_marts(spendlake_env, TENANT, days=28)
