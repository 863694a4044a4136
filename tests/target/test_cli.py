"""The `target-warehouse` console script, run as a subprocess the way Meltano runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from spendlake.tenant_lock import TenantLock

from .support import TENANT, query, record_message, schema_message, singer_text, state_message, target_config

MARKER = "cli-canary-0c4f8e"
EXECUTABLE = Path(sys.executable).parent / "target-warehouse"
PROPERTIES = {"id": {"type": "integer"}, "email_hash": {"type": "string", "x-pii-applied": "keep"}}


def _run(tmp_path: Path, config: dict, input_text: str) -> subprocess.CompletedProcess[str]:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    input_path = tmp_path / "input.jsonl"
    input_path.write_text(input_text)
    return subprocess.run(
        [str(EXECUTABLE), "--config", str(config_path), "--input", str(input_path)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )


def test_cli_loads_and_writes_state(home: Path, tmp_path: Path) -> None:
    messages = [
        schema_message("customers", PROPERTIES),
        record_message("customers", {"id": 1, "email_hash": "h1"}),
        state_message({"bookmarks": {"customers": {"replication_key_value": "2024-01-01"}}}),
    ]

    result = _run(tmp_path, target_config(home), singer_text(messages, home))

    assert result.returncode == 0, result.stderr
    [state] = [json.loads(line) for line in result.stdout.splitlines()]
    assert state["bookmarks"] == {"customers": {"replication_key_value": "2024-01-01"}}
    assert state["spendlake_warehouse"]["warehouse_id"] == query(home, "SELECT id FROM _spendlake.warehouse")[0][0]
    assert query(home, "SELECT id, email_hash FROM stripe.customers") == [(1, "h1")]


def test_cli_error_hides_record_value(home: Path, tmp_path: Path) -> None:
    messages = [
        schema_message("customers", PROPERTIES),
        record_message("customers", {"id": MARKER, "email_hash": "h1"}),
        state_message({"bookmarks": {}}),
    ]

    result = _run(tmp_path, target_config(home), singer_text(messages, home))

    assert result.returncode != 0
    assert "Line 2, stream 'customers', field 'id': expected an integer, found str" in result.stderr
    assert "Traceback" not in result.stderr
    assert MARKER not in result.stderr
    assert result.stdout == ""


def test_cli_invalid_json_hides_line(home: Path, tmp_path: Path) -> None:
    text = singer_text([schema_message("customers", PROPERTIES)], home)
    text += '{"type": "RECORD", "stream": "customers", "record": {"id": 1, "email_hash": "' + MARKER + '"\n'

    result = _run(tmp_path, target_config(home), text)

    assert result.returncode != 0
    assert "Line 2, stream 'customers': the line is not valid JSON" in result.stderr
    assert MARKER not in result.stderr


def test_cli_record_without_stream_hides_record(home: Path, tmp_path: Path) -> None:
    text = singer_text([schema_message("customers", PROPERTIES), {"type": "RECORD", "record": {"email_hash": MARKER}}], home)

    result = _run(tmp_path, target_config(home), text)

    assert result.returncode != 0
    assert "Line 2: the RECORD message has no 'stream' name" in result.stderr
    assert MARKER not in result.stderr


def test_cli_rejects_invalid_names(home: Path, tmp_path: Path) -> None:
    result = _run(tmp_path, target_config(home, tenant="Acme Corp", source="../stripe"), "")

    assert result.returncode == 1
    assert "Setting 'tenant': Invalid tenant id" in result.stderr
    assert "Setting 'source': invalid source name" in result.stderr
    assert not home.exists()


def test_cli_rejects_batch_messages(home: Path, tmp_path: Path) -> None:
    batch = {
        "type": "BATCH",
        "stream": "customers",
        "encoding": {"format": "jsonl", "compression": "none"},
        "manifest": [f"file://{tmp_path / 'batch.jsonl'}"],
    }
    (tmp_path / "batch.jsonl").write_text(json.dumps({"id": 1, "email_hash": MARKER}) + "\n")

    result = _run(tmp_path, target_config(home), singer_text([schema_message("customers", PROPERTIES), batch], home))

    assert result.returncode != 0
    assert "BATCH messages are not accepted, because batch files skip mapper-pii" in result.stderr
    assert query(home, "SELECT count(*) FROM stripe.customers") == [(0,)]


def test_cli_rejects_batch_size_of_zero(home: Path, tmp_path: Path) -> None:
    result = _run(tmp_path, target_config(home, batch_size_rows=0, max_batch_age_seconds=-1.5), "")

    assert result.returncode == 1
    assert "Setting 'batch_size_rows': must be a positive number" in result.stderr
    assert "Setting 'max_batch_age_seconds': must be a positive number" in result.stderr


def test_cli_accepts_fractional_batch_age(home: Path, tmp_path: Path) -> None:
    result = _run(tmp_path, target_config(home, max_batch_age_seconds=0.5), "")

    assert result.returncode == 0, result.stderr


def test_cli_busy_tenant_one_line(home: Path, tmp_path: Path) -> None:
    messages = [schema_message("customers", PROPERTIES), record_message("customers", {"id": 1, "email_hash": "h1"})]
    lock = TenantLock(home, TENANT, "the test")

    try:
        result = _run(tmp_path, target_config(home), singer_text(messages, home))
    finally:
        lock.release()

    assert result.returncode == 1
    assert f"Tenant '{TENANT}' is busy" in result.stderr
    assert "Traceback" not in result.stderr
