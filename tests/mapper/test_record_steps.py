"""The compiled per-stream steps map a record by the policy and reject output of the wrong form."""

from __future__ import annotations

import typing as t

import msgspec
import pytest
from msgspec import UNSET

from mappers.pii.record_steps import DROPPED_PROBLEM, PSEUDONYM_PROBLEM, RecordSteps, compile_steps

PSEUDONYM = "a" * 64


class Record(msgspec.Struct):
    f0: t.Any = UNSET
    f1: t.Any = UNSET
    f2: t.Any = UNSET
    f3: t.Any = UNSET


class Failed(Exception):
    pass


def fail(problem: str, attribute: str) -> t.NoReturn:
    raise Failed(problem, attribute)


def steps(compute: t.Callable[[t.Any], str], cache: dict[t.Any, str] | None = None) -> RecordSteps:
    return RecordSteps(
        pseudonyms=[("f0", cache if cache is not None else {}, compute)],
        transforms=[("f1", lambda raw: "transformed")],
        dropped=["f2"],
        tokens=[],
        other_transformed=["f1"],
    )


def test_map_applies_every_step() -> None:
    map_record, _ = compile_steps(steps(lambda value: PSEUDONYM, {"cached": "b" * 64}), fail, None)
    first = Record(f0="new", f1=msgspec.Raw(b'"input"'), f2=msgspec.Raw(b'"secret"'), f3=msgspec.Raw(b"1"))
    second = Record(f0="cached")

    assert map_record(first) is True
    assert map_record(second) is True

    assert first == Record(f0=PSEUDONYM, f1="transformed", f2=UNSET, f3=msgspec.Raw(b"1"))
    assert second.f0 == "b" * 64


def test_map_returns_the_keep_decision() -> None:
    map_record, _ = compile_steps(steps(lambda value: PSEUDONYM), fail, lambda record: record.f3 != "erased")

    assert map_record(Record(f0="x", f3="kept")) is True
    assert map_record(Record(f0="x", f3="erased")) is False


def test_wrong_pseudonym_fails_closed() -> None:
    map_record, _ = compile_steps(steps(lambda value: "not a pseudonym"), fail, None)

    with pytest.raises(Failed) as raised:
        map_record(Record(f0="x"))

    assert raised.value.args == (PSEUDONYM_PROBLEM, "f0")


def test_verify_finds_kept_dropped_field() -> None:
    _, verify_record = compile_steps(steps(lambda value: PSEUDONYM), fail, None)

    with pytest.raises(Failed) as raised:
        verify_record(Record(f2=msgspec.Raw(b'"secret"')))

    assert raised.value.args == (DROPPED_PROBLEM, "f2")


def test_other_names_never_reach_source() -> None:
    unsafe = RecordSteps(pseudonyms=[], transforms=[], dropped=["f1 = 0\nimport os"], tokens=[], other_transformed=[])

    with pytest.raises(ValueError, match="Invalid record attribute"):
        compile_steps(unsafe, fail, None)
