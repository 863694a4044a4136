"""Build a tenant's dashboard page from its marts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from spendlake.dashboard import charts
from spendlake.dashboard.data import MartData, read_marts
from spendlake.dashboard.formatting import (
    format_change,
    format_days,
    format_money,
    format_ratio,
)
from spendlake.dashboard.kpis import (
    DEFAULT_DAYS,
    Kpi,
    Period,
    channel_metrics,
    kpi_tiles,
)
from spendlake.dashboard.render import Chart, Page, render_page
from spendlake.dashboard.reporting_zone import ReportingZone
from spendlake.dashboard.sources import SourceNote

#: Shown when the marts predate marts.reporting_settings, so the zone is the UTC fallback.
ASSUMED_ZONE_NOTE = (
    "The marts have no reporting_settings table, so UTC is assumed. Run `spendlake transform` to record the zone."
)


@dataclass(frozen=True)
class Dashboard:
    """The page and the numbers the CLI prints."""

    html: str
    kpis: list[Kpi]
    period: Period | None
    reporting_currency: str | None
    reporting_zone: ReportingZone
    #: Why some KPIs are n/a: one note per kind of source that is not loaded.
    source_notes: list[SourceNote]


def build_dashboard(home: Path, tenant: str, *, days: int = DEFAULT_DAYS, now: dt.datetime | None = None) -> Dashboard:
    """Read the tenant's marts and return the dashboard for the last `days` full days of data.

    `now` (an aware datetime, default the current time) is the generation time
    on the page, and the period ends before `now`'s date in the reporting time zone.
    """
    generated_at = now or dt.datetime.now(dt.UTC)
    marts = read_marts(home, tenant, days, now=generated_at)
    page = dashboard_page(marts, tenant, generated_at)
    return Dashboard(
        html=render_page(page),
        kpis=page.kpis,
        period=marts.period,
        reporting_currency=marts.reporting_currency,
        reporting_zone=marts.reporting_zone,
        source_notes=page.source_notes,
    )


def dashboard_page(marts: MartData, tenant: str, generated_at: dt.datetime) -> Page:
    """Compute the KPIs and figures of the page from what the marts returned."""
    period = marts.period
    currency = marts.reporting_currency
    channels = channel_metrics(marts.daily, period) if period else []
    colours = charts.channel_colours([item.channel for item in channels] + [row.channel for row in marts.campaigns])

    campaign_title = "CPA and ROAS by campaign"
    if marts.campaigns:
        campaign_title = f"CPA and ROAS of the top {len(marts.campaigns)} campaigns by spend"
    figures = [
        Chart(
            name="trend",
            title="Spend and revenue per day",
            note="Daily values of both periods. The shaded part is the previous period.",
            fragment=charts.figure_html(charts.trend_figure(marts.daily, period, currency), "trend"),
        ),
        Chart(
            name="channels",
            title="CPA and ROAS by channel",
            note="Sums over the reporting period.",
            fragment=charts.figure_html(charts.channel_figure(channels, colours, currency), "channels"),
        ),
        Chart(
            name="campaigns",
            title=campaign_title,
            note="Campaigns without conversions or spend show n/a.",
            fragment=charts.figure_html(charts.campaign_figure(marts.campaigns, colours, currency), "campaigns"),
        ),
    ]

    return Page(
        tenant=tenant,
        generated_at=generated_at,
        reporting_currency=currency,
        reporting_zone=marts.reporting_zone,
        period=period,
        kpis=kpi_tiles(marts.daily, period),
        charts=figures,
        campaigns=marts.campaigns,
        stores=marts.stores,
        freshness=marts.freshness,
        source_notes=marts.loaded.notes(),
        channel_colours=colours,
    )


def summary_lines(result: Dashboard) -> list[str]:
    """Return the period with its time zone, one line per KPI (value, change, previous value) and the source notes."""
    notes = [f"  {note.text}" for note in result.source_notes]
    period = result.period
    if period is None:
        return ["The marts have no rows yet: every KPI is n/a.", *notes]

    currency = result.reporting_currency
    zone = result.reporting_zone
    lines = [
        f"Period {period.start} to {period.end} ({format_days(period.days)}, time zone {zone.name}), "
        f"compared with {period.previous_start} to {period.previous_end}"
    ]
    if zone.assumed:
        lines.append(f"  {ASSUMED_ZONE_NOTE}")
    for kpi in result.kpis:
        value_text = format_money(kpi.value, currency) if kpi.is_money else format_ratio(kpi.value)
        previous_text = format_money(kpi.previous, currency) if kpi.is_money else format_ratio(kpi.previous)
        change_text = format_change(kpi.change_percent)
        lines.append(f"  {kpi.label:<8} {value_text:>20}  {change_text:>8}  (previous {previous_text})")
    return lines + notes
