"""GA4 custom reports from the tap config: static checks, stream declarations and the metadata check.

Each entry of the `custom_reports` setting (`{name, dimensions, metrics,
dimension_filter?, pii?}`) becomes a daily report stream `custom_<name>`,
declared like the built-in reports and read in one-day windows. Names are
checked twice before any report request: by form, known renames and column
clashes when the tap starts, and against every property's metadata
(`GET /v1beta/properties/{id}/metadata`) when the sync starts. Errors name the
report's place in the config, the bad name and the closest valid name.

Every dimension gets a PII class: custom dimensions and dimensions that carry
text typed by visitors or whole URLs are `free_text` unless the report's `pii`
entry sets another class; URL and path dimensions keep only their path.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing as t

from singer_sdk.exceptions import ConfigValidationError, FatalAPIError

from privacy.policy import PII_CLASSES
from taps.google_analytics.report_stream import GA4ReportStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

MAX_DIMENSIONS = 9
MAX_METRICS = 10
REPORT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# API names, and custom ones such as customEvent:plan_tier.
API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(:[A-Za-z0-9_]+)?$")

#: Names GA4 renamed, with their replacement.
DEPRECATED_NAMES = {
    "conversions": "keyEvents",
    "sessionConversionRate": "sessionKeyEventRate",
    "userConversionRate": "userKeyEventRate",
    "isConversionEvent": "isKeyEvent",
}

#: Metrics whose values are whole numbers; every other metric is declared as a decimal number.
INTEGER_METRICS = frozenset({
    "activeUsers", "totalUsers", "newUsers", "sessions", "engagedSessions", "screenPageViews", "eventCount",
    "ecommercePurchases", "transactions", "itemsPurchased", "itemsViewed", "addToCarts", "checkouts",
    "active1DayUsers", "active7DayUsers", "active28DayUsers", "userEngagementDuration",
})

#: Custom dimensions: a site sends their values itself (user ids, e-mail addresses, plan names...).
CUSTOM_DIMENSION_PREFIXES = ("customUser:", "customEvent:", "customItem:")

#: Dimensions holding text that visitors type, page titles, or whole URLs with their query strings.
FREE_TEXT_DIMENSIONS = frozenset({
    "pageLocation", "pageReferrer", "fullPageUrl", "landingPagePlusQueryString", "pagePathPlusQueryString",
    "linkUrl", "linkText", "videoUrl", "pageTitle", "unifiedScreenName", "searchTerm",
    "manualTerm", "sessionManualTerm", "firstUserManualTerm",
    "manualAdContent", "sessionManualAdContent", "firstUserManualAdContent",
    "googleAdsQuery", "sessionGoogleAdsQuery", "firstUserGoogleAdsQuery",
})

#: Dimensions holding a URL or a path: the tap keeps only the path (transform url_path), whatever their class.
URL_DIMENSIONS = frozenset({
    "landingPage", "pagePath", "unifiedPagePathScreen", "fileName", "pageLocation", "pageReferrer", "fullPageUrl",
    "landingPagePlusQueryString", "pagePathPlusQueryString", "linkUrl", "videoUrl",
})

#: Columns every custom report has besides its dimensions and metrics.
FIXED_COLUMNS = ("property_id", "date")

#: Metadata of each property, fetched once per run.
_METADATA: dict[tuple[str, str], dict[str, t.Any]] = {}


def report_problems(reports: t.Any) -> list[str]:
    """Check the form of the `custom_reports` setting; every problem names its place and the fix."""
    if reports is None:
        return []
    if not isinstance(reports, list):
        return ["Setting 'custom_reports' must be a list of {name, dimensions, metrics} objects."]

    problems: list[str] = []
    names: set[str] = set()
    for index, report in enumerate(reports):
        place = f"custom_reports[{index}]"
        if not isinstance(report, dict):
            problems.append(f"{place}: must be an object with name, dimensions and metrics.")
            continue
        name = report.get("name")
        if not isinstance(name, str) or not REPORT_NAME.match(name):
            problems.append(f"{place}.name: use 1 to 41 lower-case letters, digits or underscores, starting with a letter.")
        elif name in names:
            problems.append(f"{place}.name: {name!r} names two reports; give each report its own name.")
        else:
            names.add(name)
        problems.extend(_name_list_problems(place, "dimensions", _dimensions(report), MAX_DIMENSIONS))
        problems.extend(_name_list_problems(place, "metrics", report.get("metrics"), MAX_METRICS))
        problems.extend(_column_problems(place, report))
        problems.extend(_pii_problems(place, report))
        unknown = sorted(set(report) - {"name", "dimensions", "metrics", "dimension_filter", "pii"})
        if unknown:
            problems.append(f"{place}: unknown key(s) {unknown}; use name, dimensions, metrics, dimension_filter and pii.")
        if "dimension_filter" in report and not isinstance(report["dimension_filter"], dict):
            problems.append(f"{place}.dimension_filter: must be a GA4 FilterExpression object.")
    return problems


def default_pii_class(dimension: str) -> str:
    """Return the PII class a dimension gets when the report does not set one.

    Custom and free-text dimensions are classed `identifier`, which the default
    policy hashes: every dimension is part of the report's key, and a key
    column cannot be dropped.
    """
    if dimension.startswith(CUSTOM_DIMENSION_PREFIXES) or dimension in FREE_TEXT_DIMENSIONS:
        return "identifier"
    return "none"


def _column_problems(place: str, report: dict[str, t.Any]) -> list[str]:
    """Find dimensions and metrics whose columns clash with each other or with property_id and date."""
    owners = {column: f"the {column} column every report has" for column in FIXED_COLUMNS}
    problems = []
    for key in ("dimensions", "metrics"):
        names = report.get(key)
        if not isinstance(names, list):
            continue
        for position, name in enumerate(names):
            if not isinstance(name, str) or not API_NAME.match(name) or (key == "dimensions" and name == "date"):
                continue
            column = field_name(name)
            if owners.get(column) == repr(name):
                continue  # a name listed twice, reported on its own
            if column in owners:
                problems.append(
                    f"{place}.{key}[{position}]: {name!r} becomes column {column!r}, like {owners[column]}; "
                    "remove one of them."
                )
            else:
                owners[column] = repr(name)
    return problems


def _pii_problems(place: str, report: dict[str, t.Any]) -> list[str]:
    """Check the report's `pii` entry: dimension names of this report mapped to PII classes."""
    classes = report.get("pii")
    if classes is None:
        return []
    if not isinstance(classes, dict):
        return [f"{place}.pii: must map dimension names to PII classes, such as {{\"customUser:plan\": \"none\"}}."]
    dimensions = report.get("dimensions") if isinstance(report.get("dimensions"), list) else []
    problems = []
    for name, pii_class in classes.items():
        if name not in dimensions or name == "date":
            problems.append(f"{place}.pii: {name!r} is not one of the report's dimensions; list it in dimensions or remove it.")
        elif pii_class not in PII_CLASSES:
            problems.append(f"{place}.pii[{name!r}]: unknown PII class; use one of: {', '.join(PII_CLASSES)}.")
    return problems


