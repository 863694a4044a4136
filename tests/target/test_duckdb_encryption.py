"""The DuckDB warehouse is encrypted, opens only with the tenant's key, and refuses plaintext."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from privacy.keys import KeyringError, load_tenant_keys
from spendlake.paths import duckdb_path
from targets.warehouse.duckdb_store import (
    connect_warehouse,
    httpfs_extension_path,
    remove_stale_spill_folders,
    spill_folder,
    verify_encrypted,
)
from targets.warehouse.errors import (
    EncryptionNotActiveError,
    WarehouseKeyError,
    WarehouseLockedError,
    WarehouseNotFoundError,
)
from .support import (
    TENANT,
    query,
    record_message,
    run_target,
    run_target_expecting_error,
    schema_message,
    tenant_folder,
)

PROPERTIES = {"id": {"type": "integer"}, "name": {"type": "string"}}


@pytest.fixture
def loaded_home(home: Path) -> Path:
    run_target(home, [schema_message("users", PROPERTIES), record_message("users", {"id": 1, "name": "x"})])
    return home


def test_database_reports_gcm_encryption(loaded_home: Path) -> None:
    rows = query(loaded_home, "SELECT encrypted, cipher FROM duckdb_databases() WHERE database_name = 'wh'")

    assert rows == [(True, "GCM")]


def test_database_needs_a_key(loaded_home: Path) -> None:
    path = duckdb_path(loaded_home, TENANT)

    with pytest.raises(duckdb.CatalogException, match="Cannot open encrypted database .* without a key"):
        duckdb.connect(str(path), read_only=True)

    connection = duckdb.connect()
    with pytest.raises(duckdb.CatalogException, match="without a key"):
        connection.execute(f"ATTACH '{path}' AS plain (READ_ONLY)")


def test_database_rejects_wrong_key(loaded_home: Path) -> None:
    path = duckdb_path(loaded_home, TENANT)
    wrong_key = base64.b64encode(secrets.token_bytes(32)).decode()
    connection = duckdb.connect()

    with pytest.raises(duckdb.InvalidInputException, match="Wrong encryption key used to open the database file"):
        connection.execute(f"ATTACH '{path}' AS guess (ENCRYPTION_KEY ?, READ_ONLY)", [wrong_key])


def test_connection_settings(loaded_home: Path) -> None:
    settings = dict(
        query(
            loaded_home,
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('temp_file_encryption', 'allow_unsigned_extensions', 'autoinstall_known_extensions')",
        )
    )
    extension = query(loaded_home, "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'")

    assert settings == {
        "temp_file_encryption": "true",
        "allow_unsigned_extensions": "false",
        "autoinstall_known_extensions": "false",
    }
    assert extension == [(True,)]
    assert httpfs_extension_path().is_relative_to(Path(sys.prefix))


def test_verify_encrypted_rejects_plain_database(tmp_path: Path) -> None:
    path = tmp_path / "plain.duckdb"
    connection = duckdb.connect()
    connection.execute(f"ATTACH '{path}' AS wh")

    with pytest.raises(EncryptionNotActiveError, match="as not encrypted; refusing to use it"):
        verify_encrypted(connection, path)


def test_plaintext_file_at_warehouse_path_rejected(home: Path) -> None:
    path = duckdb_path(home, TENANT)
    path.parent.mkdir(parents=True)
    duckdb.connect(str(path)).close()

    error = run_target_expecting_error(home, [schema_message("users", PROPERTIES)])

    assert isinstance(error, EncryptionNotActiveError)
    assert "is an unencrypted DuckDB database" in str(error)


def test_reader_needs_existing_warehouse(home: Path) -> None:
    with pytest.raises(WarehouseNotFoundError, match="Tenant 'acme' has no warehouse yet"):
        connect_warehouse(home, TENANT, read_only=True)

    assert not (home / "keys").exists()


def test_read_only_connection_uses_wh(loaded_home: Path) -> None:
    with connect_warehouse(loaded_home, TENANT, read_only=True) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("wh",)
        assert connection.execute("SELECT name FROM stripe.users").fetchall() == [("x",)]
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            connection.execute("INSERT INTO stripe.users VALUES (2, 'y', now())")


_HOLD_WRITER = """
import sys
from targets.warehouse.duckdb_store import connect_warehouse
connection = connect_warehouse(sys.argv[1], sys.argv[2], read_only=False)
print("ready", flush=True)
sys.stdin.read()
connection.close()
"""


def test_locked_warehouse_names_process(loaded_home: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITER, str(loaded_home), TENANT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"

        with pytest.raises(WarehouseLockedError, match=rf"is locked by PID {writer.pid}\..*Wait for that process to finish"):
            connect_warehouse(loaded_home, TENANT, read_only=True)
    finally:
        writer.communicate(input="")

    assert writer.returncode == 0


def test_spill_files_encrypted(home: Path) -> None:
    marker = "spill-canary-4e1d"
    connection = connect_warehouse(home, TENANT, read_only=False)
    try:
        connection.execute("SET memory_limit = '64MB'")
        connection.execute("SET threads = 1")
        connection.execute(
            f"CREATE TABLE big AS SELECT '{marker}-' || i::VARCHAR || repeat('x', 50) AS v FROM range(2000000) t(i)"
        )
        pending = connection.execute("SELECT v FROM big ORDER BY v DESC")
        spill_files = [path for path in tenant_folder(home).glob(".duckdb-tmp-*/*") if path.is_file()]

        assert spill_files, "the sort did not spill, so this test checked nothing"
        for path in spill_files:
            assert marker.encode() not in path.read_bytes(), f"plaintext in spill file {path.name}"
        assert pending.fetchone()[0].startswith(marker)
    finally:
        connection.close()

    assert list(tenant_folder(home).glob(".duckdb-tmp-*")) == []


def test_reader_without_keyring_creates_none(loaded_home: Path) -> None:
    keyring = loaded_home / "keys" / f"{TENANT}.json"
    keyring.unlink()

    with pytest.raises(KeyringError, match=f"Tenant '{TENANT}' has no keyring"):
        connect_warehouse(loaded_home, TENANT, read_only=True)
    assert not keyring.exists()


def test_replaced_keyring_cannot_open_database(loaded_home: Path) -> None:
    (loaded_home / "keys" / f"{TENANT}.json").unlink()
    load_tenant_keys(loaded_home, TENANT)  # a writer creates a new keyring with new keys

    expected = "does not open .*warehouse.duckdb: the keyring and the database do not belong together"
    with pytest.raises(WarehouseKeyError, match=expected):
        connect_warehouse(loaded_home, TENANT, read_only=True)


def test_stale_spill_folders_removed(tmp_path: Path) -> None:
    dead = spill_folder(tmp_path, 4_194_305)  # above Linux's largest process id, so no process has it
    dead.mkdir()
    (dead / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"\0" * 16)
    alive = spill_folder(tmp_path, os.getppid())
    alive.mkdir()
    other = tmp_path / ".duckdb-tmp-notes"
    other.mkdir()

    removed = remove_stale_spill_folders(tmp_path)

    assert removed == 1
    assert not dead.exists()
    assert alive.is_dir()
    assert other.is_dir()
