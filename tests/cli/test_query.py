"""`spendlake query`: read-only SQL on the encrypted warehouse, in three formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from spendlake.cli import main
from tests.target.support import record_message, run_target, schema_message

PROPERTIES = {
    "id": {"type": "string"},
    "amount": {"type": ["integer", "null"]},
    "created": {"type": ["string", "null"], "format": "date-time"},
}


def load_rows(home: Path) -> None:
    run_target(
        home,
        [
            schema_message("charges", PROPERTIES),
            record_message("charges", {"id": "ch_1", "amount": 1200, "created": "2026-11-01T10:00:00Z"}),
            record_message("charges", {"id": "ch_2", "amount": 800, "created": "2026-11-02T10:00:00Z"}),
        ],
    )


def query(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["query", *args, "--tenant", "acme", "--home", str(home)])
    return result.exit_code, result.output


def test_csv_output(spendlake_env: Path) -> None:
    load_rows(spendlake_env)

    code, output = query(spendlake_env, "select id, amount from stripe.charges order by id", "--format", "csv")

    assert code == 0
    assert output.splitlines() == ["id,amount", "ch_1,1200", "ch_2,800"]


def test_json_output(spendlake_env: Path) -> None:
    load_rows(spendlake_env)

    code, output = query(spendlake_env, "select id, created from stripe.charges order by id limit 1", "--format", "json")

    assert code == 0
    rows = json.loads(output)
    assert rows[0]["id"] == "ch_1"
    assert rows[0]["created"].startswith("2026-11-01")


def test_table_output(spendlake_env: Path) -> None:
    load_rows(spendlake_env)

    code, output = query(spendlake_env, "select sum(amount) as total from stripe.charges")

    assert code == 0
    assert "total" in output
    assert "2000" in output


def test_writes_rejected(spendlake_env: Path) -> None:
    load_rows(spendlake_env)

    code, output = query(spendlake_env, "delete from stripe.charges")

    assert code == 1
    assert "The query failed" in output
    assert "read-only" in output.lower()


def test_copy_to_file_rejected(spendlake_env: Path, tmp_path: Path) -> None:
    load_rows(spendlake_env)
    target = tmp_path / "leak.csv"

    code, output = query(spendlake_env, f"copy (select * from stripe.charges) to '{target}' (format csv)")

    assert code == 1
    assert "The query failed" in output
    assert not target.exists()


def test_unknown_tenant_explains(spendlake_env: Path) -> None:
    code, output = query(spendlake_env, "select 1")

    assert code == 1
    assert "Tenant 'acme' has no warehouse" in output
    assert not (spendlake_env / "keys" / "acme.json").exists()


def test_invalid_tenant_rejected(spendlake_env: Path) -> None:
    result = CliRunner().invoke(main, ["query", "select 1", "--tenant", "../x", "--home", str(spendlake_env)])

    assert result.exit_code == 1
    assert "Invalid tenant id" in result.output


def test_query_never_creates_keyring(tmp_path: Path) -> None:
    from spendlake.query import QueryError, run_query

    warehouse = tmp_path / "warehouse" / "gone"
    warehouse.mkdir(parents=True)
    (warehouse / "warehouse.duckdb").write_bytes(b"restored copy of a destroyed tenant")

    with pytest.raises(QueryError, match="Tenant 'gone' has no keyring"):
        run_query(tmp_path, "gone", "select 1")

    assert not (tmp_path / "keys" / "gone.json").exists()
