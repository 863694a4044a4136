"""Source declarations: load a YAML document, validate it and build typed specs.

Validation runs in two passes and reports every problem found at once. The
JSON Schema in `declaration.schema.json` checks the shape. Semantic checks then
catch what a schema cannot, such as a primary key or a template that names an
undeclared field or setting.
"""

from __future__ import annotations

import json
import re
import typing as t
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path


import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from taps.engine.paths import PathStep, parse_field_path
from taps.engine.templates import referenced_names, referenced_settings
from taps.engine.transforms import is_time_zone

PII_CLASSES = ("none", "email", "phone", "name", "address", "ip", "free_text", "identifier", "date_of_birth", "secret")


class DeclarationError(ValueError):
    """Raised with every problem found in a declaration, one per line, each with its path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Invalid source declaration {source} ({len(problems)} problem(s)):\n{listing}")


@dataclass(frozen=True)
class FieldSpec:
    """One whitelisted field: where it is read from, its JSON type and its PII class."""

    name: str
    type: str
    pii: str
    path: tuple[PathStep, ...]
    format: str | None = None
    transform: str | None = None
    timezone: str | None = None
    nullable: bool = True
    default: t.Any = None
    items: tuple[FieldSpec, ...] | None = None
    description: str | None = None
    value: str | None = None
    sentinels: tuple[str, ...] = ()
    sentinel_use: str | None = None
    sentinel_null: bool = False


@dataclass(frozen=True)
class PaginatorSpec:
    """Paginator kind of a stream and its options."""

    type: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicationSpec:
    """Incremental reads: the bookmark field and how its value goes into a request."""

    key: str
    request_param: str | None = None
    request_end_param: str | None = None
    request_range: dict[str, str] | None = None
    request_format: str = "iso8601"
    start_setting: str = "start_date"
    window_days: int | None = None
    lookback_days: int | str = 0
    retention_days: int | None = None
    on_expired_bookmark: str = "fail"
    timezone: str | None = None
    history_days: int | None = None
    bookmark_cap: str | None = None
    filter_params: dict[str, t.Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamSpec:
    """One declared stream."""

    name: str
    path: str
    records: str
    paginator: PaginatorSpec
    primary_key: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    params: dict[str, t.Any] = field(default_factory=dict)
    headers: dict[str, t.Any] = field(default_factory=dict)
    replication: ReplicationSpec | None = None
    ignored_fields: frozenset[str] = frozenset()
    method: str = "GET"
    body: dict[str, t.Any] | None = None
    report_format: dict[str, t.Any] | None = None
    parent: str | None = None
    parent_context: dict[str, str] = field(default_factory=dict)
    deleted_when: dict[str, t.Any] | None = None
    partition_setting: str | None = None
    partition_key: str | None = None
    partition_remove: tuple[str, ...] = ()
    partition_pattern: str | None = None
    state_keys: tuple[str, ...] = ()
    report_job: dict[str, t.Any] | None = None
    selected_by_default: bool = True
    strict_totals: bool = False
    base_url: str | None = None
    page_size: int | str | None = None
    # A `taps.engine.change_feed.ChangesSpec`; typed loosely because that module imports this one.
    changes: t.Any = None
    description: str | None = None


@dataclass(frozen=True)
class SettingSpec:
    """One tap setting, turned into the tap's config JSON Schema."""

    name: str
    type: str
    required: bool = False
    secret: bool = False
    format: str | None = None
    default: t.Any = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """A validated source declaration."""

    name: str
    base_url: str
    auth: dict[str, str]
    settings: tuple[SettingSpec, ...]
    streams: tuple[StreamSpec, ...]
    headers: dict[str, t.Any] = field(default_factory=dict)
    api_version: str | None = None
    version_sunset: str | None = None
    errors: dict[str, t.Any] = field(default_factory=dict)
    status_hints: dict[int, str] = field(default_factory=dict)
    description: str | None = None


