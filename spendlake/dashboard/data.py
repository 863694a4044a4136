"""Read what the dashboard shows from the marts of a tenant's encrypted warehouse, and nothing else.

The marts are the tables that `spendlake transform` (dbt) builds in the schema
`marts` of the tenant's DuckDB database. The connection is read-only, and
external file access is switched off, so the decrypted data stays in memory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from privacy.keys import KeyringError
from spendlake.dashboard.errors import DashboardError
from spendlake.dashboard.kpis import DailyRow, Period, SpendRatios, reporting_period
from spendlake.dashboard.reporting_zone import (
    ReportingZone,
    last_full_day,
    read_reporting_zone,
)
from spendlake.dashboard.sources import LoadedSources, loaded_sources
from spendlake.paths import duckdb_path
from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.errors import WarehouseError

MARTS_SCHEMA = "marts"
CAMPAIGN_LIMIT = 15

#: The columns the dashboard reads from each mart.
MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "marketing_performance_daily": (
        "date",
        "channel",
        "spend_rc",
        "conversions",
        "revenue_rc",
        "store_revenue_rc",
        "reporting_currency",
    ),
    "campaign_performance_daily": (
        "date",
        "channel",
        "campaign_key",
        "campaign_name",
        "spend_rc",
        "conversions",
        "revenue_rc",
        "reporting_currency",
    ),
    "revenue_daily": ("date", "store", "orders", "gross_rc", "refunds_rc", "net_rc", "reporting_currency"),
    "source_freshness": ("source", "last_loaded_at", "last_data_date", "rows"),
}


@dataclass(frozen=True)
class CampaignRow(SpendRatios):
    """Sums of one campaign over the reporting period, in the reporting currency."""

    channel: str
    campaign_key: str
    campaign_name: str
    spend: float | None
    conversions: float | None
    revenue: float | None


@dataclass(frozen=True)
class StoreRow:
    """Sums of one store's revenue over the reporting period, in the reporting currency."""

    store: str
    orders: int | None
    gross: float | None
    refunds: float | None
    net: float | None


@dataclass(frozen=True)
class FreshnessRow:
    """When a source was last loaded and the date of its newest fact."""

    source: str
    last_loaded_at: dt.datetime | None
    last_data_date: dt.date | None
    rows: int | None


@dataclass(frozen=True)
class MartData:
    """Everything the dashboard shows. `period` is None when marketing_performance_daily has no rows.

    In `daily` and `campaigns`, the values that come from sources not loaded
    (see `loaded`) are None, not the marts' zeros.
    """

    reporting_currency: str | None
    reporting_zone: ReportingZone
    period: Period | None
    loaded: LoadedSources
    daily: list[DailyRow] = field(default_factory=list)
    campaigns: list[CampaignRow] = field(default_factory=list)
    stores: list[StoreRow] = field(default_factory=list)
    freshness: list[FreshnessRow] = field(default_factory=list)


def read_marts(
    home: Path, tenant: str, days: int, campaign_limit: int = CAMPAIGN_LIMIT, *, now: dt.datetime | None = None
) -> MartData:
    """Read the marts of `tenant` for a period of `days` days and the days before it.

    The period ends at the latest date in the marts or at the last full day
    in the reporting time zone at `now` (default: the current time),
    whichever is earlier. So a day that has not ended yet is left out.
    """
    connection = _connect(home, tenant)
    try:
        check_marts(connection, tenant)
        return _read(connection, tenant, days, campaign_limit, now or dt.datetime.now(dt.UTC))
    except duckdb.Error as error:
        # NOTE: DuckDB's message may quote a stored value, so only the error class is shown.
        msg = f"Reading the marts of tenant {tenant!r} failed ({type(error).__name__}). Run `spendlake transform` again."
        raise DashboardError(msg) from None
    finally:
        connection.close()


def _connect(home: Path, tenant: str) -> duckdb.DuckDBPyConnection:
    path = duckdb_path(home, tenant)
    if not path.exists():
        msg = (
            f"Tenant {tenant!r} has no warehouse at {path}: load its data (for example with `make demo`) "
            "and run `spendlake transform` first."
        )
        raise DashboardError(msg)

    try:
        connection = connect_warehouse(home, tenant, read_only=True)
    except (KeyringError, WarehouseError) as error:
        raise DashboardError(str(error)) from None

    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def check_marts(connection: duckdb.DuckDBPyConnection, tenant: str) -> None:
    """Raise `DashboardError` naming every mart table or column the dashboard needs but the database lacks."""
    present: dict[str, set[str]] = {}
    rows = connection.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ?",
        [MARTS_SCHEMA],
    ).fetchall()
    for table, column in rows:
        present.setdefault(table, set()).add(column)

    missing_tables = [table for table in MART_COLUMNS if table not in present]
    if missing_tables:
        names = ", ".join(f"{MARTS_SCHEMA}.{table}" for table in missing_tables)
        msg = f"Missing mart tables {names} in the warehouse of tenant {tenant!r}: run `spendlake transform` first."
        raise DashboardError(msg)

    missing_columns = [
        f"{MARTS_SCHEMA}.{table}.{column}"
        for table, columns in MART_COLUMNS.items()
        for column in columns
        if column not in present[table]
    ]
    if missing_columns:
        msg = (
            f"The marts of tenant {tenant!r} lack the columns {', '.join(missing_columns)}: they were built by "
            "another version of the models. Run `spendlake transform` again with this version."
        )
        raise DashboardError(msg)


