"""Report response formats: header lists plus value rows, turned into one record per row.

Report APIs send column names once and each row as a list of values instead
of a list of objects. Two layouts are supported:

- `ga4`: Google Analytics Data API `runReport`: `dimensionHeaders[].name`,
  `metricHeaders[].name`, `rows[].dimensionValues[].value` and
  `rows[].metricValues[].value` (every value a string).
- `columns_rows`: a list of column names at `headers` and a list of value
  lists at `rows` (for example `{"columns": [...], "rows": [[...], ...]}`).
"""

from __future__ import annotations

import typing as t
from decimal import Decimal, InvalidOperation

from taps.engine.responses import read_dotted

REPORT_FORMAT_SCHEMA: dict[str, t.Any] = {
    "description": "How rows of a report response become records; absent means the `records` selector is used.",
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["type"],
            "properties": {
                "type": {"const": "ga4", "description": "Google Analytics 4 runReport layout."},
                "typed_metrics": {
                    "type": "boolean",
                    "default": False,
                    "description": (
                        "Type metric values by metricHeaders[].type: TYPE_INTEGER becomes an integer, every other "
                        "numeric type an exact decimal. False keeps the strings the API sends."
                    ),
                },
            },
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["type"],
            "properties": {
                "type": {"const": "columns_rows", "description": "Column names plus value lists."},
                "headers": {"type": "string", "default": "columns", "description": "Dotted path of the list of column names."},
                "rows": {"type": "string", "default": "rows", "description": "Dotted path of the list of value lists."},
            },
        },
    ],
}


class ReportFormatError(ValueError):
    """Raised when a report row does not match its headers; names the row number, never values."""


def rows_jsonpath(report: t.Mapping[str, t.Any]) -> str:
    """Return the JSONPath of a report's rows, which paginators count and compare."""
    rows = "rows" if report["type"] == "ga4" else report.get("rows", "rows")
    return "$." + rows + "[*]"


def report_records(body: t.Any, report: t.Mapping[str, t.Any], *, stream: str) -> t.Iterator[dict[str, t.Any]]:
    """Yield one record per report row, keyed by the header names."""
    if report["type"] == "ga4":
        yield from _ga4_records(body, stream, typed=bool(report.get("typed_metrics")))
    else:
        yield from _column_records(body, report.get("headers", "columns"), report.get("rows", "rows"), stream)


def _ga4_records(body: t.Any, stream: str, *, typed: bool = False) -> t.Iterator[dict[str, t.Any]]:
    dimensions = _ga4_header_names(body, "dimensionHeaders", stream)
    metric_headers = _ga4_list(body, "metricHeaders", stream)
    metrics = _ga4_header_names(body, "metricHeaders", stream)
    types = [header.get("type") for header in metric_headers]
    for number, row in enumerate(_ga4_list(body, "rows", stream), start=1):
        if not isinstance(row, dict):
            raise ReportFormatError(f"Stream {stream!r}: report row {number} is not an object.")
        dimension_values = _ga4_cells(row, "dimensionValues", stream, number)
        metric_values = _ga4_cells(row, "metricValues", stream, number)
        if len(dimension_values) != len(dimensions) or len(metric_values) != len(metrics):
            msg = f"Stream {stream!r}: report row {number} has a different number of values than headers."
            raise ReportFormatError(msg)
        if typed:
            metric_values = [
                _typed_metric(value, kind, stream=stream, row=number, name=name)
                for value, kind, name in zip(metric_values, types, metrics, strict=True)
            ]
        yield dict(zip(dimensions + metrics, dimension_values + metric_values, strict=True))


