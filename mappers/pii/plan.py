"""Per-stream mapping plans: what the mapper does to each field, decided once per SCHEMA."""

from __future__ import annotations

import typing as t
from collections import Counter
from dataclasses import dataclass, field

from privacy.policy import PII_CLASSES, Policy

KEEP = "keep"
DROP = "drop"
HMAC = "hmac"


class MappingError(RuntimeError):
    """Raised when a stream cannot be mapped safely; the run must stop."""


@dataclass
class StreamPlan:
    """The field actions of one stream and the schema the mapper emits for it."""

    stream: str
    kept: tuple[str, ...]  # fields copied unchanged
    hashed: dict[str, str]
    dropped: frozenset[str]
    output_schema: dict[str, t.Any]
    key_properties: list[str]
    unclassified: frozenset[str] = frozenset()
    unknown_fields: Counter[str] = field(default_factory=Counter)


def build_plan(stream: str, schema: dict[str, t.Any], key_properties: t.Sequence[str], policy: Policy) -> StreamPlan:
    """Decide each field's action from its `x-pii` class and rewrite the schema to match."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        msg = f"Stream {stream!r}: the SCHEMA message has no 'properties' object, so no field can be classified."
        raise MappingError(msg)

    kept: list[str] = []
    hashed: dict[str, str] = {}
    dropped: set[str] = set()
    unclassified: set[str] = set()
    output_properties: dict[str, t.Any] = {}

    for name, prop in properties.items():
        action, pii_class = _decide(stream, name, prop, policy)
        if pii_class is None:
            unclassified.add(name)
        if action == DROP:
            dropped.add(name)
        elif action == HMAC:
            hashed[name] = t.cast("str", pii_class)
            output_properties[name] = _hashed_schema(prop)
        else:
            _check_nested(stream, name, prop)
            kept.append(name)
            output_properties[name] = {**prop, "x-pii-applied": KEEP}

    _check_keys(stream, key_properties, dropped)
    output_schema = {**schema, "properties": output_properties}
    if "required" in schema:
        output_schema["required"] = [name for name in schema["required"] if name in output_properties]

    return StreamPlan(
        stream=stream,
        kept=tuple(kept),
        hashed=hashed,
        dropped=frozenset(dropped),
        output_schema=output_schema,
        key_properties=list(key_properties),
        unclassified=frozenset(unclassified),
    )


def _decide(stream: str, name: str, prop: t.Any, policy: Policy) -> tuple[str, str | None]:
    pii_class = prop.get("x-pii") if isinstance(prop, dict) else None
    if pii_class is None:
        if policy.unclassified == "fail":
            msg = f"Stream {stream!r}: field {name!r} has no x-pii class and the policy rejects unclassified fields."
            raise MappingError(msg)
        return DROP, None

    if pii_class not in PII_CLASSES:
        msg = (
            f"Stream {stream!r}: field {name!r} has an unknown x-pii class {pii_class!r}; "
            f"expected one of: {', '.join(PII_CLASSES)}."
        )
        raise MappingError(msg)
    return policy.action_for(pii_class), pii_class


def _check_nested(stream: str, name: str, prop: dict[str, t.Any]) -> None:
    """Reject a kept object or array whose sub-fields are classed as personal: they would pass whole."""
    personal = sorted(_nested_personal_classes(prop))
    if personal:
        msg = (
            f"Stream {stream!r}: field {name!r} is kept whole but contains sub-fields classed "
            f"{', '.join(personal)}; declare those sub-fields as fields of their own in the tap."
        )
        raise MappingError(msg)


def _nested_personal_classes(prop: t.Any) -> set[str]:
    if not isinstance(prop, dict):
        return set()
    found: set[str] = set()
    children = list((prop.get("properties") or {}).values())
    if isinstance(prop.get("items"), dict):
        children.append(prop["items"])
    for child in children:
        if isinstance(child, dict) and child.get("x-pii") not in (None, "none"):
            found.add(str(child["x-pii"]))
        found |= _nested_personal_classes(child)
    return found


def _hashed_schema(prop: dict[str, t.Any]) -> dict[str, t.Any]:
    """Describe a pseudonym column: a hex string, as nullable as before, without the old format."""
    declared = prop.get("type", "string")
    nullable = "null" in declared if isinstance(declared, list) else False
    hashed = {key: value for key, value in prop.items() if key not in {"type", "format", "enum", "pattern", "maxLength", "minLength"}}
    hashed["type"] = ["string", "null"] if nullable else "string"
    hashed["x-pii-applied"] = HMAC
    return hashed


def _check_keys(stream: str, key_properties: t.Sequence[str], dropped: set[str]) -> None:
    lost = [key for key in key_properties if key in dropped]
    if lost:
        msg = (
            f"Stream {stream!r}: the policy drops key propert{'y' if len(lost) == 1 else 'ies'} "
            f"{', '.join(lost)}, so records could not be upserted; hash the key's class instead of dropping it."
        )
        raise MappingError(msg)
