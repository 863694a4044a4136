"""Read a tenant's policy YAML and validate it, collecting every problem with its key path.

The format is described in `privacy.policy`. Each problem reads
`<file>: <key path>: <what is wrong and what to use>`. Messages quote policy
keys and actions, never the text of the processing section, which may name
people.
"""

from __future__ import annotations

import difflib
import re
import typing as t
from pathlib import Path

import phonenumbers
import yaml

from privacy.policy import (
    ACTIONS,
    DEFAULT_ACTIONS,
    DEFAULT_PHONE_REGION,
    DEFAULT_UNCLASSIFIED,
    DURATION_UNITS,
    PII_CLASSES,
    UNCLASSIFIED_MODES,
    Duration,
    Policy,
    PolicyError,
    Retention,
    StreamRules,
    action_problem,
)
from privacy.source_fields import DeclaredSource, declared_source
from taps.engine.declaration import DeclarationError

POLICY_VERSION = 1

TOP_LEVEL_KEYS = ("version", "tenant", "unclassified", "phone_region", "classes", "streams", "retention", "processing")
STREAM_KEYS = ("classes", "fields")
RETENTION_KEYS = ("default", "streams")
RETENTION_STREAM_KEYS = ("keep", "date_field")
PROCESSING_KEYS = ("controller", "processor", "purposes", "recipients", "transfers", "security_measures")
PARTY_SECTIONS = ("controller", "processor")
LIST_SECTIONS = ("purposes", "recipients", "security_measures")