def _ga4_list(body: t.Any, key: str, stream: str) -> list[t.Any]:
    """Return a top-level list of a GA4 response; absent means empty, anything but a list is a format error."""
    value = body.get(key) if isinstance(body, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportFormatError(f"Stream {stream!r}: the report's {key} is a {type(value).__name__}, not a list.")
    return value


def _ga4_header_names(body: t.Any, key: str, stream: str) -> list[t.Any]:
    names = []
    for position, header in enumerate(_ga4_list(body, key, stream)):
        if not isinstance(header, dict):
            raise ReportFormatError(f"Stream {stream!r}: element {position} of the report's {key} is not an object.")
        names.append(header.get("name"))
    return names


def _ga4_cells(row: dict[str, t.Any], key: str, stream: str, number: int) -> list[t.Any]:
    cells = row.get(key) or []
    if not isinstance(cells, list) or not all(isinstance(cell, dict) for cell in cells):
        raise ReportFormatError(f"Stream {stream!r}: the {key} of report row {number} are not a list of objects.")
    return [cell.get("value") for cell in cells]


def ga4_header_problem(body: t.Any, dimensions: t.Sequence[str], metrics: t.Sequence[str], *, stream: str) -> str | None:
    """Describe how a GA4 response's header names differ from the requested ones, or return None.

    A response without headers and rows (an empty day) matches. The message
    names only requested names, never text from the response.
    """
    if not isinstance(body, dict) or not any(body.get(key) for key in ("dimensionHeaders", "metricHeaders", "rows")):
        return None
    problems = []
    for key, requested in (("dimensionHeaders", dimensions), ("metricHeaders", metrics)):
        sent = _ga4_header_names(body, key, stream)
        if sorted(map(str, sent)) == sorted(requested):
            continue
        missing = [name for name in requested if name not in sent]
        extra = len([name for name in sent if name not in requested])
        problem = f"{key} lack {missing}" if missing else f"{key} differ from the request"
        if extra:
            problem += f" and carry {extra} name(s) that were not requested"
        problems.append(problem)
    if not problems:
        return None
    return f"Stream {stream!r}: the report response's {'; '.join(problems)}; check api_url, which should reach the GA4 Data API."


def _typed_metric(value: t.Any, kind: t.Any, *, stream: str, row: int, name: t.Any) -> t.Any:
    """Turn one GA4 metric string into an int (TYPE_INTEGER) or an exact Decimal (every other type)."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or (kind == "TYPE_INTEGER" and number != number.to_integral_value()):
        expected = "a whole number" if kind == "TYPE_INTEGER" else "a number"
        msg = f"Stream {stream!r}: metric {name!r} in report row {row} is not {expected} as its header type {kind!r} says."
        raise ReportFormatError(msg)
    return int(number) if kind == "TYPE_INTEGER" else number


#: GA4 response metadata flags that mean the numbers are incomplete or estimated.
GA4_QUALITY_FLAGS = {
    "dataLossFromOtherRow": "rows were grouped into an '(other)' row because the report exceeded GA4's cardinality limit",
    "subjectToThresholding": "GA4 withheld rows with few users (thresholding)",
    "samplingMetadatas": "the numbers are estimated from a sample of the data",
}


def ga4_report_notes(body: t.Any) -> list[str]:
    """Return the quality warnings a GA4 response's metadata raises; they name flags, never values."""
    metadata = read_dotted(body, "metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict):
        return []
    return [text for flag, text in GA4_QUALITY_FLAGS.items() if metadata.get(flag)]


def ga4_tokens_left(body: t.Any) -> int | None:
    """Return the property's remaining daily tokens when the response reports its quota (`returnPropertyQuota`)."""
    remaining = read_dotted(body, "propertyQuota.tokensPerDay.remaining") if isinstance(body, dict) else None
    return remaining if isinstance(remaining, int) and not isinstance(remaining, bool) else None


def _column_records(body: t.Any, headers_path: str, rows_path: str, stream: str) -> t.Iterator[dict[str, t.Any]]:
    headers = read_dotted(body, headers_path) or []
    for number, row in enumerate(read_dotted(body, rows_path) or [], start=1):
        if not isinstance(row, list) or len(row) != len(headers):
            msg = f"Stream {stream!r}: report row {number} has a different number of values than headers."
            raise ReportFormatError(msg)
        yield dict(zip(headers, row, strict=True))