def _dimensions(report: dict[str, t.Any]) -> t.Any:
    """Return the report's dimensions with `date` first, added when missing, because reports are daily."""
    dimensions = report.get("dimensions")
    if not isinstance(dimensions, list):
        return dimensions
    return ["date", *[name for name in dimensions if name != "date"]]


def _name_list_problems(place: str, key: str, names: t.Any, limit: int) -> list[str]:
    if not isinstance(names, list) or not names:
        return [f"{place}.{key}: list at least one GA4 API name."]
    problems = []
    if len(names) > limit:
        added = " (date is added to every report)" if key == "dimensions" else ""
        problems.append(f"{place}.{key}: {len(names)} names{added}; GA4 allows at most {limit} per request.")
    seen: set[str] = set()
    for position, name in enumerate(names):
        where = f"{place}.{key}[{position}]"
        if not isinstance(name, str) or not API_NAME.match(name):
            problems.append(f"{where}: not a GA4 API name such as sessionSource or customEvent:plan_tier.")
        elif name in DEPRECATED_NAMES:
            problems.append(f"{where}: {name!r} is deprecated; use {DEPRECATED_NAMES[name]!r}.")
        elif name in seen:
            problems.append(f"{where}: {name!r} is listed twice.")
        else:
            seen.add(name)
    return problems


