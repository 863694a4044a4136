"""Plotly figures of the dashboard, each turned into an HTML fragment without plotly.js.

Text from the data (campaign names) is HTML-escaped before it reaches a
figure, because plotly reads tags such as <a href> in labels and hover text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from spendlake.dashboard.data import CampaignRow
from spendlake.dashboard.formatting import channel_label, money_decimals
from spendlake.dashboard.kpis import TOTAL_CHANNEL, ChannelMetrics, DailyRow, Period

FONT_FAMILY = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif'
)
TEXT_COLOUR = "#1f2937"
GRID_COLOUR = "#e5e7eb"
#: Fixed colours of the known channels, so a channel looks the same in every chart and table.
CHANNEL_COLOURS = {"google_ads": "#2563eb", "meta": "#ea580c"}
#: Colours handed out, in order, to channels without a fixed colour.
SPARE_COLOURS = ("#0891b2", "#7c3aed", "#65a30d", "#db2777", "#ca8a04")
SPEND_COLOUR = "#334155"
STORE_REVENUE_COLOUR = "#16a34a"
ATTRIBUTED_REVENUE_COLOUR = "#0d9488"
CAMPAIGN_LABEL_CHARACTERS = 40
#: Options of the plotly.js runtime: no plotly logo, no selection tools (they do nothing here).
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def channel_colours(channels: Sequence[str]) -> dict[str, str]:
    """Return a colour for every channel: the fixed one, else the next spare colour in name order."""
    colours = {}
    spare = iter(SPARE_COLOURS * (len(channels) // len(SPARE_COLOURS) + 1))
    for channel in sorted(set(channels)):
        colours[channel] = CHANNEL_COLOURS.get(channel) or next(spare)
    return colours


def figure_html(figure: go.Figure, name: str) -> str:
    """Return the figure as a <div> with the id `chart-<name>` and the <script> that draws it, without plotly.js."""
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        config=PLOTLY_CONFIG,
        div_id=f"chart-{name}",
        default_width="100%",
        default_height=f"{figure.layout.height}px",
    )


def trend_figure(daily: Sequence[DailyRow], period: Period | None, currency: str | None) -> go.Figure:
    """Draw daily spend, store net revenue and attributed revenue over both periods, the previous one shaded.

    A series without any value, such as attributed revenue when GA4 is not loaded, is left out.
    """
    totals = [row for row in daily if row.channel == TOTAL_CHANNEL]
    if period is None or not totals:
        return _empty_figure("No daily data in marts.marketing_performance_daily yet.")

    dates = [row.date.isoformat() for row in totals]
    amount_format = _amount_format(currency)
    figure = go.Figure()
    series = (
        ("Spend", [_number(row.spend) for row in totals], SPEND_COLOUR, "solid"),
        ("Store net revenue", [_number(row.store_revenue) for row in totals], STORE_REVENUE_COLOUR, "solid"),
        ("Attributed revenue (GA4)", [_number(row.revenue) for row in totals], ATTRIBUTED_REVENUE_COLOUR, "dot"),
    )
    for name, values, colour, dash in series:
        if all(value is None for value in values):
            # A series of a source that is not loaded has no values, and a note on the page explains why.
            continue
        figure.add_trace(
            go.Scatter(
                x=dates,
                y=values,
                name=name,
                mode="lines",
                line={"color": colour, "width": 2, "dash": dash},
                hovertemplate=f"%{{x|%Y-%m-%d}}<br>{name}: %{{y:{amount_format}}}<extra></extra>",
            )
        )

    figure.add_vrect(
        x0=period.previous_start.isoformat(),
        x1=period.start.isoformat(),
        fillcolor="#94a3b8",
        opacity=0.12,
        line_width=0,
        layer="below",
        annotation_text="previous period",
        annotation_position="top left",
        annotation_font={"size": 11, "color": "#64748b"},
    )
    _style(figure, height=360)
    figure.update_layout(hovermode="x unified", legend={"orientation": "h", "y": -0.15})
    figure.update_yaxes(title_text=currency or "", rangemode="tozero")
    return figure


def channel_figure(metrics: Sequence[ChannelMetrics], colours: dict[str, str], currency: str | None) -> go.Figure:
    """Draw CPA and ROAS of each channel over the reporting period, side by side."""
    if not metrics:
        return _empty_figure("No channel rows in the reporting period.")

    titles = (_with_currency("CPA", currency), "ROAS")
    figure = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.12)
    labels = [channel_label(item.channel) for item in metrics]
    cpa_values = [item.totals.cpa for item in metrics]
    roas_values = [item.totals.roas for item in metrics]
    bar_colours = [colours[item.channel] for item in metrics]

    figure.add_trace(_vertical_bars(labels, cpa_values, bar_colours, _amount_format(currency)), row=1, col=1)
    figure.add_trace(_vertical_bars(labels, roas_values, bar_colours, ",.2f"), row=1, col=2)
    _style(figure, height=340)
    figure.update_layout(showlegend=False)
    figure.update_yaxes(rangemode="tozero")
    return figure


def campaign_figure(campaigns: Sequence[CampaignRow], colours: dict[str, str], currency: str | None) -> go.Figure:
    """Draw CPA and ROAS of the top campaigns by spend as horizontal bars, one colour per channel."""
    if not campaigns:
        return _empty_figure("No campaign rows in the reporting period.")

    figure = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        subplot_titles=(_with_currency("CPA", currency), "ROAS"),
        horizontal_spacing=0.04,
    )
    labels = campaign_labels(campaigns)
    for channel in sorted({row.channel for row in campaigns}):
        picked = [(label, row) for label, row in zip(labels, campaigns, strict=True) if row.channel == channel]
        names = [label for label, _ in picked]
        common = {"name": channel_label(channel), "legendgroup": channel, "marker_color": colours[channel]}
        cpa_values = [row.cpa for _, row in picked]
        roas_values = [row.roas for _, row in picked]
        figure.add_trace(_horizontal_bars(names, cpa_values, _amount_format(currency), **common), row=1, col=1)
        figure.add_trace(_horizontal_bars(names, roas_values, ",.2f", showlegend=False, **common), row=1, col=2)

    _style(figure, height=max(320, 30 * len(campaigns) + 130))
    figure.update_layout(barmode="group", legend={"orientation": "h", "y": -0.08}, bargap=0.35)
    # The largest spender is at the top.
    figure.update_yaxes(categoryorder="array", categoryarray=list(reversed(labels)), automargin=True)
    return figure


def campaign_labels(campaigns: Sequence[CampaignRow]) -> list[str]:
    """Return one escaped, shortened and unique axis label per campaign, in the same order."""
    labels: list[str] = []
    for row in campaigns:
        base = _shorten(row.campaign_name)
        label = base
        if label in labels:
            label = f"{base} ({channel_label(row.channel)})"
        number = 2
        while label in labels:
            label = f"{base} ({channel_label(row.channel)} {number})"
            number += 1
        labels.append(label)
    return [html.escape(label, quote=False) for label in labels]


def _shorten(name: str) -> str:
    if len(name) <= CAMPAIGN_LABEL_CHARACTERS:
        return name
    return name[: CAMPAIGN_LABEL_CHARACTERS - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"


def _vertical_bars(labels: list[str], values: list[float | None], colours: list[str], number_format: str) -> go.Bar:
    # A missing ratio is drawn as an empty bar labelled "n/a", so the channel keeps its place.
    return go.Bar(
        x=labels,
        y=[value if value is not None else 0 for value in values],
        marker_color=colours,
        text=[_bar_text(value, number_format) for value in values],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="%{x}: %{text}<extra></extra>",
    )


def _horizontal_bars(
    labels: list[str], values: list[float | None], number_format: str, **options: object
) -> go.Bar:
    return go.Bar(
        y=labels,
        x=[value if value is not None else 0 for value in values],
        orientation="h",
        text=[_bar_text(value, number_format) for value in values],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="%{y}: %{text}<extra></extra>",
        **options,
    )


def _bar_text(value: float | None, number_format: str) -> str:
    if value is None:
        return "n/a"
    return format(value, number_format)


def _number(value: float | Decimal | None) -> float | None:
    return None if value is None else float(value)


def _amount_format(currency: str | None) -> str:
    return f",.{money_decimals(currency)}f"


def _with_currency(title: str, currency: str | None) -> str:
    return f"{title} ({currency})" if currency else title


def _empty_figure(message: str) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(
        text=message, showarrow=False, font={"size": 14, "color": "#64748b"}, xref="paper", yref="paper", x=0.5, y=0.5
    )
    _style(figure, height=220)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def _style(figure: go.Figure, height: int) -> None:
    figure.update_layout(
        template="none",
        height=height,
        margin={"l": 56, "r": 24, "t": 36, "b": 40},
        font={"family": FONT_FAMILY, "size": 12, "color": TEXT_COLOUR},
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
    )
    figure.update_xaxes(gridcolor=GRID_COLOUR, linecolor=GRID_COLOUR, zerolinecolor=GRID_COLOUR)
    figure.update_yaxes(gridcolor=GRID_COLOUR, linecolor=GRID_COLOUR, zerolinecolor=GRID_COLOUR)
    figure.update_annotations(font_family=FONT_FAMILY)
