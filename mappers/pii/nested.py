"""Sub-fields of kept objects: only those the SCHEMA declares pass.

A kept field whose schema is an object with `properties`, or an array whose
`items` is one, is decoded one level at a time into raw JSON values. Declared
sub-fields keep the bytes they arrived in, and undeclared ones are dropped and
counted. Declared sub-fields carry no class of their own that the mapper acts
on: a kept object with a personal sub-field is rejected when the plan is built.

An object without `properties` (free-form) cannot be pruned, so it passes
whole and the plan lists it for a warning.
"""

from __future__ import annotations

import itertools
import typing as t
from collections import Counter
from dataclasses import dataclass

import msgspec

from mappers.pii.errors import MappingError

_decode_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


@dataclass(frozen=True)
class ObjectShape:
    """The declared sub-fields of an object value, each with the shape of its own value (None: kept as is)."""

    children: dict[str, Shape | None]


@dataclass(frozen=True)
class ArrayShape:
    """The shape of each item of an array value."""

    items: Shape


Shape = ObjectShape | ArrayShape


def json_types(prop: t.Any) -> set[str]:
    """Return the JSON types a property schema allows, including those of its anyOf/oneOf members."""
    if not isinstance(prop, dict):
        return set()
    declared = prop.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(item) for item in declared}
    types: set[str] = set()
    for member in _members(prop):
        types |= json_types(member)
    return types


def value_shape(prop: t.Any) -> Shape | None:
    """Return the shape a value of `prop` is pruned to, or None when it has no declared sub-fields to prune to."""
    if not isinstance(prop, dict):
        return None
    properties = _declared_properties(prop)
    if properties is not None:
        return ObjectShape({name: value_shape(child) for name, child in properties.items()})

    items = _declared_items(prop)
    item_shape = value_shape(items) if items is not None else None
    return ArrayShape(item_shape) if item_shape is not None else None


def free_form_paths(prop: t.Any, path: str) -> list[str]:
    """Return the paths of objects under `prop` (itself included) that declare no sub-fields, so pass whole."""
    if not isinstance(prop, dict):
        return []
    properties = _declared_properties(prop)
    if properties is not None:
        return [found for name, child in properties.items() for found in free_form_paths(child, f"{path}.{name}")]

    items = _declared_items(prop)
    if items is not None:
        return free_form_paths(items, f"{path}[]")
    # NOTE: an array without `items` is not counted as free-form, although its items could be objects.
    return [path] if "object" in json_types(prop) else []


def pruner(shape: Shape, stream: str, field: str, dropped: Counter[str]) -> t.Callable[[msgspec.Raw], t.Any]:
    """Return the transform that prunes one field's raw value to `shape`, counting dropped sub-fields in `dropped`.

    A value with only declared sub-fields is returned as the bytes it arrived in.
    That is checked by one msgspec decode into Structs that forbid other fields;
    only a value that fails the check is pruned in Python.
    """
    try:
        exact = msgspec.json.Decoder(exact_type(shape)).decode
    except ValueError:
        # msgspec cannot name a sub-field with a quote, backslash or control character, so Python prunes those.
        def exact(raw: msgspec.Raw) -> t.Any:
            raise msgspec.ValidationError

    def prune(raw: msgspec.Raw) -> t.Any:
        try:
            exact(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return _prune(shape, raw, stream, field, dropped)
        return raw

    return prune


_exact_types = itertools.count()


def exact_type(shape: Shape) -> t.Any:
    """Return the msgspec type of a value of `shape` that has no undeclared sub-field, or null.

    Declared sub-fields without a shape of their own stay raw JSON. A value of
    another form (an undeclared sub-field, a scalar) fails to decode as this type.
    """
    if isinstance(shape, ArrayShape):
        return list[exact_type(shape.items)] | None  # type: ignore[misc]

    names = list(shape.children)
    attributes = [f"f{index}" for index in range(len(names))]
    fields = [
        (attribute, msgspec.Raw if child is None else exact_type(child), msgspec.UNSET)
        for attribute, child in zip(attributes, shape.children.values(), strict=True)
    ]
    struct = msgspec.defstruct(
        f"Declared{next(_exact_types)}",
        fields,
        rename=dict(zip(attributes, names, strict=True)),
        forbid_unknown_fields=True,
    )
    return struct | None


def _prune(shape: Shape, raw: msgspec.Raw, stream: str, field: str, dropped: Counter[str]) -> t.Any:
    """Return the value of `raw` with only declared sub-fields; a scalar or null is returned unchanged."""
    first = memoryview(raw)[:1].tobytes()
    if first == b"{":
        if not isinstance(shape, ObjectShape):
            _fail_kind(stream, field, "a JSON object", "an array")
        return _prune_object(shape, _decode_object(raw), stream, field, dropped)
    if first == b"[":
        if not isinstance(shape, ArrayShape):
            _fail_kind(stream, field, "a JSON array", "an object")
        return [_prune(shape.items, item, stream, field, dropped) for item in _decode_array(raw)]
    return raw


def _prune_object(
    shape: ObjectShape, values: dict[str, msgspec.Raw], stream: str, field: str, dropped: Counter[str]
) -> dict[str, t.Any]:
    kept: dict[str, t.Any] = {}
    children = shape.children
    for name, raw in values.items():
        if name not in children:
            dropped[field] += 1
            continue
        child = children[name]
        kept[name] = raw if child is None else _prune(child, raw, stream, field, dropped)
    return kept


def _fail_kind(stream: str, field: str, found: str, declared: str) -> t.NoReturn:
    msg = (
        f"Stream {stream!r}: a value of kept field {field!r} (or of one of its sub-fields) is {found}, but its "
        f"SCHEMA declares {declared}, so its sub-fields cannot be checked. Nothing of the record was written; "
        "fix the field's schema in the tap."
    )
    raise MappingError(msg)


def _declared_properties(prop: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """Return the declared sub-fields of an object schema (merged over anyOf/oneOf members), or None."""
    if "object" not in json_types(prop):
        return None
    merged: dict[str, t.Any] = {}
    found = False
    for schema in (prop, *_members(prop)):
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if isinstance(properties, dict):
            merged.update(properties)
            found = True
    return merged if found else None


def _declared_items(prop: dict[str, t.Any]) -> dict[str, t.Any] | None:
    if "array" not in json_types(prop):
        return None
    for schema in (prop, *_members(prop)):
        items = schema.get("items") if isinstance(schema, dict) else None
        if isinstance(items, dict):
            return items
    return None


def _members(prop: dict[str, t.Any]) -> list[t.Any]:
    members = prop.get("anyOf") or prop.get("oneOf") or []
    return members if isinstance(members, list) else []