def _read(
    connection: duckdb.DuckDBPyConnection, tenant: str, days: int, campaign_limit: int, now: dt.datetime
) -> MartData:
    currency = _reporting_currency(connection, tenant)
    zone = read_reporting_zone(connection, tenant)
    full_day = last_full_day(connection, zone, now)
    latest = connection.execute("SELECT max(date) FROM marts.marketing_performance_daily").fetchone()[0]
    freshness = _freshness(connection)
    loaded = loaded_sources({row.source: row.rows for row in freshness})
    if latest is None:
        return MartData(
            reporting_currency=currency, reporting_zone=zone, period=None, loaded=loaded, freshness=freshness
        )

    # Ad platforms date their rows in the account's time zone, which can be ahead of the reporting one.
    period = reporting_period(min(latest, full_day), days)
    return MartData(
        reporting_currency=currency,
        reporting_zone=zone,
        period=period,
        loaded=loaded,
        daily=[loaded.without_missing(row) for row in _daily_rows(connection, period)],
        campaigns=[loaded.without_missing(row) for row in _campaigns(connection, period, campaign_limit)],
        stores=_stores(connection, period),
        freshness=freshness,
    )


def _reporting_currency(connection: duckdb.DuckDBPyConnection, tenant: str) -> str | None:
    rows = connection.execute(
        "SELECT DISTINCT reporting_currency FROM ("
        " SELECT reporting_currency FROM marts.marketing_performance_daily"
        " UNION ALL SELECT reporting_currency FROM marts.campaign_performance_daily"
        " UNION ALL SELECT reporting_currency FROM marts.revenue_daily"
        ") WHERE reporting_currency IS NOT NULL ORDER BY 1"
    ).fetchall()
    currencies = [row[0] for row in rows]
    if len(currencies) > 1:
        msg = (
            f"The marts of tenant {tenant!r} mix the reporting currencies {', '.join(currencies)}, so they cannot "
            "be summed. Run `spendlake transform` again with one reporting_currency for all models."
        )
        raise DashboardError(msg)
    return currencies[0] if currencies else None


def _daily_rows(connection: duckdb.DuckDBPyConnection, period: Period) -> list[DailyRow]:
    rows = connection.execute(
        # No cast: kpis.sum_present adds DECIMAL amounts exactly, as DuckDB's sum does.
        "SELECT date, channel, spend_rc, conversions, revenue_rc, store_revenue_rc "
        "FROM marts.marketing_performance_daily WHERE date BETWEEN ? AND ? ORDER BY date, channel",
        [period.previous_start, period.end],
    ).fetchall()
    return [DailyRow(*row) for row in rows]


def _campaigns(connection: duckdb.DuckDBPyConnection, period: Period, limit: int) -> list[CampaignRow]:
    # A campaign shows its newest name, or its key when it has none (a campaign seen by GA4 only).
    rows = connection.execute(
        "SELECT channel, campaign_key,"
        " coalesce(arg_max(campaign_name, date) FILTER (WHERE campaign_name IS NOT NULL), campaign_key),"
        " sum(spend_rc)::DOUBLE, sum(conversions)::DOUBLE, sum(revenue_rc)::DOUBLE "
        "FROM marts.campaign_performance_daily WHERE date BETWEEN ? AND ? "
        "GROUP BY channel, campaign_key "
        "ORDER BY sum(spend_rc) DESC NULLS LAST, channel, campaign_key LIMIT ?",
        [period.start, period.end, limit],
    ).fetchall()
    return [CampaignRow(*row) for row in rows]


def _stores(connection: duckdb.DuckDBPyConnection, period: Period) -> list[StoreRow]:
    rows = connection.execute(
        "SELECT store, sum(orders)::BIGINT, sum(gross_rc)::DOUBLE, sum(refunds_rc)::DOUBLE, sum(net_rc)::DOUBLE "
        "FROM marts.revenue_daily WHERE date BETWEEN ? AND ? GROUP BY store ORDER BY store",
        [period.start, period.end],
    ).fetchall()
    return [StoreRow(*row) for row in rows]


def _freshness(connection: duckdb.DuckDBPyConnection) -> list[FreshnessRow]:
    # epoch_us reads TIMESTAMP as UTC and TIMESTAMPTZ as the instant, so no session time zone is involved.
    rows = connection.execute(
        'SELECT source, epoch_us(last_loaded_at), last_data_date::DATE, "rows"::BIGINT '
        "FROM marts.source_freshness ORDER BY source"
    ).fetchall()
    return [FreshnessRow(source, _utc_from_micros(micros), last_date, count) for source, micros, last_date, count in rows]


def _utc_from_micros(micros: int | None) -> dt.datetime | None:
    if micros is None:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
