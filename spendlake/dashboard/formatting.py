"""Text for numbers on the page: money in the reporting currency, ratios, changes, counts. None is "n/a"."""

from __future__ import annotations

import datetime as dt

from spendlake.currencies import exponent

NOT_AVAILABLE = "n/a"
#: Decimal places for money when the reporting currency is unknown or not in the exponent table.
DEFAULT_MONEY_DECIMALS = 2

CHANNEL_LABELS = {"google_ads": "Google Ads", "meta": "Meta", "total": "Total"}
SOURCE_LABELS = {
    "google_ads": "Google Ads",
    "facebook": "Meta (Facebook)",
    "google_analytics": "Google Analytics 4",
    "stripe": "Stripe",
    "magento": "Magento",
}


def money_decimals(currency: str | None) -> int:
    """Return the decimal places of `currency`'s minor unit (JPY 0, USD 2), or 2 when it is unknown."""
    if not currency:
        return DEFAULT_MONEY_DECIMALS
    try:
        return exponent(currency)
    except ValueError:
        return DEFAULT_MONEY_DECIMALS


def format_money(value: float | None, currency: str | None) -> str:
    """Format an amount as "USD 1,234.50", or "1,234.50" when the currency is unknown."""
    if value is None:
        return NOT_AVAILABLE
    text = f"{value:,.{money_decimals(currency)}f}"
    return f"{currency} {text}" if currency else text


def format_ratio(value: float | None) -> str:
    """Format a ratio such as ROAS or MER with two decimals: 3.25."""
    return NOT_AVAILABLE if value is None else f"{value:,.2f}"


def format_count(value: float | None, decimals: int = 0) -> str:
    """Format a count with thousands separators, and one decimal when it is fractional (attributed conversions)."""
    if value is None:
        return NOT_AVAILABLE
    if decimals == 0 and value != round(value):
        decimals = 1
    return f"{value:,.{decimals}f}"


def format_change(value: float | None) -> str:
    """Format a change in percent with its sign: +12.5%, −3.0% (a true minus sign), 0.0%."""
    if value is None:
        return NOT_AVAILABLE
    rounded = round(value, 1)
    if rounded == 0:
        return "0.0%"
    sign = "+" if rounded > 0 else "\N{MINUS SIGN}"
    return f"{sign}{abs(rounded):,.1f}%"


def format_days(count: int) -> str:
    """Format a number of days: "1 day", "28 days"."""
    return f"{count:,} day" if count == 1 else f"{count:,} days"


def format_hours(value: float | None) -> str:
    """Format an age in hours with one decimal."""
    return NOT_AVAILABLE if value is None else f"{value:,.1f} h"


def format_timestamp(value: dt.datetime | None, zone: bool = True) -> str:
    """Format a time in UTC to the minute: 2026-03-01 06:00 UTC, without " UTC" when `zone` is false."""
    if value is None:
        return NOT_AVAILABLE
    text = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return f"{text} UTC" if zone else text


def format_date(value: dt.date | None) -> str:
    """Format a date as ISO 8601."""
    return NOT_AVAILABLE if value is None else value.isoformat()


def channel_label(channel: str) -> str:
    """Return the display name of a mart channel: 'google_ads' -> 'Google Ads'."""
    return CHANNEL_LABELS.get(channel, channel.replace("_", " ").capitalize())


def source_label(source: str) -> str:
    """Return the display name of a source of source_freshness."""
    return SOURCE_LABELS.get(source, source.replace("_", " ").capitalize())


def raw_number(value: float | int | None) -> str:
    """Return the exact value for a `data-value` attribute: the shortest text that reads back as the same float."""
    return "" if value is None else repr(float(value))