def field_name(api_name: str) -> str:
    """Return the column name of a GA4 API name: sessionSource gives session_source, customEvent:tier gives custom_event_tier."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", api_name)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower().strip("_")
    return text[:63] or "value"


def report_stream(report: dict[str, t.Any], template: dict[str, t.Any]) -> dict[str, t.Any]:
    """Return the declaration of one custom report's stream, built on a built-in report's declaration."""
    dimensions = _dimensions(report)
    stream = copy.deepcopy(template)
    stream["description"] = f"Custom report {report['name']!r} from the tap config."
    stream["body"] = {
        "dateRanges": [{"startDate": "{window.start}", "endDate": "{window.end}"}],
        "dimensions": [{"name": name} for name in dimensions],
        "metrics": [{"name": name} for name in report["metrics"]],
        "orderBys": [{"dimension": {"dimensionName": name}} for name in dimensions],
        "keepEmptyRows": False,
        "returnPropertyQuota": True,
    }
    if report.get("dimension_filter"):
        stream["body"]["dimensionFilter"] = report["dimension_filter"]

    fields: dict[str, t.Any] = {name: template["fields"][name] for name in FIXED_COLUMNS}
    classes = report.get("pii") or {}
    for name in dimensions[1:]:
        field = {"type": "string", "path": name, "pii": classes.get(name, default_pii_class(name))}
        if name in URL_DIMENSIONS:
            field["transform"] = "url_path"
        fields[field_name(name)] = field
    for name in report["metrics"]:
        kind = "integer" if name in INTEGER_METRICS else "number"
        fields[field_name(name)] = {"type": kind, "path": name, "transform": "numeric_string", "pii": "none"}
    stream["fields"] = fields
    stream["primary_key"] = ["property_id", "date", *[field_name(name) for name in dimensions[1:]]]
    return stream


class CustomReportStream(GA4ReportStream):
    """A custom report: its names are checked against the property's metadata before its first report request."""

    #: The report's entry in the `custom_reports` setting and its index there; set by the tap.
    report: t.ClassVar[dict[str, t.Any]]
    report_index: t.ClassVar[int]

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Check the report's names against the property's metadata, then read it."""
        property_id = str((context or {}).get("property_id"))
        try:
            metadata = self._property_metadata(property_id, context)
        except FatalAPIError as error:
            self._stop_partition(context, str(error))
            return
        problems = metadata_problems(self.report, self.report_index, metadata, property_id)
        if problems:
            raise ConfigValidationError("Custom report validation failed", errors=problems)
        yield from super().get_records(context)

    def _property_metadata(self, property_id: str, context: Context | None) -> dict[str, t.Any]:
        key = (self.url_base, property_id)
        if key not in _METADATA:
            send = self._send_for_job(context)
            _METADATA[key] = send("GET", f"/properties/{property_id}/metadata", {}) or {}
        return _METADATA[key]

    def metadata_problems_for(self, property_ids: t.Iterable[str]) -> list[str]:
        """Check this report against each property's metadata; a property whose metadata is refused is skipped.

        The stream's own read then stops that property's partition with the API's error.
        """
        problems = []
        for property_id in property_ids:
            try:
                metadata = self._property_metadata(property_id, {"property_id": property_id})
            except FatalAPIError:
                continue
            problems.extend(metadata_problems(self.report, self.report_index, metadata, property_id))
        return problems


def metadata_problems(report: dict[str, t.Any], index: int, metadata: dict[str, t.Any], property_id: str) -> list[str]:
    """Return one problem per name the property's metadata does not list, with the closest valid name."""
    problems = []
    for key, section in (("dimensions", "dimensions"), ("metrics", "metrics")):
        known = {item.get("apiName") for item in metadata.get(section) or [] if isinstance(item, dict)}
        renamed = {
            old: item.get("apiName")
            for item in metadata.get(section) or []
            if isinstance(item, dict)
            for old in item.get("deprecatedApiNames") or []
        }
        names = _dimensions(report) if key == "dimensions" else report[key]
        for position, name in enumerate(names):
            if name in known:
                continue
            where = f"custom_reports[{index}].{key}[{position}]"
            if name in renamed:
                problems.append(f"{where}: {name!r} is deprecated in property {property_id}; use {renamed[name]!r}.")
                continue
            close = difflib.get_close_matches(name, sorted(n for n in known if n), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(f"{where}: property {property_id} has no {key[:-1]} {name!r}.{hint}")
    return problems


def clear_metadata_cache() -> None:
    """Forget fetched metadata, so a test or a long-lived process reads it again."""
    _METADATA.clear()
