"""STATE messages leave the target only after the records read before them are committed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from targets.warehouse import TargetWarehouse
from spendlake.state_marker import StateMismatchError
from targets.warehouse.errors import RecordTypeError
from .support import (
    query,
    record_message,
    run_target,
    run_target_expecting_error,
    schema_message,
    singer_text,
    state_message,
    target_config,
)

PROPERTIES = {"id": {"type": "integer"}, "clicks": {"type": ["null", "integer"]}}


def clicks(number: int, value: object = 1) -> dict:
    return record_message("ads", {"id": number, "clicks": value})


def test_state_follows_committed_records(home: Path) -> None:
    states = run_target(
        home,
        [
            schema_message("ads", PROPERTIES),
            clicks(1),
            state_message({"bookmarks": {"ads": 1}}),
            clicks(2),
        ],
    )

    assert [state["bookmarks"] for state in states] == [{"ads": 1}]
    assert query(home, "SELECT id FROM stripe.ads ORDER BY id") == [(1,), (2,)]


def test_each_state_written_once_its_records_commit(home: Path) -> None:
    states = run_target(
        home,
        [
            schema_message("ads", PROPERTIES),
            clicks(1),
            state_message({"bookmarks": {"ads": 1}}),
            clicks(2),
            state_message({"bookmarks": {"ads": 2}}),
        ],
        batch_size_rows=1,
    )

    # Batches commit on a background thread, so the first STATE is forwarded only if its batch
    # finished before the second arrived; the last one is always forwarded, once, at the end.
    bookmarks = [state["bookmarks"] for state in states]
    assert bookmarks in ([{"ads": 1}, {"ads": 2}], [{"ads": 2}])
    assert query(home, "SELECT count(*) FROM _spendlake.loads") == [(2,)]


def _listen_and_fail(home: Path, messages: list[dict], **config: object) -> None:
    target = TargetWarehouse(config=target_config(home, **config))
    try:
        with pytest.raises(RecordTypeError, match="field 'clicks'"):
            target.listen(file_input=io.StringIO(singer_text(messages, home)))
    finally:
        target.close()


def test_no_state_when_batch_fails(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages = [
        schema_message("ads", PROPERTIES),
        clicks(1),
        state_message({"bookmarks": {"ads": 1}}),
        clicks(2, value="not a number"),
    ]

    _listen_and_fail(home, messages)

    assert capsys.readouterr().out == ""
    assert query(home, "SELECT count(*) FROM stripe.ads") == [(0,)]


def test_committed_rows_kept_when_later_batch_fails(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages = [
        schema_message("ads", PROPERTIES),
        clicks(1),
        state_message({"bookmarks": {"ads": 1}}),
        clicks(2, value="not a number"),
    ]

    _listen_and_fail(home, messages, batch_size_rows=1)

    # The first record was committed as a batch of its own, so the STATE after it was forwarded;
    # a rerun resumes from that bookmark, and nothing committed before it is lost.
    assert [json.loads(line)["bookmarks"] for line in capsys.readouterr().out.splitlines()] == [{"ads": 1}]
    assert query(home, "SELECT id FROM stripe.ads") == [(1,)]


def test_state_carries_the_warehouse_id(home: Path) -> None:
    states = run_target(home, [schema_message("ads", PROPERTIES), clicks(1), state_message({"bookmarks": {"ads": 1}})])

    [warehouse_id] = query(home, "SELECT id FROM _spendlake.warehouse")[0]
    assert states == [{"bookmarks": {"ads": 1}, "spendlake_warehouse": {"warehouse_id": warehouse_id}}]
    assert len(warehouse_id) == 32


def test_state_of_another_warehouse_is_rejected(home: Path) -> None:
    run_target(home, [schema_message("ads", PROPERTIES), clicks(1)])
    foreign = {"bookmarks": {"ads": 9}, "spendlake_warehouse": {"warehouse_id": "0" * 32}}

    error = run_target_expecting_error(home, [schema_message("ads", PROPERTIES), clicks(2), state_message(foreign)])

    assert isinstance(error, StateMismatchError)
    assert f"saved for warehouse {'0' * 32} of tenant" in str(error)
    assert "Clear the pipeline state" in str(error)


def test_state_of_this_warehouse_passes(home: Path) -> None:
    [first] = run_target(home, [schema_message("ads", PROPERTIES), clicks(1), state_message({"bookmarks": {"ads": 1}})])

    states = run_target(home, [schema_message("ads", PROPERTIES), clicks(2), state_message({**first, "bookmarks": {"ads": 2}})])

    assert states == [{**first, "bookmarks": {"ads": 2}}]


def test_old_batch_commits_while_input_is_idle(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(target_config(home, max_batch_age_seconds=0.2)))
    executable = Path(sys.executable).parent / "target-warehouse"
    process = subprocess.Popen([str(executable), "--config", str(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    first = singer_text([schema_message("ads", PROPERTIES), clicks(1), state_message({"bookmarks": {"ads": 1}})], home)

    process.stdin.write(first.encode())
    process.stdin.flush()
    forwarded = process.stdout.readline()  # Arrives while stdin stays open and silent.
    process.stdin.close()
    process.wait(timeout=60)

    assert json.loads(forwarded)["bookmarks"] == {"ads": 1}
    assert process.returncode == 0
    assert query(home, "SELECT id FROM stripe.ads") == [(1,)]
