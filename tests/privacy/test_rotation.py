"""Key rotation: every row survives, old generations leave the keyring, old copies stop opening."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy.audit import read_audit_events, verify_audit_log
from privacy.keys import KeyringError, load_tenant_keys
from privacy.parquet_rewrite import file_master_key_ids
from privacy.rotation import rotate_tenant
from spendlake.cli_keys import keys as keys_command
from spendlake.paths import duckdb_path
from spendlake.tenant_lock import TenantBusyError, tenant_lock
from targets.warehouse.duckdb_store import open_encrypted_database
from targets.warehouse.errors import WarehouseKeyError
from targets.warehouse.parquet_store import read_parquet_file

from .lake_support import copy_warehouse, duckdb_rows, load_leads, parquet_files, parquet_rows

TENANT = "acme"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def loaded(spendlake_env: Path) -> Path:
    """Six rows in three Parquet files and the DuckDB table."""
    load_leads(spendlake_env, TENANT, range(1, 7), batch_size_rows=2)
    assert len(parquet_files(spendlake_env, TENANT)) == 3
    return spendlake_env


def _snapshot(home: Path) -> tuple[list, list]:
    return duckdb_rows(home, TENANT), parquet_rows(home, TENANT)


def _keyring(home: Path) -> dict:
    return json.loads((home / "keys" / f"{TENANT}.json").read_text())


def test_rotation_keeps_every_row(loaded: Path) -> None:
    before = _snapshot(loaded)
    old_keys = load_tenant_keys(loaded, TENANT)

    report = rotate_tenant(loaded, TENANT)

    assert _snapshot(loaded) == before
    assert len(before[0]) == len(before[1]) == 6
    assert (report.generation, report.resumed, report.retired_generations) == (2, False, [1])
    assert (report.files_rewritten, report.files_skipped, report.parquet_rows) == (3, 0, 6)
    assert report.tables_copied >= 1
    assert report.duckdb_rows >= 6
    new_keys = load_tenant_keys(loaded, TENANT)
    assert (new_keys.generation, new_keys.duckdb_key_generation) == (2, 2)
    assert new_keys.duckdb_key != old_keys.duckdb_key
    assert new_keys.pseudonym_key_id == old_keys.pseudonym_key_id
    for path in parquet_files(loaded, TENANT):
        assert file_master_key_ids(path, new_keys) == {"footer.g2"}


def test_rotation_retires_old_generation(loaded: Path) -> None:
    rotate_tenant(loaded, TENANT)

    document = _keyring(loaded)
    assert [generation["id"] for generation in document["generations"]] == [2]
    assert document["current"] == 2
    assert document["duckdb"]["active"]["generation"] == 2
    assert document["duckdb"]["pending"] is None
    assert load_tenant_keys(loaded, TENANT).parquet_key_id_list == ["footer.g2", "pii.g2"]


def test_copy_from_before_rotation_no_longer_opens(loaded: Path, tmp_path: Path) -> None:
    backup = copy_warehouse(loaded, TENANT, tmp_path / "backup")
    old_key = load_tenant_keys(loaded, TENANT).duckdb_key

    rotate_tenant(loaded, TENANT)
    keys = load_tenant_keys(loaded, TENANT)

    backup_files = sorted(backup.rglob("*.parquet"))
    assert len(backup_files) == 3
    for path in backup_files:
        with pytest.raises(KeyringError, match="Unknown Parquet master key id 'footer'"):
            read_parquet_file(path, keys)
    with pytest.raises(WarehouseKeyError, match="does not open"):
        open_encrypted_database(backup / "warehouse.duckdb", keys.duckdb_key, read_only=True, temp_directory=tmp_path / "t")
    # The live database no longer opens with the retired key either.
    with pytest.raises(WarehouseKeyError, match="does not open"):
        open_encrypted_database(duckdb_path(loaded, TENANT), old_key, read_only=True, temp_directory=tmp_path / "t")


def test_rotation_writes_audit_event(loaded: Path) -> None:
    rotate_tenant(loaded, TENANT)

    events = read_audit_events(loaded, TENANT)
    assert events[-1]["action"] == "keys.rotate"
    details = events[-1]["details"]
    assert (details["generation"], details["files_rewritten"], details["parquet_rows"]) == (2, 3, 6)
    assert details["retired_generations"] == [1]
    assert verify_audit_log(loaded, TENANT).intact


def test_loads_after_rotation_use_new_generation(loaded: Path) -> None:
    rotate_tenant(loaded, TENANT)

    load_leads(loaded, TENANT, range(7, 9), batch_size_rows=2)

    keys = load_tenant_keys(loaded, TENANT)
    assert all(file_master_key_ids(path, keys) == {"footer.g2"} for path in parquet_files(loaded, TENANT))
    assert [row["id"] for row in parquet_rows(loaded, TENANT)] == list(range(1, 9))
    assert [row[0] for row in duckdb_rows(loaded, TENANT)] == list(range(1, 9))


def test_second_rotation_moves_to_generation_three(loaded: Path) -> None:
    before = _snapshot(loaded)

    rotate_tenant(loaded, TENANT)
    report = rotate_tenant(loaded, TENANT)

    assert (report.generation, report.retired_generations, report.files_rewritten) == (3, [2], 3)
    assert _snapshot(loaded) == before
    keys = load_tenant_keys(loaded, TENANT)
    assert all(file_master_key_ids(path, keys) == {"footer.g3"} for path in parquet_files(loaded, TENANT))


def test_rotation_without_warehouse_only_rotates_keys(spendlake_env: Path) -> None:
    first = load_tenant_keys(spendlake_env, TENANT)

    report = rotate_tenant(spendlake_env, TENANT)

    assert (report.files_rewritten, report.tables_copied, report.retired_generations) == (0, 0, [1])
    second = load_tenant_keys(spendlake_env, TENANT)
    assert second.hmac_key == first.hmac_key
    assert (second.duckdb_key_generation, second.duckdb_key != first.duckdb_key) == (2, True)


def test_rotation_fails_when_tenant_busy(loaded: Path) -> None:
    with tenant_lock(loaded, TENANT, "a load"), pytest.raises(TenantBusyError, match="Tenant 'acme' is busy"):
        rotate_tenant(loaded, TENANT)
    assert [generation["id"] for generation in _keyring(loaded)["generations"]] == [1]


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import privacy.rotation as rotation

    home, step, allowed_calls = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    original = getattr(rotation, step)
    calls = []

    def crash_after(*args, **kwargs):
        if len(calls) == allowed_calls:
            os._exit(17)
        calls.append(1)
        return original(*args, **kwargs)

    setattr(rotation, step, crash_after)
    rotation.rotate_tenant(home, "acme")
    """
)