@cache
def declaration_schema() -> dict[str, t.Any]:
    """Return the JSON Schema of source declarations.

    The auth and error-handling parts are defined beside their code and put
    into the schema file's document here.
    """
    from taps.engine.auth import AUTH_SCHEMA
    from taps.engine.pagination import PAGINATOR_SCHEMAS
    from taps.engine.report_jobs import REPORT_JOB_SCHEMA
    from taps.engine.reports import REPORT_FORMAT_SCHEMA
    from taps.engine.retry import ERROR_HANDLING_SCHEMA
    from taps.engine.change_feed import CHANGES_SCHEMA

    text = resources.files("taps.engine").joinpath("declaration.schema.json").read_text()
    schema = json.loads(text)
    schema["$defs"]["auth"] = AUTH_SCHEMA
    schema["$defs"]["paginator"] = {"oneOf": list(PAGINATOR_SCHEMAS.values())}
    schema["$defs"]["report_format"] = REPORT_FORMAT_SCHEMA
    schema["$defs"]["report_job"] = REPORT_JOB_SCHEMA
    schema["$defs"]["changes"] = CHANGES_SCHEMA
    schema["properties"]["errors"] = ERROR_HANDLING_SCHEMA
    return schema


def load_declaration(path: Path | t.Any) -> SourceSpec:
    """Read a YAML declaration from a path or an importlib resource and validate it."""
    label = str(path)
    if isinstance(path, str):
        path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DeclarationError(label, [f"not valid YAML{where}: {getattr(error, 'problem', error)}"]) from None
    return parse_declaration(document, label=label)


def parse_declaration(document: t.Any, *, label: str = "<memory>") -> SourceSpec:
    """Validate a declaration already parsed into Python objects and build its spec."""
    problems = schema_problems(document)
    if not problems:
        problems = semantic_problems(document)
    if problems:
        raise DeclarationError(label, problems)
    return _build_source(document)


def schema_problems(document: t.Any) -> list[str]:
    """Return every JSON Schema violation, each prefixed with its dotted path."""
    validator = Draft202012Validator(declaration_schema())
    problems: list[str] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        problems.extend(_describe(error))
    return problems