_DURATION = re.compile(r"^\s*(\d+)\s+([a-z]+?)s?\s*$")
_STREAM_KEY = re.compile(r"^([a-z][a-z0-9_]*)\.([^.\s][^\s]*)$")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a key written twice in one mapping, where YAML would keep the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[t.Any, t.Any]:
        seen: set[t.Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice in one mapping; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_policy_file(path: Path, tenant: str, *, check_declarations: bool = True) -> Policy:
    """Read, validate and build the policy in `path` for the run's `tenant`."""
    label = str(path)
    document = _read_yaml(path, label)
    return parse_policy(document, tenant, label=label, check_declarations=check_declarations)


def _read_yaml(path: Path, label: str) -> t.Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(label, [f"{label}: file not found; create it or set policy_file to the tenant's policy"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(label, [f"{label}: reading failed ({type(error).__name__}); check its permissions and encoding"]) from None

    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown place)"
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise PolicyError(label, [f"{label}: {where}: {problem}"]) from None


def parse_policy(document: t.Any, tenant: str, *, label: str, check_declarations: bool = True) -> Policy:
    """Validate a parsed policy document and build the policy; raise `PolicyError` listing every problem."""
    problems: list[str] = []
    if not isinstance(document, dict):
        raise PolicyError(label, [f"{label}: (top level): expected a mapping of policy sections, got {_kind(document)}"])

    _check_keys(document, TOP_LEVEL_KEYS, label, problems, top_level=True)
    _check_header(document, tenant, label, problems)
    lookup = _declaration_lookup(label, problems) if check_declarations else _no_declaration

    unclassified = DEFAULT_UNCLASSIFIED
    if "unclassified" in document:
        unclassified = check_unclassified(document["unclassified"], f"{label}: unclassified", problems)
    phone_region = DEFAULT_PHONE_REGION
    if "phone_region" in document:
        phone_region = check_phone_region(document["phone_region"], f"{label}: phone_region", problems)

    classes = dict(DEFAULT_ACTIONS)
    class_rules = _mapping(document.get("classes"), f"{label}: classes", problems)
    classes.update(check_class_actions(class_rules, f"{label}: classes", problems))
    streams = _stream_rules(_mapping(document.get("streams"), f"{label}: streams", problems), label, lookup, problems)
    default, retention = _retention(_mapping(document.get("retention"), f"{label}: retention", problems), label, lookup, problems)
    processing = _processing(_mapping(document.get("processing"), f"{label}: processing", problems), label, problems)

    if problems:
        raise PolicyError(label, problems)
    return Policy(
        tenant=tenant,
        origin=label,
        unclassified=unclassified,
        phone_region=phone_region,
        classes=classes,
        streams=streams,
        retention_default=default,
        retention_streams=retention,
        processing=processing,
    )


def _no_declaration(source: str) -> DeclaredSource | None:
    return None


def _declaration_lookup(label: str, problems: list[str]) -> t.Callable[[str], DeclaredSource | None]:
    """Return a declaration lookup that records an invalid declaration as a problem, once per source."""
    reported: set[str] = set()

    def lookup(source: str) -> DeclaredSource | None:
        try:
            return declared_source(source)
        except DeclarationError as error:
            if source not in reported:
                reported.add(source)
                problems.append(
                    f"{label}: the rules of source {source!r} cannot be checked, because its declaration is invalid "
                    f"({error.problems[0]}); fix the declaration first"
                )
            return None

    return lookup


def _check_header(document: dict[str, t.Any], tenant: str, label: str, problems: list[str]) -> None:
    version = document.get("version")
    if version is None:
        problems.append(f"{label}: version: missing; write 'version: {POLICY_VERSION}' as the first line")
    elif version != POLICY_VERSION or isinstance(version, bool):
        problems.append(f"{label}: version: unsupported version {version!r}; this spendlake reads version {POLICY_VERSION}")

    named = document.get("tenant")
    if named is None:
        problems.append(f"{label}: tenant: missing; write 'tenant: {tenant}' so the file cannot be used for another tenant")
    elif named != tenant:
        problems.append(
            f"{label}: tenant: the file is for tenant {named!r} but the run is for tenant {tenant!r}; "
            f"use the tenant's own policy file"
        )


def check_unclassified(value: t.Any, place: str, problems: list[str]) -> str:
    """Return a valid unclassified mode, or record the problem and return the default."""
    if value in UNCLASSIFIED_MODES:
        return t.cast("str", value)
    problems.append(f"{place}: unknown mode {value!r}; use one of: {', '.join(UNCLASSIFIED_MODES)}")
    return DEFAULT_UNCLASSIFIED


def check_phone_region(value: t.Any, place: str, problems: list[str]) -> str:
    """Return a region that phonenumbers supports, upper-cased, or record the problem and return the default."""
    if isinstance(value, bool):
        problems.append(f"{place}: YAML read the region as {str(value).lower()}; write it in quotes, such as 'NO'")
        return DEFAULT_PHONE_REGION
    if isinstance(value, str) and value.upper() in phonenumbers.SUPPORTED_REGIONS:
        return value.upper()
    problems.append(f"{place}: {value!r} is not a region phonenumbers knows; use an ISO 3166-1 alpha-2 code such as US, GB or DE")
    return DEFAULT_PHONE_REGION


def check_class_actions(section: t.Mapping[str, t.Any], place: str, problems: list[str]) -> dict[str, str]:
    """Return the valid class -> action entries of `section`, recording a problem for each other entry."""
    valid: dict[str, str] = {}
    for pii_class, action in section.items():
        where = f"{place}.{pii_class}"
        if pii_class not in PII_CLASSES:
            problems.append(f"{where}: unknown PII class{_suggest(pii_class, PII_CLASSES)}; use one of: {', '.join(PII_CLASSES)}")
            continue
        problem = _action_type_problem(action) or action_problem(pii_class, action)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            valid[pii_class] = action
    return valid


def _stream_rules(
    section: t.Mapping[str, t.Any],
    label: str,
    lookup: t.Callable[[str], DeclaredSource | None],
    problems: list[str],
) -> dict[str, StreamRules]:
    rules: dict[str, StreamRules] = {}
    for key, body in section.items():
        place = f"{label}: streams.{key}"
        names = _stream_key(key, place, lookup, problems)
        if names is None:
            continue
        if not isinstance(body, dict):
            problems.append(f"{place}: expected a mapping with 'classes' and/or 'fields', got {_kind(body)}")
            continue
        _check_keys(body, STREAM_KEYS, place, problems)

        source, stream = names
        declared = _declared_fields(lookup, source, stream)
        classes = check_class_actions(_mapping(body.get("classes"), f"{place}.classes", problems), f"{place}.classes", problems)
        fields = _field_actions(_mapping(body.get("fields"), f"{place}.fields", problems), f"{place}.fields", declared, problems)
        rules[key] = StreamRules(source=source, stream=stream, classes=classes, fields=fields)
    return rules


def _stream_key(
    key: t.Any,
    place: str,
    lookup: t.Callable[[str], DeclaredSource | None],
    problems: list[str],
) -> tuple[str, str] | None:
    """Split `<source>.<stream>` and check the stream exists where the source's declaration is known."""
    match = _STREAM_KEY.match(key) if isinstance(key, str) else None
    if match is None:
        problems.append(f"{place}: expected '<source>.<stream>', such as stripe.customers")
        return None

    source, stream = match.groups()
    declared = lookup(source)
    if declared is not None and not declared.may_have_stream(stream):
        known = sorted(declared.streams)
        problems.append(
            f"{place}: source {source!r} has no stream {stream!r}{_suggest(stream, known)}; "
            f"its streams are: {', '.join(known)}"
        )
        return None
    return source, stream


def _declared_fields(lookup: t.Callable[[str], DeclaredSource | None], source: str, stream: str) -> dict[str, str] | None:
    declared = lookup(source)
    if declared is None:
        return None
    return declared.streams.get(stream)


def _field_actions(
    section: t.Mapping[str, t.Any],
    place: str,
    declared: dict[str, str] | None,
    problems: list[str],
) -> dict[str, str]:
    """Return the valid field -> action rules, checked against the declared fields and classes when known."""
    valid: dict[str, str] = {}
    for name, action in section.items():
        where = f"{place}.{name}"
        problem = _action_type_problem(action)
        if problem is None and action not in ACTIONS:
            problem = f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}"
        if problem is None and declared is not None:
            problem = _declared_field_problem(str(name), action, declared)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            valid[str(name)] = action
    return valid


def _declared_field_problem(name: str, action: str, declared: dict[str, str]) -> str | None:
    if name not in declared:
        return f"the stream has no field {name!r}{_suggest(name, declared)}; check the spelling or remove the rule"
    problem = action_problem(declared[name], action, name)
    return f"field {name!r} is classed {declared[name]!r}: {problem}" if problem else None


def _retention(
    section: t.Mapping[str, t.Any],
    label: str,
    lookup: t.Callable[[str], DeclaredSource | None],
    problems: list[str],
) -> tuple[Retention | None, dict[str, Retention]]:
    _check_keys(section, RETENTION_KEYS, f"{label}: retention", problems)
    default = None
    if section.get("default") is not None:
        duration = parse_duration(section["default"], f"{label}: retention.default", problems)
        default = Retention(duration) if duration else None

    streams: dict[str, Retention] = {}
    for key, body in _mapping(section.get("streams"), f"{label}: retention.streams", problems).items():
        place = f"{label}: retention.streams.{key}"
        names = _stream_key(key, place, lookup, problems)
        retention = _stream_retention(body, place, problems)
        if names is None or retention is None:
            continue
        declared = _declared_fields(lookup, *names)
        if retention.date_field and declared is not None and retention.date_field not in declared:
            problems.append(
                f"{place}.date_field: the stream has no field {retention.date_field!r}"
                f"{_suggest(retention.date_field, declared)}; name a date or date-time field of the stream"
            )
            continue
        streams[key] = retention
    return default, streams


def _stream_retention(body: t.Any, place: str, problems: list[str]) -> Retention | None:
    if not isinstance(body, dict):
        duration = parse_duration(body, place, problems)
        return Retention(duration) if duration else None

    _check_keys(body, RETENTION_STREAM_KEYS, place, problems)
    if "keep" not in body:
        problems.append(f"{place}.keep: missing; write how long rows are kept, such as '2 years'")
        return None
    duration = parse_duration(body["keep"], f"{place}.keep", problems)
    date_field = body.get("date_field")
    if date_field is not None and (not isinstance(date_field, str) or not date_field):
        problems.append(f"{place}.date_field: expected a field name, got {_kind(date_field)}")
        return None
    return Retention(duration, date_field) if duration else None


def parse_duration(value: t.Any, place: str, problems: list[str]) -> Duration | None:
    """Parse '<n> day(s)|week(s)|month(s)|year(s)', recording a problem when it does not parse."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    unit = match.group(2) if match else None
    if match is None or unit not in DURATION_UNITS:
        problems.append(
            f"{place}: invalid duration {value!r}; write a whole number and a unit, such as '30 days', '25 months' or '10 years'"
        )
        return None
    count = int(match.group(1))
    if count < 1:
        problems.append(f"{place}: invalid duration {value!r}; keep rows for at least 1 {unit}, or drop the stream's fields instead")
        return None
    return Duration(count, t.cast("str", unit))


def _processing(section: t.Mapping[str, t.Any], label: str, problems: list[str]) -> dict[str, t.Any]:
    """Check the shape of the record-of-processing facts; their text is free-form and never quoted."""
    _check_keys(section, PROCESSING_KEYS, f"{label}: processing", problems)
    valid: dict[str, t.Any] = {}
    for name, value in section.items():
        place = f"{label}: processing.{name}"
        if name in PARTY_SECTIONS:
            problem = _party_problem(value)
        elif name in LIST_SECTIONS:
            problem = None if _is_text_list(value) else f"expected a list of texts, got {_kind(value)}"
        elif name == "transfers":
            problem = None if _is_text(value) or _is_text_list(value) else f"expected a text or a list of texts, got {_kind(value)}"
        else:
            continue
        if problem:
            problems.append(f"{place}: {problem}")
        else:
            valid[name] = value
    return valid


def _party_problem(value: t.Any) -> str | None:
    if not isinstance(value, dict):
        return f"expected a mapping such as {{name: ..., contact: ...}}, got {_kind(value)}"
    if not _is_text(value.get("name")):
        return "'name' is missing; give the organisation's name"
    wrong = sorted(str(key) for key, item in value.items() if not _is_text(item))
    if wrong:
        return f"expected text values, but {', '.join(wrong)} is not text"
    return None


def _is_text(value: t.Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_text_list(value: t.Any) -> bool:
    return isinstance(value, list) and all(_is_text(item) for item in value)


def _mapping(value: t.Any, place: str, problems: list[str]) -> t.Mapping[str, t.Any]:
    """Return `value` when it is a mapping (empty when absent), recording a problem otherwise."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    problems.append(f"{place}: expected a mapping, got {_kind(value)}")
    return {}


def _check_keys(
    section: t.Mapping[str, t.Any],
    allowed: tuple[str, ...],
    place: str,
    problems: list[str],
    *,
    top_level: bool = False,
) -> None:
    """Record each key of `section` that is not allowed; `place` is the file name for the top level."""
    separator = ": " if top_level else "."
    for key in section:
        if key not in allowed:
            problems.append(f"{place}{separator}{key}: unknown key{_suggest(key, allowed)}; use one of: {', '.join(allowed)}")


def _action_type_problem(action: t.Any) -> str | None:
    if isinstance(action, bool):
        return f"YAML read the action as {str(action).lower()}; write an action such as drop (quote words like 'off')"
    if not isinstance(action, str):
        return f"expected an action, got {_kind(action)}; use one of: {', '.join(ACTIONS)}"
    return None


def _suggest(value: t.Any, choices: t.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: t.Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    names = {dict: "a mapping", list: "a list", str: "a text", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")
