"""Tenant destruction: keys shredded, warehouse deleted, backups unreadable, other tenants untouched."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy.audit import append_audit_event, read_audit_events, verify_audit_log
from privacy.erasures import add_erased, erasure_list_path
from privacy.key_status import keyring_status
from privacy.keys import KeyringError, load_tenant_keys
from privacy.shredding import destroy_tenant
from spendlake.cli_keys import keys as keys_command
from spendlake.paths import tenant_dir
from spendlake.tenant_lock import TenantBusyError, tenant_lock
from targets.warehouse.duckdb_store import open_encrypted_database
from targets.warehouse.errors import WarehouseKeyError
from targets.warehouse.parquet_store import read_parquet_file

from .lake_support import copy_warehouse, duckdb_rows, load_leads, parquet_rows, pseudonym

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_tenants(spendlake_env: Path) -> Path:
    """Tenants acme and globex, each with rows; acme also has an erasure list and an audit event."""
    load_leads(spendlake_env, "acme", range(1, 5))
    load_leads(spendlake_env, "globex", range(10, 16))
    add_erased(spendlake_env, "acme", [pseudonym(99)], request_id="req-1")
    append_audit_event(spendlake_env, "acme", "privacy.erase", {"request": "req-1", "rows": 0})
    return spendlake_env


def test_destroy_deletes_keys_warehouse_and_erasure_list(two_tenants: Path) -> None:
    home = two_tenants
    keyring = home / "keys" / "acme.json"

    report = destroy_tenant(home, "acme")

    assert (report.keyring_deleted, report.erasure_list_deleted) == (True, True)
    assert report.warehouse_files_deleted == 3  # two Parquet files and the DuckDB database
    assert report.problems == []
    assert not keyring.exists()
    assert not list((home / "keys").glob(".acme.json*"))
    assert not tenant_dir(home, "acme").exists()
    assert not erasure_list_path(home, "acme").exists()


def test_destroy_keeps_audit_log(two_tenants: Path) -> None:
    destroy_tenant(two_tenants, "acme")

    events = read_audit_events(two_tenants, "acme")
    assert [event["action"] for event in events] == ["privacy.erase", "keys.destroy"]
    assert events[-1]["details"]["keyring_deleted"] is True
    assert events[-1]["details"]["warehouse_files_deleted"] == 3
    assert verify_audit_log(two_tenants, "acme").intact


def test_backup_unreadable_after_destroy(two_tenants: Path, tmp_path: Path) -> None:
    backup = copy_warehouse(two_tenants, "acme", tmp_path / "backup")
    backup_parquet = sorted(backup.rglob("*.parquet"))
    assert len(backup_parquet) == 2

    destroy_tenant(two_tenants, "acme")

    with pytest.raises(KeyringError, match="Tenant 'acme' has no keyring"):
        keyring_status(two_tenants, "acme")
    new_keys = load_tenant_keys(two_tenants, "acme")  # a new keyring for the same tenant name
    for path in backup_parquet:
        with pytest.raises(WarehouseKeyError, match="does not unwrap the file's key"):
            read_parquet_file(path, new_keys)
    with pytest.raises(WarehouseKeyError, match="does not open"):
        open_encrypted_database(backup / "warehouse.duckdb", new_keys.duckdb_key, read_only=True, temp_directory=tmp_path / "t")


def test_other_tenant_still_reads_everything(two_tenants: Path) -> None:
    before = (duckdb_rows(two_tenants, "globex"), parquet_rows(two_tenants, "globex"))

    destroy_tenant(two_tenants, "acme")

    assert (duckdb_rows(two_tenants, "globex"), parquet_rows(two_tenants, "globex")) == before
    assert [row[0] for row in before[0]] == list(range(10, 16))


def test_destroy_busy_tenant_fails(two_tenants: Path) -> None:
    with tenant_lock(two_tenants, "acme", "a load"), pytest.raises(TenantBusyError, match="Tenant 'acme' is busy"):
        destroy_tenant(two_tenants, "acme")
    assert (two_tenants / "keys" / "acme.json").exists()


def test_destroy_twice_finds_nothing(two_tenants: Path) -> None:
    destroy_tenant(two_tenants, "acme")

    report = destroy_tenant(two_tenants, "acme")

    assert (report.keyring_deleted, report.warehouse_files_deleted, report.erasure_list_deleted) == (False, 0, False)


def test_cli_destroy_with_yes(two_tenants: Path) -> None:
    result = CliRunner().invoke(keys_command, ["destroy", "--tenant", "acme", "--home", str(two_tenants), "--yes"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Destroyed tenant 'acme': keyring deleted, 3 warehouse file(s) deleted")
    assert not (two_tenants / "keys" / "acme.json").exists()


def test_cli_destroy_without_terminal_needs_yes(two_tenants: Path) -> None:
    result = CliRunner().invoke(keys_command, ["destroy", "--tenant", "acme", "--home", str(two_tenants)], input="acme\n")

    assert result.exit_code == 1
    assert "stdin is not a terminal. Pass --yes to confirm from a script." in result.output
    assert (two_tenants / "keys" / "acme.json").exists()


def _destroy_in_terminal(home: Path, typed: str) -> tuple[int, str]:
    """Run `keys destroy` on a pseudo-terminal, type `typed` at the prompt; return the exit code and output."""
    command = [
        sys.executable,
        "-c",
        "import sys; from spendlake.cli_keys import keys; keys(sys.argv[1:], prog_name='spendlake keys')",
        "destroy",
        "--tenant",
        "acme",
        "--home",
        str(home),
    ]
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        close_fds=True,
    )
    os.close(terminal)
    output = _read_until(controller, b"Type the tenant id again to confirm", process)
    os.write(controller, typed.encode() + b"\n")
    output += _read_until(controller, None, process)
    os.close(controller)
    return process.wait(timeout=30), output.decode(errors="replace")


def _read_until(controller: int, marker: bytes | None, process: subprocess.Popen[bytes], timeout: float = 60) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (marker is None or marker not in data):
        ready, _, _ = select.select([controller], [], [], 0.2)
        if not ready:
            if process.poll() is not None and marker is None:
                break
            continue
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    return data


def test_cli_destroy_prompt_mismatch_aborts(two_tenants: Path) -> None:
    code, output = _destroy_in_terminal(two_tenants, "globex")

    assert code == 1, output
    assert "The typed tenant id does not match 'acme'; nothing was destroyed." in output
    assert (two_tenants / "keys" / "acme.json").exists()
    assert tenant_dir(two_tenants, "acme").exists()


def test_cli_destroy_prompt_match_destroys(two_tenants: Path) -> None:
    code, output = _destroy_in_terminal(two_tenants, "acme")

    assert code == 0, output
    assert "Destroyed tenant 'acme'" in output
    assert not (two_tenants / "keys" / "acme.json").exists()
