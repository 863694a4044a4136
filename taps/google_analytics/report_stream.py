"""GA4 report streams: header checks, and rows merged when the tap's URL cut makes them equal.

GA4 reports a landing page with its query string, so `/a?email=x@example.com`
and `/a?email=y@example.com` are two rows. The `url_path` transform cuts both
to `/a`. Without a merge, the second row would be dropped as a duplicate when
the metrics are equal, and stop the tap as a primary-key conflict when they
differ. Rows of
one request window that differ only in what the cut removed are therefore
merged here, before the engine shapes them, by summing their metrics.
"""

from __future__ import annotations

import typing as t
from decimal import Decimal

from taps.engine.reports import ReportFormatError, ga4_header_problem
from taps.engine.responses import response_json
from taps.engine.stream import DeclarativeStream, PrimaryKeyConflictError
from taps.engine.transforms import cut_url

if t.TYPE_CHECKING:
    import requests
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from taps.engine.declaration import SourceSpec, StreamSpec

#: Metrics whose values for two parts of a group add up to the group's value.
# NOTE: user counts are not strictly additive: one user who landed on both cut-off variants is counted twice.
ADDITIVE_METRICS = frozenset({
    "sessions", "engagedSessions", "keyEvents", "totalUsers", "activeUsers", "newUsers", "screenPageViews",
    "eventCount", "purchaseRevenue", "totalRevenue", "itemRevenue", "ecommercePurchases", "transactions",
    "itemsPurchased", "itemsViewed", "addToCarts", "checkouts", "taxAmount", "shippingAmount",
    "userEngagementDuration",
})

RawKey = tuple[t.Any, ...]


class GA4ReportStream(DeclarativeStream):
    """A GA4 runReport stream: checks each response's headers and merges rows the URL cut makes equal."""

    def __init__(self, tap: Tap, spec: StreamSpec, source: SourceSpec) -> None:
        super().__init__(tap, spec, source)
        body = spec.body or {}
        self._dimensions = [item["name"] for item in body.get("dimensions") or []]
        self._metrics = [item["name"] for item in body.get("metrics") or []]
        # The raw dimension names cut by `url_path`, with the placeholder values the transform skips.
        self._url_fields = {
            field.path[0]: (field.name, frozenset(field.sentinels or ()))
            for field in spec.fields
            if field.transform == "url_path" and field.value is None
        }
        self._redacted: dict[str, int] = {}
        self._merged_rows = 0

    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        """Fail on a response whose headers are not the requested dimensions and metrics, then read its rows."""
        problem = ga4_header_problem(response_json(response), self._dimensions, self._metrics, stream=self.name)
        if problem:
            raise ReportFormatError(problem)
        yield from super().parse_response(response)

    def request_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Read one request window; with URL fields, merge its rows that differ only in what the cut removes."""
        rows = super().request_records(context)
        if not self._url_fields:
            yield from rows
            return
        yield from self._merge(rows)

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Read the partition, then log one summary of redacted and merged URL values."""
        yield from super().get_records(context)
        self._log_url_summary()

    def _merge(self, rows: t.Iterable[dict[str, t.Any]]) -> t.Iterator[dict[str, t.Any]]:
        groups: dict[RawKey, dict[RawKey, list[dict[str, t.Any]]]] = {}
        for row in rows:
            raw = tuple(row.get(name) for name in self._dimensions)
            groups.setdefault(self._cut_key(raw), {}).setdefault(raw, []).append(row)

        for variants in groups.values():
            if len(variants) == 1:
                # Rows equal before the cut are the API's own duplicates; the engine judges them.
                yield from next(iter(variants.values()))
                continue
            parts = [_one_row(same) for same in variants.values()]
            if any(part is None for part in parts):
                yield from (row for same in variants.values() for row in same)
                continue
            yield self._summed(t.cast("list[dict[str, t.Any]]", parts))

    def _cut_key(self, raw: RawKey) -> RawKey:
        """Return the dimension values as the engine will emit them: URL fields cut, placeholders kept."""
        key = []
        for name, value in zip(self._dimensions, raw, strict=True):
            field = self._url_fields.get(name)
            if field is None or not isinstance(value, str) or value in field[1]:
                key.append(value)
                continue
            path, redacted = cut_url(value)
            if redacted:
                self._redacted[field[0]] = self._redacted.get(field[0], 0) + 1
            key.append(path)
        return tuple(key)

    def _summed(self, parts: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        """Return the first part with every metric summed over all parts."""
        blocked = [name for name in self._metrics if name not in ADDITIVE_METRICS]
        if blocked:
            fields = sorted(field for field, _ in self._url_fields.values())
            msg = (
                f"Stream {self.name!r}: {len(parts)} rows differ only in the part of {fields} that the tap cuts off, "
                f"and metric(s) {blocked} cannot be summed to merge them; report them without a URL dimension, "
                "or with additive metrics such as sessions only."
            )
            raise PrimaryKeyConflictError(msg)
        merged = dict(parts[0])
        for name in self._metrics:
            merged[name] = _sum([part.get(name) for part in parts])
        self._merged_rows += len(parts) - 1
        return merged

    def _log_url_summary(self) -> None:
        if self._redacted:
            counts = ", ".join(f"{field} ({count})" for field, count in sorted(self._redacted.items()))
            self.logger.warning(
                "Stream %s: replaced path segments containing an e-mail address or a token with '(redacted)' in: %s",
                self.name, counts,
            )
            self._redacted = {}
        if self._merged_rows:
            self.logger.info(
                "Stream %s: merged %d row(s) into the row of the same path after the URL cut, summing their metrics",
                self.name, self._merged_rows,
            )
            self._merged_rows = 0


def _one_row(same: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    """Return the row of a list of equal rows, or None when the rows differ."""
    first = same[0]
    return first if all(row == first for row in same[1:]) else None


def _sum(values: list[t.Any]) -> t.Any:
    """Sum metric values as sent (int, Decimal or text); missing values count as nothing."""
    present = [value for value in values if value is not None and value != ""]
    if not present:
        return values[0]
    if all(type(value) is int for value in present):
        return sum(present)
    total = sum((Decimal(str(value)) for value in present), Decimal(0))
    return str(total) if all(isinstance(value, str) for value in present) else total
