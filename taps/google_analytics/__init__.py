"""tap-google-analytics: the GA4 declaration turned into a Singer tap, plus custom reports from the config."""

from __future__ import annotations

import copy
import dataclasses
import typing as t
from importlib import resources

import yaml

from singer_sdk.exceptions import ConfigValidationError

from taps.engine.declaration import StreamSpec, parse_declaration
from taps.engine.stream import DeclarativeStream
from taps.engine.tap import build_tap_class
from taps.google_analytics.custom_reports import CustomReportStream, report_problems, report_stream
from taps.google_analytics.report_stream import GA4ReportStream

_DOCUMENT: dict[str, t.Any] = yaml.safe_load(resources.files(__name__).joinpath("google_analytics.yaml").read_text())
_SOURCE = parse_declaration(_DOCUMENT, label="google_analytics.yaml")
# The built-in report whose declaration custom reports start from.
_TEMPLATE_STREAM = "landing_pages_daily"

CUSTOM_REPORTS_SETTING: dict[str, t.Any] = {
    "type": ["array", "null"],
    "description": (
        "Extra daily reports, each read as stream custom_<name>: "
        "[{name, dimensions: [GA4 dimension names], metrics: [GA4 metric names], dimension_filter: FilterExpression, "
        "pii: {dimension: PII class}}]. date is added as the first dimension. Custom dimensions (customUser:, "
        "customEvent:, customItem:) and free-text or full-URL dimensions are classed free_text unless pii sets a class."
    ),
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "dimensions": {"type": "array", "items": {"type": "string"}},
            "metrics": {"type": "array", "items": {"type": "string"}},
            "dimension_filter": {"type": "object"},
            "pii": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["name", "dimensions", "metrics"],
    },
}


def property_id_problems(values: t.Any) -> list[str]:
    """Reject measurement ids (G-XXXX) and other values that are not numeric property ids."""
    if isinstance(values, str):
        values = [value.strip() for value in values.split(",") if value.strip()]
    problems = []
    for index, value in enumerate(values or []):
        text = str(value).strip()
        if text.isdigit():
            continue
        kind = "a measurement id" if text.upper().startswith("G-") else "not a property id"
        problems.append(
            f"Setting 'property_ids' element {index} is {kind}; the numeric GA4 property id is needed, such as "
            "123456789. Find it in Google Analytics under Admin > Property settings > Property details."
        )
    return problems


def with_custom_reports(reports: t.Any) -> tuple[tuple[StreamSpec, ...], dict[str, tuple[int, dict[str, t.Any]]]]:
    """Return the built-in streams plus one per valid custom report, and each custom stream's config entry."""
    if not isinstance(reports, list) or not reports or report_problems(reports):
        return _SOURCE.streams, {}
    document = copy.deepcopy(_DOCUMENT)
    template = document["streams"][_TEMPLATE_STREAM]
    entries = {}
    for index, report in enumerate(reports):
        name = f"custom_{report['name']}"
        document["streams"][name] = report_stream(report, template)
        entries[name] = (index, report)
    source = parse_declaration(document, label="google_analytics.yaml with custom_reports")
    return source.streams, entries


_BaseTap = build_tap_class(_SOURCE)


class TapGoogleAnalytics(_BaseTap):  # type: ignore[misc,valid-type]
    """Singer tap for Google Analytics 4, from its declaration; custom reports come from the config."""

    name = "tap-google-analytics"
    config_jsonschema = copy.deepcopy(_BaseTap.config_jsonschema)
    config_jsonschema["properties"]["custom_reports"] = CUSTOM_REPORTS_SETTING

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Check the custom reports also when the tap only discovers (singer-sdk then skips the config checks)."""
        super().__init__(*args, **kwargs)
        problems = report_problems(self.config.get("custom_reports"))
        if problems:
            raise ConfigValidationError("Custom report validation failed", errors=problems)

    def discover_streams(self) -> list[DeclarativeStream]:
        """Add the custom reports' streams to the declared ones; invalid custom reports fail, also `--discover`."""
        problems = report_problems(self.config.get("custom_reports"))
        if problems:
            raise ConfigValidationError("Custom report validation failed", errors=problems)
        self._add_custom_streams()
        return super().discover_streams()

    def setup_mapper(self) -> None:
        """Know the custom streams before SCHEMA messages are registered, also when a catalog is given."""
        self._add_custom_streams()
        super().setup_mapper()

    def _add_custom_streams(self) -> None:
        """Put the custom reports' streams into this tap's source, once."""
        if "_custom_entries" in vars(self):
            return
        streams, self._custom_entries = with_custom_reports(self.config.get("custom_reports"))
        self.source = dataclasses.replace(type(self).source, streams=streams)

    def stream_base(self, spec: StreamSpec) -> type[DeclarativeStream]:
        """Give each GA4 report the report class, and each custom report its own class with its config entry."""
        entry = getattr(self, "_custom_entries", {}).get(spec.name)
        if entry is None:
            is_report = bool(spec.report_format) and spec.report_format.get("type") == "ga4"
            return GA4ReportStream if is_report else DeclarativeStream
        index, report = entry
        return type("CustomReportBase", (CustomReportStream,), {"report": report, "report_index": index, "__module__": __name__})

    def sync_all(self) -> None:
        """Check every selected custom report against every property's metadata, then sync."""
        self._check_custom_reports()
        super().sync_all()

    def _check_custom_reports(self) -> None:
        """Fail before any report request when a custom report names a dimension or metric a property lacks."""
        reports = [stream for stream in self.streams.values() if isinstance(stream, CustomReportStream) and stream.selected]
        if not reports:
            return
        property_ids = [str(context["property_id"]) for context in self.streams["properties"].partitions or []]
        problems = [problem for stream in reports for problem in stream.metadata_problems_for(property_ids)]
        if problems:
            raise ConfigValidationError("Custom report validation failed", errors=problems)

    def _config_errors(self) -> list[str]:
        """Add the property id and custom report checks to the engine's."""
        errors = super()._config_errors()
        errors.extend(property_id_problems(self.config.get("property_ids")))
        errors.extend(report_problems(self.config.get("custom_reports")))
        return errors


__all__ = ["TapGoogleAnalytics"]
