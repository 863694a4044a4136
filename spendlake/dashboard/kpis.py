"""KPI maths: the reporting period, sums over it, ratios and the change against the previous period.

Every ratio is computed from sums over the whole period, never as an average
of daily ratios. Sums follow SQL: NULL values are skipped, and a period
without any value sums to None. A ratio is None when either side is None or
the denominator is zero, and the page shows None as "n/a".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

TOTAL_CHANNEL = "total"
DEFAULT_DAYS = 28
#: Decimal precision for sums: 38 digits of a DuckDB DECIMAL plus room for the carries of many rows.
EXACT_DECIMAL_DIGITS = 60


@dataclass(frozen=True)
class Period:
    """The reporting period (`start` to `end`, both included) and the period of equal length before it."""

    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class DailyRow:
    """One row of marts.marketing_performance_daily, with amounts in the reporting currency."""

    date: dt.date
    channel: str
    spend: float | Decimal | None
    conversions: float | Decimal | None
    revenue: float | Decimal | None
    store_revenue: float | Decimal | None


class SpendRatios:
    """CPA and ROAS of a class with `spend`, `conversions` and `revenue` sums."""

    spend: float | None
    conversions: float | None
    revenue: float | None

    @property
    def cpa(self) -> float | None:
        return ratio(self.spend, self.conversions)

    @property
    def roas(self) -> float | None:
        return ratio(self.revenue, self.spend)


@dataclass(frozen=True)
class Totals(SpendRatios):
    """Sums of one channel's rows over a period."""

    spend: float | None
    conversions: float | None
    revenue: float | None
    store_revenue: float | None

    @property
    def mer(self) -> float | None:
        return ratio(self.store_revenue, self.spend)


@dataclass(frozen=True)
class Kpi:
    """One KPI tile: the value of the period, of the previous period and the change in percent."""

    key: str
    label: str
    is_money: bool
    value: float | None
    previous: float | None
    change_percent: float | None
    #: True when a rise is good news (revenue), False when it is bad (CPA), None when neither (spend).
    higher_is_better: bool | None


@dataclass(frozen=True)
class ChannelMetrics:
    """Sums and ratios of one channel over the reporting period."""

    channel: str
    totals: Totals


def reporting_period(latest: dt.date, days: int = DEFAULT_DAYS) -> Period:
    """Return the `days` days ending at `latest` (included) and the `days` days before them."""
    if days < 1:
        msg = f"Invalid period length {days}: use a number of days of at least 1."
        raise ValueError(msg)

    length = dt.timedelta(days=days)
    start = latest - length + dt.timedelta(days=1)
    return Period(start=start, end=latest, previous_start=start - length, previous_end=start - dt.timedelta(days=1))


def sum_present(values: Iterable[float | Decimal | None]) -> float | None:
    """Return the sum of the values that are not None as a float, or None when there are none.

    The sum is exact before its one rounding to float. DECIMAL columns, which
    DuckDB returns as `Decimal`, are added as decimals, as SQL's sum does.
    """
    present = [value for value in values if value is not None]
    if not present:
        return None
    if all(isinstance(value, Decimal) for value in present):
        with localcontext() as context:
            # Enough digits for any sum of DuckDB DECIMAL(38, s) values, so no addition rounds.
            context.prec = EXACT_DECIMAL_DIGITS
            return float(sum(present, Decimal(0)))
    return math.fsum(float(value) for value in present)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is None or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def change_percent(current: float | None, previous: float | None) -> float | None:
    """Return the change from `previous` to `current` in percent of |previous|.

    None when either value is missing or `previous` is zero.
    """
    if current is None or previous is None or previous == 0:
        return None
    # The absolute value keeps the sign meaningful when the previous value is negative (refunds above sales).
    return (current - previous) / abs(previous) * 100


def period_totals(rows: Iterable[DailyRow], start: dt.date, end: dt.date, channel: str = TOTAL_CHANNEL) -> Totals:
    """Sum the rows of `channel` dated from `start` to `end`, both included."""
    selected = [row for row in rows if row.channel == channel and start <= row.date <= end]
    return Totals(
        spend=sum_present(row.spend for row in selected),
        conversions=sum_present(row.conversions for row in selected),
        revenue=sum_present(row.revenue for row in selected),
        store_revenue=sum_present(row.store_revenue for row in selected),
    )


def kpi_tiles(rows: Sequence[DailyRow], period: Period | None) -> list[Kpi]:
    """Return the five blended KPIs (spend, revenue, ROAS, CPA, MER) from the 'total' rows.

    Without a period (the marts have no rows) every value is None.
    """
    if period is None:
        current = previous = Totals(spend=None, conversions=None, revenue=None, store_revenue=None)
    else:
        current = period_totals(rows, period.start, period.end)
        previous = period_totals(rows, period.previous_start, period.previous_end)
    definitions = (
        ("spend", "Spend", True, lambda totals: totals.spend, None),
        ("revenue", "Revenue", True, lambda totals: totals.store_revenue, True),
        ("roas", "ROAS", False, lambda totals: totals.roas, True),
        ("cpa", "CPA", True, lambda totals: totals.cpa, False),
        ("mer", "MER", False, lambda totals: totals.mer, True),
    )

    tiles = []
    for key, label, is_money, measure, higher_is_better in definitions:
        value, before = measure(current), measure(previous)
        tiles.append(
            Kpi(
                key=key,
                label=label,
                is_money=is_money,
                value=value,
                previous=before,
                change_percent=change_percent(value, before),
                higher_is_better=higher_is_better,
            )
        )
    return tiles


def channel_metrics(rows: Sequence[DailyRow], period: Period) -> list[ChannelMetrics]:
    """Return the sums of every channel except 'total' over the period, by spend (largest first), then name."""
    channels = sorted({row.channel for row in rows if row.channel != TOTAL_CHANNEL})
    metrics = [ChannelMetrics(channel, period_totals(rows, period.start, period.end, channel)) for channel in channels]
    return sorted(metrics, key=lambda item: -(item.totals.spend or 0.0))
