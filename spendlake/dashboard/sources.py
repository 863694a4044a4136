"""The kinds of source (GA4, ad platforms, stores) that have rows in the marts, and the values missing without them.

The marts write 0, not NULL, for the conversions and attributed revenue of a
day without GA4 rows, for the spend of a day without ad rows and for the
store revenue of a day without Stripe or Magento rows. For a source that was
never loaded those zeros are not results, so the dashboard replaces them with
None, which the page shows as "n/a".
marts.source_freshness counts the fact rows of each source: a source with
0 rows, or without a row there, counts as not loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

ANALYTICS_SOURCES = ("google_analytics",)
AD_SOURCES = ("google_ads", "facebook")
STORE_SOURCES = ("stripe", "magento")

ANALYTICS_NOTE = (
    "Google Analytics 4 is not loaded, so conversions, attributed revenue, CPA and ROAS are not available."
)
ADS_NOTE = "Neither Google Ads nor Meta (Facebook) is loaded, so spend, ROAS, CPA and MER are not available."
STORES_NOTE = "Neither Stripe nor Magento is loaded, so store revenue and MER are not available."

Row = TypeVar("Row")


@dataclass(frozen=True)
class SourceNote:
    """A note on the page about a kind of source that is not loaded. `key` is its `data-missing` attribute."""

    key: str
    text: str


@dataclass(frozen=True)
class LoadedSources:
    """Whether GA4, at least one ad platform and at least one store have rows in the marts."""

    analytics: bool
    ads: bool
    stores: bool

    def missing_fields(self) -> tuple[str, ...]:
        """Return the row fields (of `DailyRow` and `CampaignRow`) whose values come from sources not loaded."""
        fields: list[str] = []
        if not self.analytics:
            fields += ["conversions", "revenue"]
        if not self.ads:
            fields.append("spend")
        if not self.stores:
            fields.append("store_revenue")
        return tuple(fields)

    def without_missing(self, row: Row) -> Row:
        """Return the dataclass `row` with None in each field that comes from a source not loaded."""
        present = {field.name for field in dataclasses.fields(row)}  # type: ignore[arg-type]
        cleared: dict[str, Any] = {name: None for name in self.missing_fields() if name in present}
        if not cleared:
            return row
        return dataclasses.replace(row, **cleared)  # type: ignore[type-var]

    def notes(self) -> list[SourceNote]:
        """Return one note per kind of source that is not loaded, naming the values it leaves out."""
        notes = []
        if not self.analytics:
            notes.append(SourceNote("analytics", ANALYTICS_NOTE))
        if not self.ads:
            notes.append(SourceNote("ads", ADS_NOTE))
        if not self.stores:
            notes.append(SourceNote("stores", STORES_NOTE))
        return notes


def loaded_sources(row_counts: Mapping[str, int | None]) -> LoadedSources:
    """Return which kinds of source have rows, from the `rows` of each source in marts.source_freshness."""

    def has_rows(sources: tuple[str, ...]) -> bool:
        return any((row_counts.get(source) or 0) > 0 for source in sources)

    return LoadedSources(
        analytics=has_rows(ANALYTICS_SOURCES),
        ads=has_rows(AD_SOURCES),
        stores=has_rows(STORE_SOURCES),
    )
