"""Build the dashboard's mart tables with known rows in a real encrypted tenant warehouse.

The tables have the contract's columns and are created here, not by dbt, so
the expected values are known. Amounts are multiples of 0.25, so every sum
is exact in floating point whatever the order of addition, and the SQL sums
of a test equal the dashboard's sums bit for bit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from targets.warehouse.duckdb_store import connect_warehouse

TENANT = "acme"
CURRENCY = "EUR"
#: The zone of marts.reporting_settings. LATEST_DATE has ended there from 2026-03-01 23:00 UTC on.
TIMEZONE = "Europe/Berlin"
FIRST_DATE = dt.date(2026, 1, 1)
#: 60 days: the default period of 28 days and the 28 days before it, plus 4 older days outside both.
DAY_COUNT = 60
LATEST_DATE = FIRST_DATE + dt.timedelta(days=DAY_COUNT - 1)
LOADED_AT = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
#: The sources of marts.source_freshness.
SOURCES = ("facebook", "google_ads", "google_analytics", "magento", "stripe")

HOSTILE_NAMES = (
    '<img src="https://example.invalid/x.png" onerror="alert(1)">',
    "</script><script>alert(2)</script>",
    '<a href="https://example.invalid/">click</a>',
)

#: Column types of the marts. `{money}` is the type of amounts: dbt builds DECIMAL(38, 9), and DOUBLE is tested too.
TABLES = {
    "marketing_performance_daily": """
        date DATE, channel VARCHAR, spend_rc {money}, conversions DOUBLE, revenue_rc {money},
        store_revenue_rc {money}, cpa DOUBLE, roas DOUBLE, mer DOUBLE, reporting_currency VARCHAR
    """,
    "campaign_performance_daily": """
        date DATE, channel VARCHAR, campaign_key VARCHAR, campaign_name VARCHAR, spend_rc {money},
        impressions BIGINT, clicks BIGINT, platform_conversions DOUBLE, platform_conversion_value_rc {money},
        sessions BIGINT, conversions DOUBLE, revenue_rc {money}, cpa DOUBLE, roas DOUBLE, reporting_currency VARCHAR
    """,
    "revenue_daily": """
        date DATE, store VARCHAR, currency VARCHAR, orders BIGINT, gross {money}, refunds {money}, net {money},
        gross_rc {money}, refunds_rc {money}, net_rc {money}, reporting_currency VARCHAR
    """,
    "source_freshness": "source VARCHAR, last_loaded_at TIMESTAMPTZ, last_data_date DATE, rows BIGINT",
}
#: The one-row table from which the dashboard reads the reporting time zone. Marts built by older models lack it.
SETTINGS_TABLE = "reporting_settings"
SETTINGS_COLUMNS = "reporting_currency VARCHAR, reporting_timezone VARCHAR, built_at TIMESTAMPTZ"
DECIMAL_MONEY = "DECIMAL(38, 9)"


def day(index: int) -> dt.date:
    return FIRST_DATE + dt.timedelta(days=index)


def create_marts(
    home: Path,
    tenant: str = TENANT,
    *,
    with_rows: bool = True,
    money: str = "DOUBLE",
    timezone: str | None = TIMEZONE,
    unloaded: Iterable[str] = (),
) -> None:
    """Create the tenant's warehouse and the four marts, filled with the known rows unless `with_rows` is false.

    marts.reporting_settings gets one row with `timezone`. With `timezone`
    None it is not created, as in marts built before it existed.

    Every source of SOURCES is loaded except those in `unloaded`. Those get
    0 rows and NULL dates in marts.source_freshness, and the other marts get
    what the dbt models write without them: 0 for GA4's conversions, revenue
    and sessions, 0 for a platform's spend, no revenue_daily rows for a
    store, and 0 store revenue when neither store is loaded.
    """
    missing = frozenset(unloaded)
    unknown = sorted(missing - set(SOURCES))
    if unknown:
        raise ValueError(f"Unknown sources {unknown}: use names of SOURCES.")

    with connect_warehouse(home, tenant, read_only=False) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for table, columns in TABLES.items():
            connection.execute(f"CREATE OR REPLACE TABLE marts.{table} ({columns.format(money=money)})")
        connection.execute(f"DROP TABLE IF EXISTS marts.{SETTINGS_TABLE}")
        if timezone is not None:
            connection.execute(f"CREATE TABLE marts.{SETTINGS_TABLE} ({SETTINGS_COLUMNS})")
            connection.execute(f"INSERT INTO marts.{SETTINGS_TABLE} VALUES (?, ?, ?)", [CURRENCY, timezone, LOADED_AT])
        if not with_rows:
            return

        insert(connection, "marketing_performance_daily", marketing_rows(missing))
        insert(connection, "campaign_performance_daily", campaign_rows(missing))
        insert(connection, "revenue_daily", revenue_rows(missing))
        insert(connection, "source_freshness", freshness_rows(missing))


def insert(connection: Any, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    # One Arrow batch is much faster than executemany. Columns are matched by position.
    columns = list(zip(*rows, strict=True))
    if not columns:
        return
    staged = pa.table({f"column_{number}": list(values) for number, values in enumerate(columns)})
    connection.register("staged_rows", staged)
    connection.execute(f"INSERT INTO marts.{table} SELECT * FROM staged_rows")
    connection.unregister("staged_rows")


def divide(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


#: The source of each channel's spend.
CHANNEL_SOURCES = {"google_ads": "google_ads", "meta": "facebook"}


def marketing_rows(unloaded: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """Return one row per channel and date plus the 'total' row that sums them.

    Meta has no conversions on every third day, and the stores report nothing
    on every tenth day (NULL store revenue).
    """
    rows = []
    for index in range(DAY_COUNT):
        google = (100 + (index % 7) * 12.25, float(3 + index % 4), 250 + index * 1.5)
        meta = (60 + (index % 5) * 8.5, float(index % 3), 140 + (index % 6) * 10.25)
        google = without_unloaded(google, "google_ads", unloaded)
        meta = without_unloaded(meta, "meta", unloaded)
        store = None if index % 10 == 0 else 500 + index * 3.75
        if {"stripe", "magento"} <= unloaded:
            store = 0.0
        for channel, (spend, conversions, revenue) in (("google_ads", google), ("meta", meta)):
            rows.append(
                (day(index), channel, spend, conversions, revenue, None,
                 divide(spend, conversions), divide(revenue, spend), None, CURRENCY)
            )  # fmt: skip
        spend = google[0] + meta[0]
        conversions = google[1] + meta[1]
        revenue = google[2] + meta[2]
        rows.append(
            (day(index), "total", spend, conversions, revenue, store,
             divide(spend, conversions), divide(revenue, spend), divide(store, spend), CURRENCY)
        )  # fmt: skip
    return rows


def without_unloaded(
    values: tuple[float, float, float], channel: str, unloaded: frozenset[str]
) -> tuple[float, float, float]:
    """Return (spend, conversions, revenue) with 0 for the values of sources in `unloaded`."""
    spend, conversions, revenue = values
    if CHANNEL_SOURCES[channel] in unloaded:
        spend = 0.0
    if "google_analytics" in unloaded:
        conversions = revenue = 0.0
    return spend, conversions, revenue


def campaign_names() -> list[tuple[str, str, str | None]]:
    """Return (channel, campaign_key, campaign_name) of 20 campaigns. Three have hostile names, and two have none."""
    campaigns = []
    for number in range(20):
        channel = "google_ads" if number % 2 == 0 else "meta"
        name: str | None = f"Campaign {number:02d} {'search' if channel == 'google_ads' else 'social'}"
        if number in (1, 2, 3):
            name = HOSTILE_NAMES[number - 1]
        if number in (4, 19):
            name = None  # the mart has no platform name, as for a campaign seen by GA4 only
        campaigns.append((channel, f"campaign_{number:02d}", name))
    return campaigns


def campaign_rows(unloaded: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """Return daily rows of 20 campaigns. Spend falls with the number, so the top 15 by spend are numbers 0-14.

    Campaign 5 has no conversions (CPA is NULL), and campaign 19 has no spend (ROAS is NULL).
    """
    rows = []
    for number, (channel, key, name) in enumerate(campaign_names()):
        for index in range(DAY_COUNT):
            spend = 0.0 if number == 19 else (20 - number) * 2.5 + (index % 3) * 0.25
            conversions = 0.0 if number == 5 else float(1 + (index + number) % 3)
            revenue = (20 - number) * 6.5 + (index % 4) * 0.5
            platform = (1000 + index, 50 + index, conversions, revenue)
            if CHANNEL_SOURCES[channel] in unloaded:
                spend, platform = 0.0, (0, 0, 0.0, 0.0)
            sessions = 200 + index
            if "google_analytics" in unloaded:
                sessions, conversions, revenue = 0, 0.0, 0.0
            rows.append(
                (day(index), channel, key, name, spend, *platform,
                 sessions, conversions, revenue, divide(spend, conversions), divide(revenue, spend), CURRENCY)
            )  # fmt: skip
    return rows


def revenue_rows(unloaded: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    rows = []
    for index in range(DAY_COUNT):
        for store, orders, gross, refunds in (
            ("stripe", 10 + index % 5, 300 + index * 2.5, (index % 4) * 5.25),
            ("magento", 4 + index % 3, 220 + index * 1.25, (index % 2) * 12.5),
        ):
            if store in unloaded:
                continue
            net = gross - refunds
            rows.append((day(index), store, CURRENCY, orders, gross, refunds, net, gross, refunds, net, CURRENCY))
    return rows


def freshness_rows(unloaded: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """Return a row per source. GA4 was loaded 72 hours before LOADED_AT (stale), a source in `unloaded` never."""
    loaded = [
        ("facebook", LOADED_AT - dt.timedelta(hours=3), LATEST_DATE, 1200),
        ("google_ads", LOADED_AT, LATEST_DATE, 2400),
        ("google_analytics", LOADED_AT - dt.timedelta(hours=72), LATEST_DATE - dt.timedelta(days=3), 900),
        ("magento", LOADED_AT - dt.timedelta(hours=1), LATEST_DATE, 700),
        ("stripe", LOADED_AT - dt.timedelta(minutes=30), LATEST_DATE, 5400),
    ]
    return [(row[0], None, None, 0) if row[0] in unloaded else row for row in loaded]


#: SQL for the five KPIs of the 'total' rows in one period. The parameters are the first and last date.
#: A KPI is NULL when a source it needs has no rows in marts.source_freshness: GA4 for ROAS and CPA, Google Ads
#: or Meta for spend, ROAS, CPA and MER, Stripe or Magento for revenue and MER. The marts hold 0 for those values.
KPI_SQL = """
    WITH loaded AS (
        SELECT coalesce(bool_or("rows" > 0 AND source = 'google_analytics'), false) AS analytics,
               coalesce(bool_or("rows" > 0 AND source IN ('google_ads', 'facebook')), false) AS ads,
               coalesce(bool_or("rows" > 0 AND source IN ('stripe', 'magento')), false) AS stores
        FROM marts.source_freshness
    )
    SELECT CASE WHEN any_value(ads) THEN sum(spend_rc) END AS spend,
           CASE WHEN any_value(stores) THEN sum(store_revenue_rc) END AS revenue,
           CASE WHEN any_value(analytics AND ads) THEN sum(revenue_rc) / nullif(sum(spend_rc), 0) END AS roas,
           CASE WHEN any_value(analytics AND ads) THEN sum(spend_rc) / nullif(sum(conversions), 0) END AS cpa,
           CASE WHEN any_value(stores AND ads) THEN sum(store_revenue_rc) / nullif(sum(spend_rc), 0) END AS mer
    FROM marts.marketing_performance_daily CROSS JOIN loaded
    WHERE channel = 'total' AND date BETWEEN ? AND ?
