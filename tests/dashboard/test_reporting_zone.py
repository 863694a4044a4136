"""The period ends at the last full day in the reporting time zone of marts.reporting_settings, or in UTC without it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spendlake.dashboard.build import build_dashboard
from spendlake.dashboard.data import read_marts
from spendlake.dashboard.errors import DashboardError
from targets.warehouse.duckdb_store import connect_warehouse
from tests.dashboard.marts import LATEST_DATE, TENANT, create_marts, expected_kpis

UTC = dt.UTC
MARCH_1 = dt.date(2026, 3, 1)
FEBRUARY_28 = dt.date(2026, 2, 28)


@pytest.mark.parametrize(
    ("zone", "now", "end"),
    [
        # 13:00 on 2026-03-01 in Berlin: March 1 has not ended there.
        ("Europe/Berlin", dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC), FEBRUARY_28),
        # 00:30 on 2026-03-02 in Berlin, but still 23:30 on March 1 in UTC.
        ("Europe/Berlin", dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC), MARCH_1),
        (None, dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC), FEBRUARY_28),
        # 23:00 on 2026-03-01 in Auckland (UTC+13 in March).
        ("Pacific/Auckland", dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC), FEBRUARY_28),
        ("Pacific/Auckland", dt.datetime(2026, 3, 1, 11, 0, tzinfo=UTC), MARCH_1),
        # 23:00 on 2026-03-01 in Los Angeles (UTC-8).
        ("America/Los_Angeles", dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC), FEBRUARY_28),
        # Long after the latest date, the period ends at it.
        ("Europe/Berlin", dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC), LATEST_DATE),
    ],
)
def test_period_end_in_zone(spendlake_env: Path, zone: str | None, now: dt.datetime, end: dt.date) -> None:
    create_marts(spendlake_env, timezone=zone)

    marts = read_marts(spendlake_env, TENANT, days=28, now=now)

    assert marts.period.end == end
    assert marts.period.start == end - dt.timedelta(days=27)
    assert marts.reporting_zone.name == (zone or "UTC")
    assert marts.reporting_zone.assumed is (zone is None)


def test_unfinished_day_left_out(spendlake_env: Path) -> None:
    # Auckland's spend of 2026-03-02 arrived while the stores' day had not ended in Berlin.
    create_marts(spendlake_env)
    unfinished = LATEST_DATE + dt.timedelta(days=1)
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute(
            "INSERT INTO marts.marketing_performance_daily (date, channel, spend_rc, conversions, revenue_rc,"
            " store_revenue_rc, reporting_currency) VALUES (?, 'total', 80.0, 0.0, 0.0, 0.0, 'EUR')",
            [unfinished],
        )
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    expected = expected_kpis(spendlake_env, days=1, now=now)

    result = build_dashboard(spendlake_env, TENANT, days=1, now=now)

    tiles = {tile.key: tile for tile in result.kpis}
    assert result.period.end == LATEST_DATE
    assert tiles["revenue"].value == expected["revenue"]["value"]
    assert tiles["revenue"].value > 0
    assert tiles["revenue"].change_percent == expected["revenue"]["change"]
    assert tiles["spend"].value == expected["spend"]["value"]
    # The day after, the same SQL includes the day that was unfinished before.
    assert expected_kpis(spendlake_env, days=1, now=now + dt.timedelta(days=1))["spend"]["value"] == 80.0


def test_expected_kpis_follow_zone(spendlake_env: Path) -> None:
    create_marts(spendlake_env, timezone="Pacific/Auckland")
    now = dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

    tiles = {tile.key: tile for tile in build_dashboard(spendlake_env, TENANT, days=7, now=now).kpis}
    expected = expected_kpis(spendlake_env, days=7, now=now)

    for key, values in expected.items():
        assert tiles[key].value == values["value"], key
        assert tiles[key].previous == values["previous"], key


def test_unknown_zone(spendlake_env: Path) -> None:
    create_marts(spendlake_env, timezone="Mars/Olympus_Mons")

    with pytest.raises(DashboardError) as caught:
        read_marts(spendlake_env, TENANT, days=28)

    assert str(caught.value) == (
        "Unknown reporting time zone 'Mars/Olympus_Mons' in marts.reporting_settings: run `spendlake transform` "
        "again with an IANA time zone name such as UTC or Europe/Berlin."
    )


def test_two_zones(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute("INSERT INTO marts.reporting_settings VALUES ('EUR', 'UTC', now())")

    with pytest.raises(DashboardError, match=r"has more than one reporting_timezone \(Europe/Berlin, UTC\)"):
        read_marts(spendlake_env, TENANT, days=28)


def test_empty_settings(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute("DELETE FROM marts.reporting_settings")

    with pytest.raises(DashboardError, match="marts.reporting_settings of tenant 'acme' has no reporting_timezone"):
        read_marts(spendlake_env, TENANT, days=28)


def test_settings_without_zone_column(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    with connect_warehouse(spendlake_env, TENANT, read_only=False) as connection:
        connection.execute("ALTER TABLE marts.reporting_settings DROP COLUMN reporting_timezone")

    with pytest.raises(DashboardError, match=r"lack the column marts\.reporting_settings\.reporting_timezone"):
        read_marts(spendlake_env, TENANT, days=28)


def test_zone_of_empty_marts(spendlake_env: Path) -> None:
    create_marts(spendlake_env, with_rows=False, timezone="Asia/Tokyo")

    marts = read_marts(spendlake_env, TENANT, days=28)

    assert marts.period is None
    assert marts.reporting_zone.name == "Asia/Tokyo"


def test_naive_now_rejected(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    with pytest.raises(ValueError, match="has no time zone"):
        read_marts(spendlake_env, TENANT, days=28, now=dt.datetime(2026, 3, 2, 12, 0))
