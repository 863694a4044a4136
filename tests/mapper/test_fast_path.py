"""The RECORD fast path: stream switches, raw values, odd lines, chunk boundaries and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mapper.support import TENANT, declared_schema, record, run_mapper

SCHEMA_A = {
    "type": "SCHEMA",
    "stream": "a",
    "key_properties": ["id"],
    "schema": {"properties": {
        "id": {"type": "string", "x-pii": "none"},
        "email": {"type": ["string", "null"], "x-pii": "email"},
        "amount": {"type": ["number", "null"], "x-pii": "none"},
        "name": {"type": ["string", "null"], "x-pii": "name"},
    }},
}
SCHEMA_B = {
    "type": "SCHEMA",
    "stream": "b",
    "key_properties": ["id"],
    "schema": {"properties": {"id": {"type": "string", "x-pii": "identifier"}, "note": {"type": ["string", "null"], "x-pii": "none"}}},
}


def test_interleaved_streams_each_mapped_by_own_plan() -> None:
    lines = [SCHEMA_A, SCHEMA_B]
    for index in range(3):
        lines.append(record("a", {"id": f"a{index}", "email": f"p{index}@example.com", "name": "Jane"}))
        lines.append(record("b", {"id": f"b{index}", "note": "n"}))

    run = run_mapper(lines)

    assert [message["stream"] for message in run.messages if message["type"] == "RECORD"] == ["a", "b"] * 3
    assert all(set(mapped) == {"id", "email"} and len(mapped["email"]) == 64 for mapped in run.records("a"))
    assert all(len(mapped["id"]) == 64 and mapped["note"] == "n" for mapped in run.records("b"))


def test_kept_numbers_stay_exact() -> None:
    line = '{"type": "RECORD", "stream": "a", "record": {"id": "x", "amount": 12345678901234567890.123456789012}}\n'

    run = run_mapper([SCHEMA_A, line])

    assert '"amount":12345678901234567890.123456789012' in run.text


def test_version_and_time_extracted_written() -> None:
    lines = [
        SCHEMA_A,
        record("a", {"id": "1"}, version=7, time_extracted="2026-11-02T08:00:00.5Z"),
        record("a", {"id": "2"}, time_extracted="2026-11-02T10:00:00+02:00"),
        record("a", {"id": "3"}, time_extracted="yesterday"),
    ]

    messages = [message for message in run_mapper(lines).messages if message["type"] == "RECORD"]

    assert (messages[0]["version"], messages[0]["time_extracted"]) == (7, "2026-11-02T08:00:00.5Z")
    assert messages[1]["time_extracted"] == "2026-11-02T08:00:00Z"
    assert "time_extracted" not in messages[2]
    assert list(messages[0]) == ["type", "stream", "record", "version", "time_extracted"]


def test_field_missing_from_schema_between_fast_records() -> None:
    lines = [
        SCHEMA_A,
        record("a", {"id": "1", "email": "x@example.com"}),
        record("a", {"id": "2", "email": "y@example.com", "surprise": "jane@example.org"}),
        record("a", {"id": "3"}),
    ]

    run = run_mapper(lines)

    assert [mapped["id"] for mapped in run.records("a")] == ["1", "2", "3"]
    assert "surprise" not in run.records("a")[1]
    assert "jane@example.org" not in run.text


def test_state_written_after_its_records() -> None:
    state = {"type": "STATE", "value": {"bookmarks": {"a": {"replication_key_value": "2026-11-01"}}}}
    lines = [SCHEMA_A, record("a", {"id": "1"}), state, record("a", {"id": "2"})]

    run = run_mapper(lines)

    assert [message["type"] for message in run.messages] == ["SCHEMA", "RECORD", "STATE", "RECORD"]


def test_escaped_emoji_kept_as_sent() -> None:
    line = '{"type": "RECORD", "stream": "b", "record": {"id": "1", "note": "ok \\ud83d\\ude00"}}\n'

    run = run_mapper([SCHEMA_B, line])

    assert run.records("b")[0]["note"] == "ok \U0001f600"


def test_blank_lines_skipped() -> None:
    run = run_mapper([SCHEMA_A, "\n", record("a", {"id": "1"}), "   \n"])

    assert run.records("a") == [{"id": "1"}]


def test_command_line_matches_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the installed executable on more than one read chunk; its output equals the in-process run's."""
    monkeypatch.chdir(tmp_path)
    customers = [
        record("customers", {"id": f"cus_{index:06d}", "email": f"person{index % 97}@example.com", "currency": "usd", "description": "x" * 200})
        for index in range(6_000)
    ]
    lines = [declared_schema("stripe", "customers"), *customers]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    assert len(text) > 1 << 20

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tenant": TENANT, "source": "stripe"}))
    executable = Path(sys.executable).parent / "mapper-pii"
    result = subprocess.run(
        [str(executable), "--config", str(config)], input=text.encode(), capture_output=True, check=False, cwd=tmp_path, env=dict(os.environ)
    )

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode() == run_mapper(lines, {"source": "stripe"}).text
    assert result.stdout.count(b'"type":"RECORD"') == 6_000


def test_new_schema_replaces_plan_mid_stream() -> None:
    renamed = {**SCHEMA_A, "schema": {"properties": {**SCHEMA_A["schema"]["properties"], "email": {"type": ["string", "null"], "x-pii": "name"}}}}
    lines = [SCHEMA_A, record("a", {"id": "1", "email": "x@example.com"}), renamed, record("a", {"id": "2", "email": "x@example.com"})]

    run = run_mapper(lines)

    first, second = run.records("a")
    assert len(first["email"]) == 64
    assert second == {"id": "2"}


def test_null_version_and_time_left_out() -> None:
    run = run_mapper([SCHEMA_A, record("a", {"id": "1"}, version=None, time_extracted=None)])

    [message] = [message for message in run.messages if message["type"] == "RECORD"]
    assert message == {"type": "RECORD", "stream": "a", "record": {"id": "1"}}
