"""The field whitelist: build the stream schema and cut API records down to it.

Only declared fields leave the tap. Each declared field is read from its path
in the API record, transformed as declared, and carries its PII class as
`x-pii` in the JSON Schema that goes out in the SCHEMA message.
"""

from __future__ import annotations

import typing as t
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from taps.engine.declaration import FieldSpec, StreamSpec
from taps.engine.paths import ListMatch, PathStep
from taps.engine.templates import render
from taps.engine.transforms import TRANSFORMS, FieldTransformError

_MISSING = object()

#: Python types a JSON decoder returns for each declared JSON type; `bool` is not an integer here.
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float, Decimal),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_JSON_NAMES = {str: "string", int: "integer", float: "number", Decimal: "number", bool: "boolean", list: "array", dict: "object"}
#: Characters of a key value shown in an error message.
_KEY_VALUE_CHARS = 64


def field_schema(spec: FieldSpec) -> dict[str, t.Any]:
    """Return the JSON Schema of one declared field, with its `x-pii` class."""
    json_type: str | list[str] = [spec.type, "null"] if spec.nullable else spec.type
    schema: dict[str, t.Any] = {"type": json_type, "x-pii": spec.pii}
    if spec.format:
        schema["format"] = spec.format
    if spec.description:
        schema["description"] = spec.description
    if spec.type == "object":
        schema["additionalProperties"] = True
    if spec.items:
        schema["items"] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {item.path[0]: {"type": [item.type, "null"]} for item in spec.items},
        }
    return schema


DELETED_AT = "_sdc_deleted_at"
#: Bookmark column of a stream read through a change feed: the event time, or the full read's start.
CHANGED_AT = "_sdc_changed_at"


def stream_schema(stream: StreamSpec) -> dict[str, t.Any]:
    """Return the JSON Schema of a stream's records: its declared fields, plus the tombstone column."""
    properties = {spec.name: field_schema(spec) for spec in stream.fields}
    if stream.deleted_when or stream.changes:
        properties[DELETED_AT] = {"type": ["string", "null"], "format": "date-time", "x-pii": "none"}
    if stream.changes:
        properties[CHANGED_AT] = {"type": ["string", "null"], "format": "date-time", "x-pii": "none"}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(stream.primary_key),
    }


def annotate_schema(schema: dict[str, t.Any], stream: StreamSpec) -> dict[str, t.Any]:
    """Return a copy of `schema` with the declared `x-pii` class on every declared property.

    singer-sdk's catalog model keeps only standard JSON Schema keywords, so the
    classes are put back wherever a schema passes through it.
    """
    classes = {spec.name: spec.pii for spec in stream.fields}
    if stream.deleted_when or stream.changes:
        classes[DELETED_AT] = "none"
    if stream.changes:
        classes[CHANGED_AT] = "none"
    properties = {
        name: ({**prop, "x-pii": classes[name]} if name in classes else dict(prop))
        for name, prop in schema.get("properties", {}).items()
    }
    return {**schema, "properties": properties}


#: Template namespaces (config, context, window) for fields declared with a `value` template.
Templated = t.Mapping[str, t.Mapping[str, t.Any]]


def _rendered(template: str, values: Templated | None) -> t.Any:
    """Render a field's template; a value that is not set counts as missing."""
    values = values or {}
    rendered = render(template, values.get("config") or {}, values)
    return _MISSING if rendered is None else rendered


