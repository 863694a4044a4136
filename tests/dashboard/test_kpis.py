"""KPI maths: the period rule, sums over periods, ratios from sums, NULL and zero handling."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from spendlake.dashboard.data import read_marts
from spendlake.dashboard.kpis import (
    DailyRow,
    channel_metrics,
    change_percent,
    kpi_tiles,
    period_totals,
    ratio,
    reporting_period,
    sum_present,
)
from tests.dashboard.marts import DECIMAL_MONEY, LATEST_DATE, TENANT, create_marts, expected_kpis

D = dt.date


def total(
    date: dt.date, spend: float | None, conversions: float | None, revenue: float | None, store: float | None
) -> DailyRow:
    return DailyRow(date, "total", spend=spend, conversions=conversions, revenue=revenue, store_revenue=store)


def tiles_by_key(rows: list[DailyRow], days: int, latest: dt.date) -> dict[str, object]:
    return {tile.key: tile for tile in kpi_tiles(rows, reporting_period(latest, days))}


def test_period_default_length() -> None:
    period = reporting_period(D(2026, 3, 1))

    assert period.start == D(2026, 2, 2)
    assert period.end == D(2026, 3, 1)
    assert period.previous_start == D(2026, 1, 5)
    assert period.previous_end == D(2026, 2, 1)
    assert period.days == 28


def test_period_of_one_day() -> None:
    period = reporting_period(D(2026, 3, 1), days=1)

    assert (period.start, period.end) == (D(2026, 3, 1), D(2026, 3, 1))
    assert (period.previous_start, period.previous_end) == (D(2026, 2, 28), D(2026, 2, 28))


def test_period_rejects_zero_days() -> None:
    with pytest.raises(ValueError, match="Invalid period length 0"):
        reporting_period(D(2026, 3, 1), days=0)


def test_sum_skips_none_like_sql() -> None:
    assert sum_present([1.5, None, 2.25]) == 3.75
    assert sum_present([None, None]) is None
    assert sum_present([]) is None
    assert sum_present([0.0]) == 0.0


def test_sum_is_exactly_rounded() -> None:
    # A plain left-to-right sum gives 0.0 here.
    assert sum_present([1e16, 1.0, -1e16]) == 1.0


def test_sum_of_decimals_exact() -> None:
    # As floats, 0.1 + 0.1 + 0.1 is 0.30000000000000004 even when summed exactly.
    assert sum_present([Decimal("0.1"), Decimal("0.1"), None, Decimal("0.1")]) == 0.3
    assert sum_present([Decimal("12345678901234567890123456789.000000001"), Decimal("-12345678901234567890123456789")]) == 1e-9


def test_ratio_none_and_zero() -> None:
    assert ratio(10.0, 4.0) == 2.5
    assert ratio(10.0, 0.0) is None
    assert ratio(None, 4.0) is None
    assert ratio(10.0, None) is None
    assert ratio(0.0, 4.0) == 0.0


def test_change_percent_cases() -> None:
    assert change_percent(150.0, 100.0) == 50.0
    assert change_percent(50.0, 100.0) == -50.0
    assert change_percent(5.0, 0.0) is None
    assert change_percent(None, 100.0) is None
    assert change_percent(100.0, None) is None
    # Against a negative previous value (refunds above sales) a rise is still positive.
    assert change_percent(-50.0, -100.0) == 50.0


def test_ratios_from_sums_not_daily_average() -> None:
    rows = [total(D(2026, 3, 1), 100.0, 1.0, 400.0, 1000.0), total(D(2026, 3, 2), 300.0, 9.0, 200.0, 200.0)]

    tiles = tiles_by_key(rows, days=2, latest=D(2026, 3, 2))

    assert tiles["spend"].value == 400.0
    assert tiles["revenue"].value == 1200.0
    # The mean of the daily ROAS values would be (4 + 2/3) / 2, but the ratio of sums is 600 / 400.
    assert tiles["roas"].value == 1.5
    assert tiles["cpa"].value == 40.0
    assert tiles["mer"].value == 3.0


def test_previous_period_and_change() -> None:
    rows = [
        total(D(2026, 2, 27), 50.0, 5.0, 100.0, 150.0),
        total(D(2026, 2, 28), 50.0, 5.0, 100.0, 150.0),
        total(D(2026, 3, 1), 120.0, 4.0, 360.0, 480.0),
        total(D(2026, 3, 2), 80.0, 6.0, 240.0, 120.0),
    ]

    tiles = tiles_by_key(rows, days=2, latest=D(2026, 3, 2))

    assert tiles["spend"].previous == 100.0
    assert tiles["spend"].change_percent == 100.0
    assert tiles["revenue"].previous == 300.0
    assert tiles["revenue"].change_percent == 100.0
    assert tiles["roas"].previous == 2.0
    assert tiles["roas"].value == 3.0
    assert tiles["roas"].change_percent == 50.0
    assert tiles["cpa"].previous == 10.0
    assert tiles["cpa"].value == 20.0
    assert tiles["mer"].value == 3.0


def test_rows_outside_both_periods_ignored() -> None:
    rows = [total(D(2026, 2, 1), 999.0, 1.0, 1.0, 1.0), total(D(2026, 3, 2), 10.0, 1.0, 20.0, 30.0)]

    tiles = tiles_by_key(rows, days=2, latest=D(2026, 3, 2))

    assert tiles["spend"].value == 10.0
    assert tiles["spend"].previous is None
    assert tiles["spend"].change_percent is None


def test_channel_rows_do_not_count_as_total() -> None:
    rows = [
        total(D(2026, 3, 2), 10.0, 1.0, 20.0, 30.0),
        DailyRow(D(2026, 3, 2), "google_ads", 10.0, 1.0, 20.0, None),
    ]

    tiles = tiles_by_key(rows, days=1, latest=D(2026, 3, 2))

    assert tiles["spend"].value == 10.0


def test_zero_spend_and_conversions() -> None:
    rows = [total(D(2026, 3, 2), 0.0, 0.0, 50.0, 80.0)]

    tiles = tiles_by_key(rows, days=1, latest=D(2026, 3, 2))

    assert tiles["spend"].value == 0.0
    assert tiles["roas"].value is None
    assert tiles["cpa"].value is None
    assert tiles["mer"].value is None


def test_null_store_revenue() -> None:
    rows = [total(D(2026, 3, 1), 10.0, 1.0, 20.0, None), total(D(2026, 3, 2), 10.0, 1.0, 20.0, None)]

    tiles = tiles_by_key(rows, days=2, latest=D(2026, 3, 2))

    assert tiles["revenue"].value is None
    assert tiles["mer"].value is None
    assert tiles["roas"].value == 2.0


def test_no_period_gives_no_values() -> None:
    tiles = kpi_tiles([], None)

    assert [tile.key for tile in tiles] == ["spend", "revenue", "roas", "cpa", "mer"]
    assert all(tile.value is None and tile.previous is None and tile.change_percent is None for tile in tiles)


def test_channel_metrics_by_spend() -> None:
    rows = [
        DailyRow(D(2026, 3, 2), "google_ads", 10.0, 2.0, 30.0, None),
        DailyRow(D(2026, 3, 2), "meta", 40.0, 0.0, 20.0, None),
        DailyRow(D(2026, 3, 1), "meta", 999.0, 1.0, 1.0, None),
        total(D(2026, 3, 2), 50.0, 2.0, 50.0, 70.0),
    ]

    metrics = channel_metrics(rows, reporting_period(D(2026, 3, 2), days=1))

    assert [item.channel for item in metrics] == ["meta", "google_ads"]
    assert metrics[0].totals.spend == 40.0
    assert metrics[0].totals.cpa is None
    assert metrics[0].totals.roas == 0.5
    assert metrics[1].totals.cpa == 5.0


def test_period_totals_inclusive_bounds() -> None:
    rows = [total(D(2026, 3, day), float(day), 1.0, 1.0, 1.0) for day in range(1, 6)]

    totals = period_totals(rows, D(2026, 3, 2), D(2026, 3, 4))

    assert totals.spend == 2.0 + 3.0 + 4.0
    assert totals.conversions == 3.0


@pytest.mark.parametrize("money", ["DOUBLE", DECIMAL_MONEY])
def test_warehouse_kpis_match_sql(spendlake_env: Path, money: str) -> None:
    create_marts(spendlake_env, money=money)
    expected = expected_kpis(spendlake_env)

    marts = read_marts(spendlake_env, TENANT, days=28)
    tiles = {tile.key: tile for tile in kpi_tiles(marts.daily, marts.period)}

    assert marts.period.end == LATEST_DATE
    assert marts.reporting_currency == "EUR"
    for key, values in expected.items():
        assert tiles[key].value == values["value"], key
        assert tiles[key].previous == values["previous"], key
        assert tiles[key].change_percent == values["change"], key
    # The data has days with NULL store revenue and meta days without conversions, and the sums handle both.
    assert expected["revenue"]["value"] is not None