def _dotted(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _describe(error: ValidationError) -> list[str]:
    """Turn one validation error into readable lines, resolving `oneOf` by the `type` key."""
    if error.validator != "oneOf":
        return [f"{_dotted(error)}: {_message(error)}"]

    instance = error.instance
    branches = error.validator_value
    kinds = [branch.get("properties", {}).get("type", {}).get("const") for branch in branches]
    if not isinstance(instance, dict) or instance.get("type") not in kinds:
        allowed = ", ".join(str(kind) for kind in kinds if kind)
        got = instance.get("type") if isinstance(instance, dict) else type(instance).__name__
        return [f"{_dotted(error)}.type: {got!r} is not one of the allowed values: {allowed}"]

    chosen = kinds.index(instance["type"])
    lines: list[str] = []
    for sub_error in error.context or ():
        if sub_error.relative_schema_path and sub_error.relative_schema_path[0] == chosen:
            lines.extend(_describe(sub_error))
    return lines or [f"{_dotted(error)}: {error.message}"]


def _message(error: ValidationError) -> str:
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[0] == "auth":
        # The value may be a pasted secret: never repeat it.
        return "must be exactly one {config.NAME} placeholder; declare NAME as a secret setting instead of writing the value here"
    if error.validator == "enum":
        allowed = ", ".join(str(value) for value in error.validator_value)
        return f"{error.instance!r} is not one of the allowed values: {allowed}"
    if error.validator == "additionalProperties":
        return f"{error.message}; remove it or check its spelling"
    return error.message


def semantic_problems(document: dict[str, t.Any]) -> list[str]:
    """Check references between parts of a schema-valid declaration."""
    problems: list[str] = []
    settings = {setting["name"] for setting in document["settings"]}
    problems.extend(_setting_problems(document["settings"]))
    problems.extend(_error_policy_problems(document.get("errors")))

    for place, template in _templates(document):
        for name in referenced_settings(template):
            if name not in settings:
                problems.append(f"{place}: refers to setting {name!r}, which is not declared under settings")
        problems.extend(_scoped_template_problems(place, template, document))

    for stream_name, stream in document["streams"].items():
        fields = stream["fields"]
        for index, key in enumerate(stream["primary_key"]):
            if key not in fields:
                problems.append(f"streams.{stream_name}.primary_key.{index}: {key!r} is not a declared field")
            elif fields[key].get("nullable") is True:
                problems.append(f"streams.{stream_name}.fields.{key}.nullable: a primary-key field cannot be nullable")

        replication = stream.get("replication")
        if replication:
            problems.extend(_replication_problems(stream_name, stream, settings, document["settings"]))
        for field_name, field in fields.items():
            problems.extend(_transform_problems(f"streams.{stream_name}.fields.{field_name}", field))
            problems.extend(_field_shape_problems(f"streams.{stream_name}.fields.{field_name}", field))
        problems.extend(_page_size_problems(f"streams.{stream_name}", stream, document))
        if stream.get("parent"):
            problems.extend(_parent_problems(stream_name, stream, document["streams"]))
        if stream.get("partitions"):
            problems.extend(_partition_problems(stream_name, stream, document["settings"]))
        if stream.get("report_job"):
            problems.extend(_report_job_problems(stream_name, stream))
        if stream.get("changes"):
            from taps.engine.change_feed import changes_problems

            problems.extend(changes_problems(stream_name, stream, document["settings"]))
    return problems


def _partition_problems(stream_name: str, stream: dict[str, t.Any], settings: list[dict[str, t.Any]]) -> list[str]:
    place = f"streams.{stream_name}.partitions"
    if stream.get("parent"):
        return [f"{place}: a stream takes either parent or partitions, not both"]
    setting = next((s for s in settings if s["name"] == stream["partitions"]["setting"]), None)
    if setting is None or setting["type"] != "array":
        return [f"{place}.setting: {stream['partitions']['setting']!r} is not a declared setting of type array"]
    pattern = stream["partitions"].get("pattern")
    if pattern is not None and not _compiles(pattern):
        return [f"{place}.pattern: not a valid regular expression"]
    return []


_PAGE_SIZE_PAGINATORS = ("offset", "page_number")


def _page_size_problems(place: str, stream: dict[str, t.Any], document: dict[str, t.Any]) -> list[str]:
    """Check a stream's `page_size`: its paginator must take a page size, and a placeholder must name an integer setting."""
    defaults = document.get("stream_defaults") or {}
    page_size = stream.get("page_size", defaults.get("page_size"))
    if page_size is None:
        return []

    problems = []
    paginator = stream.get("paginator") or defaults.get("paginator") or {"type": "single_page"}
    if "page_size" in stream and paginator["type"] not in _PAGE_SIZE_PAGINATORS:
        problems.append(f"{place}.page_size: paginator {paginator['type']!r} takes no page size; remove page_size")
    names = referenced_settings(page_size) if isinstance(page_size, str) else []
    setting = next((item for item in document["settings"] if names and item["name"] == names[0]), None)
    if setting is not None and (setting["type"] != "integer" or setting.get("default") is None):
        problems.append(f"{place}.page_size: setting {names[0]!r} must be an integer setting with a default")
    return problems


def _report_job_problems(stream_name: str, stream: dict[str, t.Any]) -> list[str]:
    from taps.engine.report_jobs import report_job_problems

    place = f"streams.{stream_name}.report_job"
    problems = report_job_problems(stream["report_job"], place=place)
    replication = stream.get("replication") or {}
    if not (replication.get("request_range") or replication.get("request_param") or _uses_window_template(stream)):
        problems.append(
            f"{place}: report jobs read date ranges, so the stream needs replication with request_range, "
            "request_param or a {window.start} placeholder"
        )
    if stream.get("method", "GET") != "GET" or stream.get("body") is not None:
        problems.append(f"{place}: a report job is submitted with the stream's params only; use method GET and no body")
    return problems


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _field_shape_problems(place: str, field: dict[str, t.Any]) -> list[str]:
    problems = []
    try:
        parse_field_path(field.get("path") or "field")
    except ValueError as error:
        problems.append(f"{place}.path: {error}")
    if field.get("items") and field["type"] != "array":
        problems.append(f"{place}.items: only a field of type array has items")
    for key, item in (field.get("items") or {}).items():
        if item.get("transform") == "numeric_string" and item["type"] not in ("integer", "number"):
            problems.append(f"{place}.items.{key}.transform: numeric_string produces integer or number; declare the key that way")
    default = field.get("default")
    if default is not None:
        expected = _SETTING_TYPES.get(field["type"], ())
        if isinstance(default, bool) != (field["type"] == "boolean") or not isinstance(default, expected):
            problems.append(f"{place}.default: the default is not of the field's type {field['type']!r}")
    return problems


def _context_names(stream: dict[str, t.Any]) -> set[str]:
    """Return the names a stream's context carries: its partition key or its parent's context keys."""
    if stream.get("partitions"):
        return {stream["partitions"]["key"]}
    return set((stream.get("parent") or {}).get("context") or {})


def _scoped_template_problems(place: str, template: str, document: dict[str, t.Any]) -> list[str]:
    """Check {context.NAME} and {window.NAME} placeholders against the stream they sit in."""
    context_refs = referenced_names(template, "context")
    window_refs = referenced_names(template, "window")
    if not (context_refs or window_refs):
        return []
    parts = place.split(".")
    stream = document["streams"].get(parts[1]) if parts[0] == "streams" and len(parts) > 1 else None
    if stream is None:
        return [f"{place}: {{context.NAME}} and {{window.NAME}} placeholders work only inside a stream"]

    if ".headers." in place:
        return [f"{place}: {{context.NAME}} and {{window.NAME}} are not filled in headers; use them in path, params or body"]

    problems = []
    known = _context_names(stream)
    for name in context_refs:
        if name not in known:
            problems.append(f"{place}: {{context.{name}}} is not a partition key or parent.context key of this stream")
    for name in window_refs:
        if name not in ("start", "end"):
            problems.append(f"{place}: {{window.{name}}} is unknown; use {{window.start}} or {{window.end}}")
    if window_refs and not stream.get("replication"):
        problems.append(f"{place}: {{window.NAME}} needs a replication section that plans the windows")
    return problems


def _parent_problems(stream_name: str, stream: dict[str, t.Any], streams: dict[str, t.Any]) -> list[str]:
    place = f"streams.{stream_name}.parent"
    parent_name = stream["parent"]["stream"]
    if parent_name == stream_name or parent_name not in streams:
        return [f"{place}.stream: {parent_name!r} is not another declared stream"]

    problems = []
    parent_fields = streams[parent_name]["fields"]
    for index, key in enumerate(stream["parent"].get("state_keys") or ()):
        if key not in stream["parent"]["context"]:
            problems.append(f"{place}.state_keys.{index}: {key!r} is not a key of parent.context")
    for key, field_name in stream["parent"]["context"].items():
        declared = parent_fields.get(field_name)
        if declared is None:
            problems.append(f"{place}.context.{key}: {field_name!r} is not a field of stream {parent_name!r}")
        elif declared["pii"] != "none":
            # Context values reach state partitions and metric logs in clear.
            problems.append(f"{place}.context.{key}: field {field_name!r} is classed {declared['pii']!r}; only fields classed none may link streams")
    for placeholder in re.findall(r"\{([a-z_][a-z0-9_]*)\}", stream["path"]):
        if placeholder not in stream["parent"]["context"]:
            problems.append(f"streams.{stream_name}.path: placeholder {{{placeholder}}} is not a key of parent.context")
    return problems


#: The declared type and format each transform produces.
TRANSFORM_OUTPUTS: dict[str, tuple[set[str], str | None]] = {
    "epoch_seconds": ({"string"}, "date-time"),
    "epoch_milliseconds": ({"string"}, "date-time"),
    "local_timestamp": ({"string"}, "date-time"),
    "yyyymmdd": ({"string"}, "date"),
    "numeric_string": ({"integer", "number"}, None),
    "resource_name_id": ({"integer", "string"}, None),
    "url_path": ({"string"}, None),
}


def _transform_problems(place: str, field: dict[str, t.Any]) -> list[str]:
    problems = []
    transform = field.get("transform")
    if transform in TRANSFORM_OUTPUTS:
        types, output_format = TRANSFORM_OUTPUTS[transform]
        if field["type"] not in types or field.get("format") != output_format:
            expected = " or ".join(sorted(types)) + (f" with format {output_format}" if output_format else "")
            problems.append(f"{place}.transform: {transform} produces {expected}; declare the field that way")

    timezone = field.get("timezone")
    if timezone is not None:
        if transform != "local_timestamp":
            problems.append(f"{place}.timezone: only the local_timestamp transform uses a time zone")
        elif not is_time_zone(timezone):
            problems.append(f"{place}.timezone: {timezone!r} is not an IANA time zone such as 'Europe/Berlin'")
    return problems


_SETTING_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list,)}


