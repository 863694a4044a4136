"""Render the dashboard as one self-contained HTML page: Jinja2 with autoescape, plotly.js inlined once.

The page loads nothing: its Content-Security-Policy allows only inline
scripts and styles and data: images, so even a value that slipped markup into
the page could not fetch a resource.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache

import jinja2
import plotly.offline
from markupsafe import Markup

from spendlake.dashboard import formatting
from spendlake.dashboard.data import CampaignRow, FreshnessRow, StoreRow
from spendlake.dashboard.kpis import Kpi, Period
from spendlake.dashboard.reporting_zone import ReportingZone
from spendlake.dashboard.sources import SourceNote

#: The page may run inline scripts (plotly.js needs them) and load nothing from anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
TEMPLATE = "dashboard.html.j2"
#: Sources not loaded for this many hours are marked stale, because the pipeline runs daily.
STALE_AFTER_HOURS = 48.0


@dataclass(frozen=True)
class Chart:
    """A chart section: its name (the `data-chart` attribute), title, a note under it and the plotly fragment."""

    name: str
    title: str
    note: str
    fragment: str


@dataclass(frozen=True)
class Page:
    """Everything the template shows."""

    tenant: str
    generated_at: dt.datetime
    reporting_currency: str | None
    reporting_zone: ReportingZone
    period: Period | None
    kpis: list[Kpi]
    charts: list[Chart]
    campaigns: list[CampaignRow]
    stores: list[StoreRow]
    freshness: list[FreshnessRow]
    source_notes: list[SourceNote] = field(default_factory=list)
    channel_colours: dict[str, str] = field(default_factory=dict)


def render_page(page: Page) -> str:
    """Return the page as HTML text."""
    template = _environment().get_template(TEMPLATE)
    return template.render(
        page=page,
        currency=page.reporting_currency,
        content_security_policy=CONTENT_SECURITY_POLICY,
        plotly_js=Markup(_plotly_js()),
        charts=[(chart, Markup(chart.fragment)) for chart in page.charts],
    )


def trend_class(kpi: Kpi) -> str:
    """Return the CSS class of a KPI's change: 'good', 'bad' or 'neutral' news."""
    if kpi.change_percent is None or kpi.higher_is_better is None or round(kpi.change_percent, 1) == 0:
        return "neutral"
    rising = kpi.change_percent > 0
    return "good" if rising == kpi.higher_is_better else "bad"


def never_loaded(row: FreshnessRow) -> bool:
    """Return True for a source that has no rows and no load time, which is not loaded rather than stale."""
    return row.last_loaded_at is None and not row.rows


def age_hours(loaded_at: dt.datetime | None, now: dt.datetime) -> float | None:
    """Return the hours from `loaded_at` to `now`, or None when the source was never loaded."""
    if loaded_at is None:
        return None
    return (now - loaded_at).total_seconds() / 3600


@cache
def _plotly_js() -> str:
    script = plotly.offline.get_plotlyjs()
    # A "</script" inside the bundle would end the inline <script> element early.
    if "</script" in script.lower():
        msg = "The plotly.js bundle contains '</script' and cannot be inlined. Check the installed plotly version."
        raise RuntimeError(msg)
    return script


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("spendlake.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        money=formatting.format_money,
        ratio=formatting.format_ratio,
        count=formatting.format_count,
        change=formatting.format_change,
        days=formatting.format_days,
        hours=formatting.format_hours,
        timestamp=formatting.format_timestamp,
        date=formatting.format_date,
        channel=formatting.channel_label,
        source=formatting.source_label,
        raw=formatting.raw_number,
    )
    environment.globals.update(
        trend_class=trend_class,
        age_hours=age_hours,
        never_loaded=never_loaded,
        stale_after_hours=STALE_AFTER_HOURS,
    )
    return environment