def _crash_rotation(home: Path, step: str, allowed_calls: int) -> None:
    process = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(home), step, str(allowed_calls)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        check=False,
    )
    assert process.returncode == 17, process.stderr.decode()[-2000:]


@pytest.mark.parametrize(
    ("step", "allowed_calls", "skipped", "rewritten", "tables_copied"),
    [
        pytest.param("rewrite_parquet_file", 1, 1, 2, True, id="after-first-file"),
        pytest.param("rekey_database", 0, 3, 0, True, id="before-database"),
        pytest.param("_retire_old_generations", 0, 3, 0, False, id="before-retiring"),
    ],
)
def test_rotation_resumes_after_crash(
    loaded: Path, step: str, allowed_calls: int, skipped: int, rewritten: int, tables_copied: bool
) -> None:
    before = _snapshot(loaded)

    _crash_rotation(loaded, step, allowed_calls)

    assert [generation["id"] for generation in _keyring(loaded)["generations"]] == [1, 2]
    assert _snapshot(loaded) == before
    report = rotate_tenant(loaded, TENANT)
    assert (report.generation, report.resumed, report.retired_generations) == (2, True, [1])
    assert (report.files_skipped, report.files_rewritten) == (skipped, rewritten)
    assert (report.tables_copied > 0) is tables_copied
    assert _snapshot(loaded) == before
    assert [generation["id"] for generation in _keyring(loaded)["generations"]] == [2]


def test_cli_rotate_prints_summary(loaded: Path) -> None:
    result = CliRunner().invoke(keys_command, ["rotate", "--tenant", TENANT, "--home", str(loaded)])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Rotated tenant keys to generation 2 for tenant 'acme': 3 Parquet file(s) rewritten (6 rows)")
    assert "retired generation(s): 1." in result.output


def test_cli_rotate_unknown_tenant(spendlake_env: Path) -> None:
    result = CliRunner().invoke(keys_command, ["rotate", "--tenant", "nobody", "--home", str(spendlake_env)])

    assert result.exit_code == 1
    assert "Tenant 'nobody' has no keyring" in result.output


def test_cli_status_shows_generations_without_key_bytes(loaded: Path) -> None:
    rotate_tenant(loaded, TENANT)
    keys = load_tenant_keys(loaded, TENANT)

    result = CliRunner().invoke(keys_command, ["status", "--tenant", TENANT, "--home", str(loaded)])

    assert result.exit_code == 0, result.output
    assert "current generation: 2" in result.output
    assert "Parquet master key ids footer.g2, pii.g2" in result.output
    assert "generation 1" not in result.output
    assert f"pseudonym key id {keys.pseudonym_key_id}" in result.output
    assert "DuckDB key: generation 2" in result.output
    document = _keyring(loaded)
    for sealed in document["generations"][0]["keys"].values():
        assert sealed not in result.output
    assert document["generations"][0]["kek"]["wrapped_kek"] not in result.output


def test_cli_status_reports_wrong_master_key(loaded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", "A" * 43 + "=")

    result = CliRunner().invoke(keys_command, ["status", "--tenant", TENANT, "--home", str(loaded)])

    assert result.exit_code == 1
    assert "keys unwrap with the current master key: no." in result.output
    assert "sealed with a different master key" in result.output
