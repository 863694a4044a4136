"""Per-stream mapping plans: what the mapper does to each field, decided once per SCHEMA.

A plan is built from the SCHEMA message's `x-pii` classes and the tenant's
policy. Everything that could let personal data through is rejected here,
before any record of the stream is read: an unknown class, an action the class
does not allow, a policy rule naming a field the stream lacks, a kept object
with personal sub-fields, and a key property the action would drop or make
non-unique.

A kept object or array of objects that declares sub-fields gets a shape, and
its values are pruned to the declared sub-fields (`mappers.pii.nested`).
"""

from __future__ import annotations

import dataclasses
import typing as t
from collections import Counter
from dataclasses import dataclass, field

from mappers.pii.actions import DROP, ENCRYPT, HMAC, KEEP, REDACT, output_schema
from mappers.pii.errors import MappingError
from mappers.pii.nested import Shape, free_form_paths, json_types, value_shape
from privacy.policy import PII_CLASSES, Policy, action_problem

__all__ = ["FieldPlan", "MappingError", "NameClassifier", "StreamPlan", "build_plan"]

#: Actions after which a key property could no longer identify its row.
_KEY_BREAKING_ACTIONS = frozenset({DROP, ENCRYPT, "truncate_ip", "generalize", REDACT})


@dataclass(frozen=True)
class FieldPlan:
    """The action for one field, its PII class and whether the class came from the name detector."""

    name: str
    action: str
    pii_class: str | None
    detected: bool = False
    #: For a kept object or array of objects, the declared sub-fields its values are pruned to.
    shape: Shape | None = None


@dataclass
class StreamPlan:
    """The field actions of one stream and the schema the mapper emits for it."""

    source: str
    stream: str
    fields: dict[str, FieldPlan]
    output_schema: dict[str, t.Any]
    key_properties: list[str]
    unclassified: frozenset[str] = frozenset()
    #: Kept objects that declare no sub-fields, so pass whole, as paths such as `meta` or `items[].extra`.
    free_form: tuple[str, ...] = ()
    unknown_fields: Counter[str] = field(default_factory=Counter)
    #: Undeclared sub-field values dropped from kept objects, per top-level field.
    dropped_subfields: Counter[str] = field(default_factory=Counter)

    @property
    def kept(self) -> tuple[str, ...]:
        """Fields copied unchanged."""
        return tuple(name for name, plan in self.fields.items() if plan.action == KEEP)

    @property
    def dropped(self) -> frozenset[str]:
        """Fields left out of every record."""
        return frozenset(name for name, plan in self.fields.items() if plan.action == DROP)

    def by_action(self) -> dict[str, list[str]]:
        """Return the field names of each action, sorted."""
        grouped: dict[str, list[str]] = {}
        for name, plan in sorted(self.fields.items()):
            grouped.setdefault(plan.action, []).append(name)
        return grouped


NameClassifier = t.Callable[[str], "str | None"]