def _setting_problems(settings: list[dict[str, t.Any]]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, setting in enumerate(settings):
        if setting["name"] in seen:
            problems.append(f"settings.{index}.name: {setting['name']!r} is declared twice")
        seen.add(setting["name"])
        pattern = setting.get("pattern")
        if pattern is not None and not _compiles(pattern):
            problems.append(f"settings.{index}.pattern: not a valid regular expression")
        if pattern is not None and setting.get("secret"):
            problems.append(f"settings.{index}.pattern: a secret setting cannot have a pattern, because a mismatch would be reported with its value")
        default = setting.get("default")
        expected = _SETTING_TYPES[setting["type"]]
        wrong_bool = isinstance(default, bool) and setting["type"] != "boolean"
        if default is not None and (wrong_bool or not isinstance(default, expected)):
            problems.append(f"settings.{index}.default: the default is not of the setting's type {setting['type']!r}")
    return problems


def _error_policy_problems(section: t.Any) -> list[str]:
    from taps.engine.retry import build_error_policy

    try:
        build_error_policy(section)
    except ValueError as error:
        return [line.strip().removeprefix("- ") for line in str(error).splitlines()[1:] if line.strip()] or [str(error)]
    return []


def _uses_window_template(stream: dict[str, t.Any]) -> bool:
    """Tell whether the stream's body or params carry {window.start} or {window.end}."""
    places = [value for _, value in _tree_templates("body", stream.get("body"))]
    places.extend(str(value) for value in (stream.get("params") or {}).values())
    return any(referenced_names(text, "window") for text in places)


def _replication_problems(
    stream_name: str,
    stream: dict[str, t.Any],
    settings: set[str],
    settings_list: list[dict[str, t.Any]],
) -> list[str]:
    replication = stream["replication"]
    fields = stream["fields"]
    place = f"streams.{stream_name}.replication"
    key = replication["key"]
    if key not in fields:
        return [f"{place}.key: {key!r} is not a declared field"]

    problems = []
    windowed = [name for name in ("window_days", "lookback_days", "retention_days") if replication.get(name)]
    ranged = bool(replication.get("request_range")) or _uses_window_template(stream)
    if replication.get("request_range") and (replication.get("request_param") or replication.get("request_end_param")):
        problems.append(f"{place}.request_range: use either request_range or request_param/request_end_param, not both")
    if replication.get("filter_params") and not replication.get("request_param"):
        problems.append(f"{place}.filter_params: filter_params go with the lower bound, so declare request_param too")
    if windowed and not (replication.get("request_param") or ranged):
        problems.append(f"{place}: {', '.join(windowed)} need request_param, the parameter that carries the lower bound")
    if replication.get("window_days") and not (replication.get("request_end_param") or ranged):
        problems.append(f"{place}: window_days needs request_end_param, or each window would re-read everything after its start")
    if key in fields and fields[key]["pii"] != "none":
        problems.append(f"{place}.key: {key!r} is classed {fields[key]['pii']!r}; bookmarks are stored in clear, so use a field classed none")
    declared = fields[key]
    if declared.get("format") not in ("date-time", "date") and declared["type"] != "integer":
        problems.append(f"{place}.key: {key!r} must be a date-time string, a date or an integer field")
    if declared.get("format") == "date" and replication.get("request_format") != "date":
        problems.append(f"{place}.request_format: a bookmark on a date field needs request_format: date")
    if stream.get("report_job") and replication.get("request_format") != "date":
        problems.append(f"{place}.request_format: report jobs split date ranges, so they need request_format: date")
    timezone = replication.get("timezone")
    if timezone and "{" not in timezone and not is_time_zone(timezone):
        problems.append(f"{place}.timezone: {timezone!r} is not an IANA time zone such as 'Europe/Berlin'")
    lookback = replication.get("lookback_days")
    if isinstance(lookback, str):
        names = referenced_settings(lookback)
        declared_setting = next((item for item in settings_list if names and item["name"] == names[0]), None)
        if declared_setting is not None and (declared_setting["type"] != "integer" or declared_setting.get("default") is None):
            problems.append(f"{place}.lookback_days: setting {names[0]!r} must be an integer setting with a default")
    if replication.get("bookmark_cap") and declared.get("format") != "date-time":
        problems.append(f"{place}.bookmark_cap: the read start is a time, so {key!r} must be a date-time field")
    start_setting = replication.get("start_setting", "start_date")
    if start_setting not in settings:
        problems.append(f"{place}.start_setting: setting {start_setting!r} is not declared under settings")
    return problems


def _templates(document: dict[str, t.Any]) -> t.Iterator[tuple[str, str]]:
    yield "api.base_url", document["api"]["base_url"]
    for key, value in document["auth"].items():
        if key != "type" and isinstance(value, str):
            yield f"auth.{key}", value
    for index, alternative in enumerate(document["auth"].get("alternatives") or ()):
        for key, value in alternative.items():
            if key != "type" and isinstance(value, str):
                yield f"auth.alternatives.{index}.{key}", value
    for key, value in (document.get("headers") or {}).items():
        yield f"headers.{key}", str(value)
    for stream_name, stream in document["streams"].items():
        for section in ("params", "headers"):
            for key, value in (stream.get(section) or {}).items():
                yield f"streams.{stream_name}.{section}.{key}", str(value)
        if isinstance(stream.get("page_size"), str):
            yield f"streams.{stream_name}.page_size", stream["page_size"]
    if isinstance((document.get("stream_defaults") or {}).get("page_size"), str):
        yield "stream_defaults.page_size", document["stream_defaults"]["page_size"]
    for section in ("params", "headers"):
        for key, value in ((document.get("stream_defaults") or {}).get(section) or {}).items():
            yield f"stream_defaults.{section}.{key}", str(value)
    for stream_name, stream in document["streams"].items():
        yield from _tree_templates(f"streams.{stream_name}.body", stream.get("body"))
        if stream.get("base_url"):
            yield f"streams.{stream_name}.base_url", stream["base_url"]
        for field_name, field_body in stream["fields"].items():
            if isinstance(field_body.get("value"), str):
                yield f"streams.{stream_name}.fields.{field_name}.value", field_body["value"]
            if isinstance((field_body.get("sentinels") or {}).get("use"), str):
                yield f"streams.{stream_name}.fields.{field_name}.sentinels.use", field_body["sentinels"]["use"]
        replication = stream.get("replication") or {}
        for key in ("timezone", "lookback_days"):
            if isinstance(replication.get(key), str):
                yield f"streams.{stream_name}.replication.{key}", replication[key]


def _tree_templates(place: str, node: t.Any) -> t.Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _tree_templates(f"{place}.{key}", value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _tree_templates(f"{place}.{index}", value)
    elif isinstance(node, str):
        yield place, node


def _build_source(document: dict[str, t.Any]) -> SourceSpec:
    defaults = document.get("stream_defaults") or {}
    streams = tuple(_build_stream(name, body, defaults) for name, body in document["streams"].items())
    settings = tuple(_build_setting(setting) for setting in document["settings"])
    return SourceSpec(
        name=document["name"],
        base_url=document["api"]["base_url"],
        api_version=document["api"].get("version"),
        version_sunset=document["api"].get("version_sunset"),
        auth=dict(document["auth"]),
        settings=settings,
        streams=streams,
        headers=dict(document.get("headers") or {}),
        errors=dict(document.get("errors") or {}),
        status_hints={item["status"]: item["hint"] for item in document.get("status_hints") or ()},
        description=document.get("description"),
    )


def _build_setting(setting: dict[str, t.Any]) -> SettingSpec:
    return SettingSpec(
        name=setting["name"],
        type=setting["type"],
        required=setting.get("required", False),
        secret=setting.get("secret", False),
        format=setting.get("format"),
        default=setting.get("default"),
        minimum=setting.get("minimum"),
        maximum=setting.get("maximum"),
        pattern=setting.get("pattern"),
        description=setting.get("description"),
    )


def _build_stream(name: str, body: dict[str, t.Any], defaults: dict[str, t.Any]) -> StreamSpec:
    primary_key = tuple(body["primary_key"])
    paginator = body.get("paginator") or defaults.get("paginator") or {"type": "single_page"}
    replication = body.get("replication")
    return StreamSpec(
        name=name,
        path=body["path"],
        records=body.get("records") or defaults.get("records") or "$[*]",
        paginator=PaginatorSpec(type=paginator["type"], options={k: v for k, v in paginator.items() if k != "type"}),
        primary_key=primary_key,
        fields=tuple(_build_field(field_name, spec, primary_key) for field_name, spec in body["fields"].items()),
        params={**(defaults.get("params") or {}), **(body.get("params") or {})},
        headers={**(defaults.get("headers") or {}), **(body.get("headers") or {})},
        replication=ReplicationSpec(**replication) if replication else None,
        ignored_fields=frozenset(body.get("ignored_fields", ())),
        method=body.get("method", "GET"),
        report_format=body.get("report_format"),
        deleted_when=body.get("deleted_when"),
        partition_setting=(body.get("partitions") or {}).get("setting"),
        partition_key=(body.get("partitions") or {}).get("key"),
        partition_remove=tuple((body.get("partitions") or {}).get("remove") or ()),
        partition_pattern=(body.get("partitions") or {}).get("pattern"),
        state_keys=tuple((body.get("parent") or {}).get("state_keys") or ()),
        report_job=body.get("report_job"),
        selected_by_default=body.get("selected_by_default", True),
        parent=(body.get("parent") or {}).get("stream"),
        parent_context=dict((body.get("parent") or {}).get("context") or {}),
        body=body.get("body"),
        strict_totals=body.get("strict_totals", False),
        base_url=body.get("base_url"),
        page_size=body.get("page_size", defaults.get("page_size")),
        changes=_build_changes(body.get("changes")),
        description=body.get("description"),
    )


def _build_changes(section: dict[str, t.Any] | None) -> t.Any:
    from taps.engine.change_feed import parse_changes

    return parse_changes(section) if section else None


def _build_field(name: str, spec: dict[str, t.Any], primary_key: tuple[str, ...]) -> FieldSpec:
    return FieldSpec(
        name=name,
        type=spec["type"],
        pii=spec["pii"],
        path=parse_field_path(spec.get("path") or name),
        format=spec.get("format"),
        transform=spec.get("transform"),
        timezone=spec.get("timezone"),
        nullable=spec.get("nullable", name not in primary_key),
        default=spec.get("default"),
        items=_build_items(name, spec["items"], spec["pii"]) if spec.get("items") else None,
        description=spec.get("description"),
        value=spec.get("value"),
        sentinels=tuple((spec.get("sentinels") or {}).get("values") or ()),
        sentinel_use=(spec.get("sentinels") or {}).get("use"),
        sentinel_null="use" in (spec.get("sentinels") or {}) and spec["sentinels"]["use"] is None,
    )


def _build_items(name: str, items: dict[str, t.Any], pii: str) -> tuple[FieldSpec, ...]:
    """Build the kept keys of an array's elements; each takes the array's PII class."""
    return tuple(
        FieldSpec(
            name=f"{name}[].{key}",
            type=item["type"],
            pii=pii,
            path=(key,),
            transform=item.get("transform"),
            description=item.get("description"),
        )
        for key, item in items.items()
    )
