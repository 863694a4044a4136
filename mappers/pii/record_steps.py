"""Compile a stream's mapping and verification steps into one Python function per stream.

The mapper runs the same few steps on every record of a stream: look up or
make the pseudonyms, apply the other transforms, unset dropped fields, then
check each field's output. Written as loops over field lists, those steps took
about 40% longer than written out field by field (2.3 against 1.6 us per
Stripe-like charge, in-process timing), and the record loop is the mapper's
hot path. So, as `dataclasses` does for `__init__`, the steps are written out
as source text and compiled once per SCHEMA. The text contains only the
Struct's own attribute names (`f0`, `f1`, ...), which are checked, and names
of the values it is given.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec
from msgspec import UNSET

PSEUDONYM_LENGTH = 64
TOKEN_PREFIX = "spl1e."

DROPPED_PROBLEM = "still contains a field the policy drops"
PSEUDONYM_PROBLEM = "contains a value that is not a pseudonym in an hmac field"
TOKEN_PROBLEM = "contains a value that is not a field token in an encrypt field"
INPUT_PROBLEM = "contains an input value in a field the policy transforms"

_ATTRIBUTE = re.compile(r"f\d+")


@dataclass(frozen=True)
class RecordSteps:
    """The action on each field of a stream's record, by Struct attribute."""

    #: (attribute, cache of value to pseudonym, function that computes and caches a pseudonym)
    pseudonyms: Sequence[tuple[str, dict[t.Any, str], Callable[[t.Any], str]]]
    #: (attribute, transform of the raw value) for every other transformed field
    transforms: Sequence[tuple[str, Callable[[t.Any], t.Any]]]
    dropped: Sequence[str]
    #: Fields that contain field tokens (encrypt). The other transformed fields must only not be raw input.
    tokens: Sequence[str]
    other_transformed: Sequence[str]


def compile_steps(
    steps: RecordSteps,
    fail: Callable[[str, str], t.NoReturn],
    keep: Callable[[t.Any], bool] | None,
) -> tuple[Callable[[t.Any], bool], Callable[[t.Any], None]]:
    """Return (map, verify) for records of one stream.

    `map` transforms a record in place, verifies it and returns `keep(record)`
    (True when `keep` is None). `verify` raises through `fail(problem,
    attribute)` unless each field contains its action's output.
    """
    names: dict[str, t.Any] = {"UNSET": UNSET, "Raw": msgspec.Raw, "fail": fail, "keep": keep, "TOKEN_PREFIX": TOKEN_PREFIX}
    map_lines = ["def map_record(record):"]
    for index, (attribute, cache, compute) in enumerate(steps.pseudonyms):
        names[f"cache{index}"], names[f"compute{index}"] = cache, compute
        map_lines += [
            f"    value = record.{_checked(attribute)}",
            "    if value is not UNSET and value is not None:",
            f"        found = cache{index}.get(value)",
            f"        record.{attribute} = found if found is not None else compute{index}(value)",
        ]
    for index, (attribute, transform) in enumerate(steps.transforms):
        names[f"transform{index}"] = transform
        map_lines += [
            f"    value = record.{_checked(attribute)}",
            "    if value is not UNSET:",
            f"        record.{attribute} = transform{index}(value)",
        ]
    map_lines += [f"    record.{_checked(attribute)} = UNSET" for attribute in steps.dropped]

    checks = _check_lines(steps, [attribute for attribute, _, _ in steps.pseudonyms])
    map_lines += [*checks, "    return True" if keep is None else "    return keep(record)"]
    verify_lines = ["def verify_record(record):", *checks, "    return None"]

    exec("\n".join([*map_lines, *verify_lines]), names)  # noqa: S102 - the text is built above from checked names
    return names["map_record"], names["verify_record"]


def _check_lines(steps: RecordSteps, pseudonyms: Sequence[str]) -> list[str]:
    lines: list[str] = []
    for attribute in steps.dropped:
        lines += [f"    if record.{_checked(attribute)} is not UNSET:", f"        fail({DROPPED_PROBLEM!r}, {attribute!r})"]
    for attribute in pseudonyms:
        lines += [
            f"    value = record.{_checked(attribute)}",
            "    if value is not UNSET and value is not None and "
            f"(value.__class__ is not str or len(value) != {PSEUDONYM_LENGTH}):",
            f"        fail({PSEUDONYM_PROBLEM!r}, {attribute!r})",
        ]
    for attribute in steps.tokens:
        lines += [
            f"    value = record.{_checked(attribute)}",
            "    if value is not UNSET and value is not None and "
            "(value.__class__ is not str or not value.startswith(TOKEN_PREFIX)):",
            f"        fail({TOKEN_PROBLEM!r}, {attribute!r})",
        ]
    for attribute in steps.other_transformed:
        lines += [f"    if isinstance(record.{_checked(attribute)}, Raw):", f"        fail({INPUT_PROBLEM!r}, {attribute!r})"]
    return lines


def _checked(attribute: str) -> str:
    """Return `attribute` if it is one of the Struct's generated names; anything else never reaches the source text."""
    if not _ATTRIBUTE.fullmatch(attribute):
        msg = f"Invalid record attribute {attribute!r}: expected f followed by digits."
        raise ValueError(msg)
    return attribute
