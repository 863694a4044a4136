"""The reporting time zone of the marts and the last full day in it, which ends the reporting period.

dbt records the zone in the one-row table marts.reporting_settings. Marts
built before that table existed get UTC. The day is computed by DuckDB's ICU
time zone functions, the ones the models use to date store revenue, so both
read the same time zone database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from spendlake.dashboard.errors import DashboardError

SETTINGS_SCHEMA = "marts"
SETTINGS_TABLE = "reporting_settings"
TIMEZONE_COLUMN = "reporting_timezone"
#: The zone of marts built before marts.reporting_settings existed.
FALLBACK_TIMEZONE = "UTC"


@dataclass(frozen=True)
class ReportingZone:
    """An IANA time zone name, and whether it is the UTC fallback for marts without reporting_settings."""

    name: str
    assumed: bool = False


def read_reporting_zone(connection: duckdb.DuckDBPyConnection, tenant: str) -> ReportingZone:
    """Read the zone from marts.reporting_settings, or return UTC (assumed) when the table is missing."""
    columns = connection.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        [SETTINGS_SCHEMA, SETTINGS_TABLE],
    ).fetchall()
    if not columns:
        return ReportingZone(FALLBACK_TIMEZONE, assumed=True)

    table = f"{SETTINGS_SCHEMA}.{SETTINGS_TABLE}"
    if TIMEZONE_COLUMN not in {column for (column,) in columns}:
        msg = (
            f"The marts of tenant {tenant!r} lack the column {table}.{TIMEZONE_COLUMN}: they were built by another "
            "version of the models. Run `spendlake transform` again with this version."
        )
        raise DashboardError(msg)

    rows = connection.execute(
        f"SELECT DISTINCT {TIMEZONE_COLUMN} FROM {table} WHERE {TIMEZONE_COLUMN} IS NOT NULL ORDER BY 1"
    ).fetchall()
    zones = [zone for (zone,) in rows]
    if not zones:
        msg = f"{table} of tenant {tenant!r} has no {TIMEZONE_COLUMN}. Run `spendlake transform` again."
        raise DashboardError(msg)
    if len(zones) > 1:
        msg = (
            f"{table} of tenant {tenant!r} has more than one {TIMEZONE_COLUMN} ({', '.join(zones)}). "
            "Run `spendlake transform` again, which rebuilds it with one row."
        )
        raise DashboardError(msg)
    return ReportingZone(zones[0])


def last_full_day(connection: duckdb.DuckDBPyConnection, zone: ReportingZone, now: dt.datetime) -> dt.date:
    """Return the day before `now`'s date in the zone: the newest day that has ended there."""
    if now.tzinfo is None:
        msg = f"The time {now.isoformat()} has no time zone: pass an aware datetime such as datetime.now(UTC)."
        raise ValueError(msg)

    try:
        (today,) = connection.execute("SELECT timezone(?, ?::TIMESTAMPTZ)::DATE", [zone.name, now]).fetchone()
    except duckdb.NotImplementedException:
        # DuckDB reports an unknown zone name this way. Its message lists candidate names, which add nothing here.
        msg = (
            f"Unknown reporting time zone {zone.name!r} in {SETTINGS_SCHEMA}.{SETTINGS_TABLE}: "
            "run `spendlake transform` again with an IANA time zone name such as UTC or Europe/Berlin."
        )
        raise DashboardError(msg) from None
    return today - dt.timedelta(days=1)
