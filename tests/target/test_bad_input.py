"""Bad input stops the target with an error naming the line and stream, and keeps what was committed.

Each case runs the real `target-warehouse` executable on input whose first
four lines load cleanly: a SCHEMA, two records that fill one batch, and a
STATE that is forwarded once they commit. Line 5 is the bad one. The run
must exit non-zero, name line 5 (and the stream where one is known), never
quote a record value, forward no STATE after the bad line, and leave the two
committed rows, their Parquet file and the ledger exactly as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .support import query, record_message, schema_message, singer_text, state_message, target_config, tenant_folder

EXECUTABLE = Path(sys.executable).parent / "target-warehouse"
MARKER = "bad-input-canary-51d2"
PROPERTIES = {"id": {"type": "string"}, "amount": {"type": "integer"}, "note": {"type": ["null", "string"]}}
GOOD_PREFIX = [
    schema_message("charges", PROPERTIES),
    record_message("charges", {"id": "ch_1", "amount": 100, "note": "first"}),
    record_message("charges", {"id": "ch_2", "amount": 200, "note": "second"}),
    state_message({"bookmarks": {"charges": {"position": 2}}}),
]
GOOD_AFTER = json.dumps(record_message("charges", {"id": "ch_4", "amount": 400, "note": "after"}))

CASES = {
    "truncated record": (
        '{"type":"RECORD","stream":"charges","record":{"id":"ch_3","note":"' + MARKER + '",',
        "Line 5, stream 'charges': the line is not valid JSON",
    ),
    "not JSON at all": (f"garbage {MARKER}", "Line 5: the line is not valid JSON"),
    "not an object": (json.dumps([MARKER]), "Line 5: the line is not a JSON object"),
    "record before its schema": (
        json.dumps(record_message("refunds", {"id": "re_1", "note": MARKER})),
        "Line 5, stream 'refunds': a RECORD arrived before the stream's SCHEMA message",
    ),
    "record not matching its schema": (
        json.dumps(record_message("charges", {"id": "ch_3", "amount": MARKER})),
        "Line 5, stream 'charges', field 'amount': expected an integer, found str",
    ),
    "record missing its key": (
        json.dumps(record_message("charges", {"amount": 300, "note": MARKER})),
        "Line 5, stream 'charges', field 'id': the value is missing or null",
    ),
    "unknown message type": (
        json.dumps({"type": "RECORDS", "stream": "charges", "record": {"note": MARKER}}),
        "Line 5: unknown Singer message type 'RECORDS'; expected one of SCHEMA, RECORD, STATE, ACTIVATE_VERSION",
    ),
    "message without a type": (
        json.dumps({"stream": "charges", "record": {"note": MARKER}}),
        "Line 5: unknown Singer message type a NoneType",
    ),
    "schema without properties": (
        json.dumps({"type": "SCHEMA", "stream": "refunds", "schema": {"type": "object"}, "key_properties": []}),
        "Line 5, stream 'refunds': the SCHEMA message needs a 'schema' object with 'properties'",
    ),
    "state without value": (json.dumps({"type": "STATE"}), "Line 5: the STATE message has no 'value'"),
}


def _run(tmp_path: Path, home: Path, text: str) -> subprocess.CompletedProcess[str]:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(target_config(home, batch_size_rows=2)))
    return subprocess.run(
        [str(EXECUTABLE), "--config", str(config_path)],
        input=text,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )


def _committed(home: Path) -> tuple[list[tuple], list[tuple], list[str]]:
    rows = query(home, "SELECT id, amount, note FROM stripe.charges ORDER BY id")
    ledger = query(home, "SELECT stream, rows, parquet_file FROM _spendlake.loads ORDER BY parquet_file")
    folder = tenant_folder(home) / "parquet"
    files = sorted(path.relative_to(tenant_folder(home)).as_posix() for path in folder.rglob("*") if path.is_file())
    return rows, ledger, files


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_line_stops_with_its_line_number(case: str, home: Path, tmp_path: Path) -> None:
    bad_line, expected = CASES[case]
    text = singer_text(GOOD_PREFIX, home) + bad_line + "\n" + GOOD_AFTER + "\n"

    result = _run(tmp_path, home, text)

    assert result.returncode == 1
    assert expected in result.stderr
    assert MARKER not in result.stderr
    assert "Traceback" not in result.stderr
    # Only the STATE whose records were committed before the bad line was forwarded.
    states = [json.loads(line)["bookmarks"] for line in result.stdout.splitlines()]
    assert states == [{"charges": {"position": 2}}]

    rows, ledger, files = _committed(home)
    assert rows == [("ch_1", 100, "first"), ("ch_2", 200, "second")]
    assert [(stream, count) for stream, count, _ in ledger] == [("charges", 2)]
    assert files == [ledger[0][2]]


def test_rerun_after_fix_loads_from_the_forwarded_state(home: Path, tmp_path: Path) -> None:
    bad_line, _ = CASES["record not matching its schema"]
    _run(tmp_path, home, singer_text(GOOD_PREFIX, home) + bad_line + "\n")

    fixed = [
        schema_message("charges", PROPERTIES),
        record_message("charges", {"id": "ch_3", "amount": 300, "note": "fixed"}),
        state_message({"bookmarks": {"charges": {"position": 3}}}),
    ]
    result = _run(tmp_path, home, singer_text(fixed, home))

    assert result.returncode == 0, result.stderr
    rows, ledger, files = _committed(home)
    assert rows == [("ch_1", 100, "first"), ("ch_2", 200, "second"), ("ch_3", 300, "fixed")]
    assert sorted(path for _, _, path in ledger) == files


@pytest.mark.parametrize(
    ("value_text", "expected"),
    [
        ('"12.50"', "field 'fee': expected a number, found str"),
        ("NaN", "the line is not valid JSON"),
        ("Infinity", "the line is not valid JSON"),
        ("1.005", "field 'fee': the number has more than 2 decimals"),
    ],
)
def test_exact_amount_takes_only_json_numbers(value_text: str, expected: str, home: Path, tmp_path: Path) -> None:
    properties = {"id": {"type": "string"}, "fee": {"type": ["null", "number"], "multipleOf": 0.01}}
    text = singer_text([schema_message("fees", properties)], home)
    text += '{"type":"RECORD","stream":"fees","record":{"id":"f1","fee":' + value_text + "}}\n"

    result = _run(tmp_path, home, text)

    assert result.returncode == 1
    assert "Line 2, stream 'fees'" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_number_beyond_double_range_rejected(home: Path, tmp_path: Path) -> None:
    properties = {"id": {"type": "string"}, "ratio": {"type": ["null", "number"]}}
    text = singer_text([schema_message("ratios", properties)], home)
    text += '{"type":"RECORD","stream":"ratios","record":{"id":"r1","ratio":1e400}}\n'

    result = _run(tmp_path, home, text)

    assert result.returncode == 1
    assert "Line 2, stream 'ratios', field 'ratio': the number is beyond the range of a DOUBLE column" in result.stderr