"""

#: The period of `$days` days, (start, end, previous start, previous end). It ends at the latest date in the marts
#: or at the day before `$now`'s date in the zone `$zone`, whichever is earlier. `$now` NULL is the current time.
PERIOD_SQL = """
    WITH bounds AS (
        SELECT least(
            (SELECT max(date) FROM marts.marketing_performance_daily),
            timezone($zone, coalesce($now::TIMESTAMPTZ, current_timestamp))::DATE - 1
        ) AS period_end
    )
    SELECT period_end - ($days - 1), period_end, period_end - (2 * $days - 1), period_end - $days
    FROM bounds
"""


def reporting_timezone(connection: Any) -> str:
    """Return the zone of marts.reporting_settings, or UTC when the marts have no such table."""
    found = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = ?", [SETTINGS_TABLE]
    ).fetchone()[0]
    if not found:
        return "UTC"
    return connection.execute(f"SELECT reporting_timezone FROM marts.{SETTINGS_TABLE}").fetchone()[0]


def expected_kpis(
    home: Path, tenant: str = TENANT, *, days: int = 28, now: dt.datetime | None = None
) -> dict[str, dict[str, float | None]]:
    """Compute the KPIs of the period and of the one before it by SQL on the marts.

    The period follows the dashboard's rule at `now` (default: the current time).
    """
    names = ("spend", "revenue", "roas", "cpa", "mer")
    with connect_warehouse(home, tenant, read_only=True) as connection:
        parameters = {"zone": reporting_timezone(connection), "now": now, "days": days}
        start, end, previous_start, previous_end = connection.execute(PERIOD_SQL, parameters).fetchone()
        current = connection.execute(KPI_SQL, [start, end]).fetchone()
        previous = connection.execute(KPI_SQL, [previous_start, previous_end]).fetchone()

    expected = {}
    for name, exact_value, exact_before in zip(names, current, previous, strict=True):
        # DECIMAL sums come back exact, and the page shows them rounded once to float.
        value = None if exact_value is None else float(exact_value)
        before = None if exact_before is None else float(exact_before)
        change = None if value is None or not before else (value - before) / abs(before) * 100
        expected[name] = {"value": value, "previous": before, "change": change}
    return expected