def build_plan(
    stream: str,
    schema: dict[str, t.Any],
    key_properties: t.Sequence[str],
    policy: Policy,
    source: str = "",
    *,
    classify_name: NameClassifier | None = None,
) -> StreamPlan:
    """Decide each field's action from its `x-pii` class and the policy, and rewrite the schema to match."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        msg = f"Stream {stream!r}: the SCHEMA message has no 'properties' object, so no field can be classified."
        raise MappingError(msg)
    _check_rules_name_fields(policy, source, stream, properties)

    fields: dict[str, FieldPlan] = {}
    unclassified: set[str] = set()
    free_form: list[str] = []
    output_properties: dict[str, t.Any] = {}
    for name, prop in properties.items():
        plan = _decide(source, stream, name, prop, policy, classify_name)
        if plan.pii_class is None or plan.detected:
            unclassified.add(name)
        if plan.action == KEEP:
            _check_nested(stream, name, prop)
            plan = dataclasses.replace(plan, shape=value_shape(prop))
            free_form.extend(free_form_paths(prop, name))
        fields[name] = plan
        if plan.action == DROP:
            continue
        output_properties[name] = _emitted_schema(plan, prop if isinstance(prop, dict) else {})

    _check_keys(stream, key_properties, fields)
    output_schema_ = {**schema, "properties": output_properties}
    if "required" in schema:
        output_schema_["required"] = [name for name in schema["required"] if name in output_properties]

    return StreamPlan(
        source=source,
        stream=stream,
        fields=fields,
        output_schema=output_schema_,
        key_properties=list(key_properties),
        unclassified=frozenset(unclassified),
        free_form=tuple(free_form),
    )


def _check_rules_name_fields(policy: Policy, source: str, stream: str, properties: dict[str, t.Any]) -> None:
    """Stop when a field rule of this stream names a field the SCHEMA does not have: it would never apply."""
    rules = policy.streams.get(f"{source}.{stream}")
    missing = sorted(name for name in (rules.fields if rules else {}) if name not in properties)
    if missing:
        msg = (
            f"Stream {stream!r}: the policy {policy.origin} has rule(s) streams.{source}.{stream}.fields."
            f"{', '.join(missing)} for field(s) the SCHEMA does not have; fix the field name or remove the rule."
        )
        raise MappingError(msg)


def _decide(
    source: str,
    stream: str,
    name: str,
    prop: t.Any,
    policy: Policy,
    classify_name: NameClassifier | None,
) -> FieldPlan:
    pii_class = prop.get("x-pii") if isinstance(prop, dict) else None
    if pii_class is None:
        return _decide_unclassified(source, stream, name, prop, policy, classify_name)

    if pii_class not in PII_CLASSES:
        msg = (
            f"Stream {stream!r}: field {name!r} has an unknown x-pii class {pii_class!r}; "
            f"expected one of: {', '.join(PII_CLASSES)}."
        )
        raise MappingError(msg)
    action = policy.action_for(source, stream, name, pii_class)
    _check_action(stream, name, pii_class, action, prop, policy)
    return FieldPlan(name, action, pii_class)


def _decide_unclassified(
    source: str,
    stream: str,
    name: str,
    prop: t.Any,
    policy: Policy,
    classify_name: NameClassifier | None,
) -> FieldPlan:
    """Apply the unclassified mode: fail, drop (strict), or classify by name and value (detect)."""
    if policy.unclassified == "fail":
        msg = (
            f"Stream {stream!r}: field {name!r} has no x-pii class and the policy rejects unclassified fields "
            "(unclassified: fail); declare its class in the tap or set unclassified to strict or detect."
        )
        raise MappingError(msg)
    if policy.unclassified == "strict":
        return FieldPlan(name, DROP, None)

    pii_class = classify_name(name) if classify_name else None
    if pii_class is not None:
        action = policy.action_for(source, stream, name, pii_class)
    else:
        types = json_types(prop)
        if types & {"object", "array"}:
            # NOTE: nested values without a class are not inspected, so they are dropped.
            return FieldPlan(name, DROP, None)
        # Text is searched for e-mails, phones, IPs and card numbers; other scalars are kept.
        pii_class = "free_text" if not types or "string" in types else "none"
        rules = policy.streams.get(f"{source}.{stream}")
        action = rules.fields.get(name) if rules else None
        if action is None:
            action = REDACT if pii_class == "free_text" else KEEP
    _check_action(stream, name, pii_class, action, prop, policy)
    return FieldPlan(name, action, pii_class, detected=True)


def _check_action(stream: str, name: str, pii_class: str, action: str, prop: t.Any, policy: Policy) -> None:
    problem = action_problem(pii_class, action, name)
    if problem:
        msg = f"Stream {stream!r}: field {name!r} (class {pii_class}) cannot be mapped under the policy {policy.origin}: {problem}."
        raise MappingError(msg)
    types = json_types(prop)
    if action == HMAC and types and types <= {"object", "array", "null"}:
        msg = (
            f"Stream {stream!r}: field {name!r} is an object or array, which hmac cannot pseudonymise as one value; "
            "encrypt or drop it, or declare its scalar parts as fields of their own."
        )
        raise MappingError(msg)


def _emitted_schema(plan: FieldPlan, prop: dict[str, t.Any]) -> dict[str, t.Any]:
    emitted = output_schema(plan.action, prop, plan.pii_class)
    if plan.detected:
        emitted["x-pii"] = plan.pii_class
        emitted["x-pii-detected"] = True
    return emitted


def _check_nested(stream: str, name: str, prop: t.Any) -> None:
    """Reject a kept object or array whose sub-fields are classed as personal: they would pass whole."""
    references = sorted(_nested_references(prop))
    if references:
        msg = (
            f"Stream {stream!r}: field {name!r} is kept whole but its schema refers elsewhere ({', '.join(references)}), "
            "so its sub-fields cannot be checked for personal data; inline the referenced schemas in the tap's schema."
        )
        raise MappingError(msg)
    personal = sorted(_nested_personal_classes(prop))
    if personal:
        msg = (
            f"Stream {stream!r}: field {name!r} is kept whole but contains sub-fields classed "
            f"{', '.join(personal)}; declare those sub-fields as fields of their own in the tap."
        )
        raise MappingError(msg)


def _nested_personal_classes(prop: t.Any) -> set[str]:
    """Return the personal classes of every schema nested in `prop`, under any keyword that nests a schema."""
    found: set[str] = set()
    for child in _subschemas(prop):
        if child.get("x-pii") not in (None, "none"):
            found.add(str(child["x-pii"]))
        found |= _nested_personal_classes(child)
    return found


#: JSON Schema keywords whose value is one schema, a list of schemas, or a map of name to schema.
_ONE_SCHEMA = (
    "items",
    "additionalProperties",
    "additionalItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "contains",
    "contentSchema",
    "not",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "items", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "dependencies", "$defs", "definitions")
#: Keywords that point at a schema elsewhere, which `_check_nested` cannot follow.
_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


def _nested_references(prop: t.Any) -> set[str]:
    """Return the reference keywords used in `prop` or any schema nested in it."""
    found = {keyword for keyword in _REFERENCES if isinstance(prop, dict) and keyword in prop}
    for child in _subschemas(prop):
        found |= _nested_references(child)
    return found


def _subschemas(prop: t.Any) -> list[dict[str, t.Any]]:
    """Return the schemas directly nested in `prop` (sub-fields, array items, anyOf members and the like)."""
    if not isinstance(prop, dict):
        return []
    found = [prop[keyword] for keyword in _ONE_SCHEMA if isinstance(prop.get(keyword), dict)]
    for keyword in _SCHEMA_LISTS:
        if isinstance(prop.get(keyword), list):
            found += [member for member in prop[keyword] if isinstance(member, dict)]
    for keyword in _SCHEMA_MAPS:
        if isinstance(prop.get(keyword), dict):
            found += [member for member in prop[keyword].values() if isinstance(member, dict)]
    return found


def _check_keys(stream: str, key_properties: t.Sequence[str], fields: dict[str, FieldPlan]) -> None:
    lost = [key for key in key_properties if key in fields and fields[key].action == DROP]
    if lost:
        msg = (
            f"Stream {stream!r}: the policy drops key propert{'y' if len(lost) == 1 else 'ies'} "
            f"{', '.join(lost)}, so records could not be upserted; hash the key's class instead of dropping it."
        )
        raise MappingError(msg)

    changed = [f"{key} ({fields[key].action})" for key in key_properties if key in fields and fields[key].action in _KEY_BREAKING_ACTIONS]
    if changed:
        msg = (
            f"Stream {stream!r}: key propert{'y' if len(changed) == 1 else 'ies'} {', '.join(changed)} would no "
            "longer identify a row one to one (encryption draws a new nonce per value, the other actions merge "
            "values), so upserts would fail; keep or hmac key properties."
        )
        raise MappingError(msg)