def read_path(record: t.Mapping[str, t.Any], path: tuple[PathStep, ...]) -> t.Any:
    """Follow a path into nested objects and matched list elements; a missing step or a null gives `_MISSING`/None."""
    value: t.Any = record
    for step in path:
        # `dict` first: an isinstance check against typing.Mapping costs far more per call.
        if type(value) is not dict and not isinstance(value, t.Mapping):
            if type(step) is ListMatch and type(value) is list:
                value = step.pick(value)
                if value is None:
                    return _MISSING
                continue
            return None if value is None else _MISSING
        value = value.get(step, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def checked_type(value: t.Any, spec: FieldSpec) -> t.Any:
    """Check a value whose exact Python type is not listed for the field's JSON type; return it or raise.

    Called only after that cheap exact-type test failed, so the shaper's common path stays one
    tuple lookup. A whole float such as 5.0 is accepted for an integer field and returned as 5.
    """
    if spec.type == "integer" and type(value) is float and value.is_integer():
        return int(value)
    if isinstance(value, _PYTHON_TYPES[spec.type]) and not isinstance(value, bool):
        return value
    got = _JSON_NAMES.get(type(value), type(value).__name__)
    msg = (
        f"Field {spec.name!r}: expected a JSON {spec.type}, got a JSON {got}; declare the field's type "
        "as the API sends it, or a transform that converts it."
    )
    raise FieldTransformError(msg)


def _shape_item(element: t.Any, spec: FieldSpec) -> t.Any:
    """Keep the declared keys of one array element, each transformed as declared."""
    if not isinstance(element, t.Mapping):
        msg = f"Field {spec.name!r}: expected an array of objects, got an element of type {type(element).__name__}."
        raise FieldTransformError(msg)
    shaped_item: dict[str, t.Any] = {}
    for item in spec.items or ():
        value = element.get(item.path[0], _MISSING)
        if value is _MISSING:
            continue
        if item.transform:
            value = TRANSFORMS[item.transform](value, item)
        elif value is not None and type(value) not in _PYTHON_TYPES[item.type]:
            value = checked_type(value, item)
        shaped_item[item.path[0]] = value
    return shaped_item


class RecordShaper:
    """Cut API records down to the declared fields and count what was dropped."""

    def __init__(self, stream: StreamSpec) -> None:
        self._fields = stream.fields
        # Values read from a path without a transform have their JSON type checked. A
        # transform or a template sets the type itself, and arrays of objects are checked below.
        self._plan = tuple(
            (spec, None if spec.value or spec.transform or spec.items else _PYTHON_TYPES[spec.type]) for spec in stream.fields
        )
        by_name = {spec.name: spec for spec in stream.fields}
        key_fields = tuple(by_name[name] for name in stream.primary_key if name in by_name)
        # Only key values classed none are safe to show in an error message.
        self._key_fields = key_fields if all(spec.pii == "none" for spec in key_fields) else ()
        self._deleted_when = stream.deleted_when
        self._consumed = {spec.path[0] for spec in stream.fields} | set(stream.ignored_fields)
        if stream.deleted_when:
            self._consumed.add(stream.deleted_when["path"].split(".")[0])
        self.undeclared: Counter[str] = Counter()
        self.sentinels: Counter[tuple[str, str]] = Counter()
        self.uses_templates = any(spec.value or spec.sentinel_use for spec in stream.fields)
        self.records = 0

    def shape(self, record: t.Mapping[str, t.Any], values: Templated | None = None) -> dict[str, t.Any]:
        """Return the whitelisted record. Declared fields absent from the API record stay absent.

        `values` contains the config, context and window namespaces for fields declared with a `value` template.
        """
        self.records += 1
        for name in record.keys() - self._consumed:
            self.undeclared[name] += 1

        shaped: dict[str, t.Any] = {}
        for spec, python_types in self._plan:
            value = read_path(record, spec.path) if spec.value is None else _rendered(spec.value, values)
            if value is _MISSING:
                if spec.default is None:
                    continue
                value = spec.default
            if spec.sentinels and value in spec.sentinels:
                self.sentinels[(spec.name, value)] += 1
                if spec.sentinel_use is not None:
                    value = _rendered(spec.sentinel_use, values)
                elif spec.sentinel_null:
                    value = None
            elif spec.transform:
                value = TRANSFORMS[spec.transform](value, spec)
            elif python_types is not None and value is not None and type(value) not in python_types:
                value = checked_type(value, spec)
            if spec.items and value is not None:
                if not isinstance(value, list):
                    msg = f"Field {spec.name!r}: expected an array of objects, got a {type(value).__name__}."
                    raise FieldTransformError(msg)
                value = [_shape_item(element, spec) for element in value]
            shaped[spec.name] = value

        if self._deleted_when:
            deleted = read_path(record, tuple(self._deleted_when["path"].split("."))) == self._deleted_when["equals"]
            shaped[DELETED_AT] = datetime.now(UTC).isoformat() if deleted else None
        return shaped

    def key_label(self, record: t.Mapping[str, t.Any], values: Templated | None = None) -> str | None:
        """Describe a raw record's primary key as 'name=value, ...', or None when a key field is not classed none."""
        if not self._key_fields:
            return None
        parts = []
        for spec in self._key_fields:
            value = read_path(record, spec.path) if spec.value is None else _rendered(spec.value, values)
            shown = "(missing)" if value is _MISSING else repr(value)[:_KEY_VALUE_CHARS]
            parts.append(f"{spec.name}={shown}")
        return ", ".join(parts)

    def sentinel_summary(self) -> str | None:
        """Describe the placeholder values met since the last call, or None when there were none."""
        if not self.sentinels:
            return None
        counts = ", ".join(f"{value} in {name} ({count})" for (name, value), count in sorted(self.sentinels.items()))
        self.sentinels.clear()
        return f"placeholder values instead of real ones: {counts}"

    def summary(self) -> str | None:
        """Describe the undeclared fields that were dropped, or None when there were none."""
        if not self.undeclared:
            return None
        counts = ", ".join(f"{name} ({count})" for name, count in sorted(self.undeclared.items()))
        return f"dropped {len(self.undeclared)} undeclared field(s) from {self.records} record(s): {counts}"
