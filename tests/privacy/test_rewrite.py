"""Rewrite primitives: one Parquet file under fresh data keys, and the DuckDB database under a new key."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from privacy.duckdb_rekey import (
    RekeyError,
    copy_database,
    recover_interrupted_rekey,
    rekey_database,
    wal_path,
)
from privacy.duckdb_swap import rekey_path
from privacy.keyring import keyring_path
from privacy.keys import changing_keyring, load_tenant_keys
from privacy.master_keys import select_provider
from privacy.parquet_rewrite import (
    ParquetRewriteError,
    file_master_key_ids,
    pii_columns_of,
    rewrite_parquet_file,
)
from spendlake.paths import duckdb_path, keys_dir
from spendlake.tenant_lock import tenant_lock
from targets.warehouse.duckdb_store import open_encrypted_database
from targets.warehouse.errors import WarehouseKeyError
from targets.warehouse.parquet_crypto import ParquetCrypto
from targets.warehouse.parquet_store import read_parquet_file

from .lake_support import (
    PII_COLUMNS,
    PLAIN_MARKER,
    duckdb_rows,
    lead,
    load_leads,
    parquet_files,
    parquet_rows,
    pseudonym,
)

TENANT = "acme"
NON_PII_COLUMNS = ["id", "campaign", "spend", "_loaded_at"]


@pytest.fixture
def lake(spendlake_env: Path) -> list[Path]:
    """Three batches of two rows, so three Parquet files ordered by id, and six rows in DuckDB."""
    load_leads(spendlake_env, TENANT, range(1, 7), batch_size_rows=2)
    keys = load_tenant_keys(spendlake_env, TENANT)
    files = sorted(parquet_files(spendlake_env, TENANT), key=lambda path: min(read_parquet_file(path, keys, columns=["id"])["id"].to_pylist()))
    assert len(files) == 3
    return files


def _rows_of(path: Path, keys: object) -> list[dict]:
    rows = read_parquet_file(path, keys).to_pylist()
    for row in rows:
        row.pop("_loaded_at")
    return sorted(rows, key=lambda row: row["id"])


def _footer_data_key_material(path: Path) -> dict:
    """Return the footer's key material JSON, which pyarrow stores in the file tail."""
    material = re.findall(rb'\{"keyMaterialType":[^}]*\}', path.read_bytes())
    assert len(material) == 1
    return json.loads(material[0])


def _add_generation(home: Path, tenant: str) -> None:
    with changing_keyring(home, tenant) as keyring:
        keyring.add_generation(select_provider(keys_dir(home), allow_local=False))
        keyring.save()


# Parquet ---------------------------------------------------------------------------------------


def test_rewrite_keeps_rows_with_new_data_keys(spendlake_env: Path, lake: list[Path]) -> None:
    keys = load_tenant_keys(spendlake_env, TENANT)
    path = lake[0]
    before_rows = _rows_of(path, keys)
    before_material = _footer_data_key_material(path)
    before_inode = path.stat().st_ino

    result = rewrite_parquet_file(path, keys, keys)

    assert (result.rows_before, result.rows_after, result.removed) == (2, 2, False)
    assert _rows_of(path, keys) == before_rows
    after_material = _footer_data_key_material(path)
    assert after_material["wrappedDEK"] != before_material["wrappedDEK"]
    assert after_material["wrappedKEK"] != before_material["wrappedKEK"]
    assert path.stat().st_ino != before_inode
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(p.name for p in lake)


def test_rewrite_keeps_pii_column_key_split(spendlake_env: Path, lake: list[Path]) -> None:
    keys = load_tenant_keys(spendlake_env, TENANT)
    rewrite_parquet_file(lake[0], keys, keys)

    def footer_only(key_id: str) -> bytes:
        if key_id != "footer":
            raise PermissionError(f"this reader holds no {key_id!r} master key")
        return keys.parquet_master_key(key_id)

    properties = ParquetCrypto(footer_only).decryption_properties()
    plain = pq.read_table(lake[0], columns=NON_PII_COLUMNS, decryption_properties=properties)
    assert plain.column("campaign").to_pylist() == [f"{PLAIN_MARKER}-1", f"{PLAIN_MARKER}-2"]
    with pytest.raises(PermissionError, match="holds no 'pii' master key"):
        pq.read_table(lake[0], columns=PII_COLUMNS, decryption_properties=ParquetCrypto(footer_only).decryption_properties())

    schema = pq.read_schema(lake[0], decryption_properties=ParquetCrypto(keys.parquet_master_key).decryption_properties())
    assert pii_columns_of(schema) == PII_COLUMNS


def test_rewrite_filters_rows(spendlake_env: Path, lake: list[Path]) -> None:
    keys = load_tenant_keys(spendlake_env, TENANT)
    erased = pseudonym(3)

    result = rewrite_parquet_file(lake[1], keys, keys, keep=lambda table: pc.not_equal(table["email_hash"], erased))

    assert (result.rows_before, result.rows_after, result.rows_removed, result.removed) == (2, 1, 1, False)
    assert _rows_of(lake[1], keys) == [lead(4)]
    assert [row["id"] for row in parquet_rows(spendlake_env, TENANT)] == [1, 2, 4, 5, 6]


def test_rewrite_removes_emptied_file(spendlake_env: Path, lake: list[Path]) -> None:
    keys = load_tenant_keys(spendlake_env, TENANT)

    result = rewrite_parquet_file(lake[2], keys, keys, keep=lambda table: pa.array([False] * table.num_rows))

    assert (result.rows_before, result.rows_after, result.removed) == (2, 0, True)
    assert not lake[2].exists()
    assert sorted(p.name for p in lake[2].parent.iterdir()) == sorted(p.name for p in lake[:2])


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        pytest.param(lambda table: pa.array([True, None]), "returned null for 1 row", id="null"),
        pytest.param(lambda table: pa.array([True]), "must return one boolean per row", id="short"),
        pytest.param(lambda table: pa.array([1, 0]), "must return one boolean per row", id="not-boolean"),
    ],
)
def test_rewrite_rejects_bad_keep_result(spendlake_env: Path, lake: list[Path], keep, message: str) -> None:
    keys = load_tenant_keys(spendlake_env, TENANT)
    before = lake[0].read_bytes()

    with pytest.raises(ParquetRewriteError, match=message) as raised:
        rewrite_parquet_file(lake[0], keys, keys, keep=keep)

    assert "The file was not changed" in str(raised.value) or "the file was not changed" in str(raised.value)
    assert lake[0].read_bytes() == before
    assert sorted(p.name for p in lake[0].parent.iterdir()) == sorted(p.name for p in lake)


def test_rewrite_failure_leaves_old_file(spendlake_env: Path, lake: list[Path]) -> None:
    keys = load_tenant_keys(spendlake_env, TENANT)
    before = lake[0].read_bytes()

    class NoPiiKey:
        parquet_footer_key_id = "footer"
        parquet_pii_key_id = "pii"

        @staticmethod
        def parquet_master_key(key_id: str) -> bytes:
            if key_id == "pii":
                raise PermissionError("no pii key here")
            return keys.parquet_master_key(key_id)

    with pytest.raises(PermissionError, match="no pii key here"):
        rewrite_parquet_file(lake[0], keys, NoPiiKey())

    assert lake[0].read_bytes() == before
    assert sorted(p.name for p in lake[0].parent.iterdir()) == sorted(p.name for p in lake)


def test_rewrite_under_new_generation(spendlake_env: Path, lake: list[Path]) -> None:
    old_keys = load_tenant_keys(spendlake_env, TENANT)
    _add_generation(spendlake_env, TENANT)
    new_keys = load_tenant_keys(spendlake_env, TENANT)

    rewrite_parquet_file(lake[0], new_keys, new_keys)

    assert file_master_key_ids(lake[0], new_keys) == {"footer.g2"}
    assert file_master_key_ids(lake[1], new_keys) == {"footer"}
    assert _rows_of(lake[0], new_keys) == [lead(1), lead(2)]
    assert "footer.g2" in new_keys.parquet_key_id_list
    with pytest.raises(Exception, match="Unknown Parquet master key id 'footer.g2'"):
        read_parquet_file(lake[0], old_keys)


def test_pii_columns_default_to_all_but_loaded_at() -> None:
    schema = pa.schema([("id", pa.int64()), ("email", pa.string()), ("_loaded_at", pa.timestamp("us", tz="UTC"))])

    assert pii_columns_of(schema) == ["id", "email"]
    listed = schema.with_metadata({b"spendlake.pii_columns": b'["email"]'})
    assert pii_columns_of(listed) == ["email"]
    with pytest.raises(ParquetRewriteError, match="not a JSON list of column names"):
        pii_columns_of(schema.with_metadata({b"spendlake.pii_columns": b"{"}))


# DuckDB ----------------------------------------------------------------------------------------


def _delete_lead(home: Path, tenant: str, number: int) -> None:
    with open_encrypted_database(
        duckdb_path(home, tenant),
        load_tenant_keys(home, tenant).duckdb_key,
        read_only=False,
        temp_directory=home / "tmp",
    ) as connection:
        connection.execute("DELETE FROM wh.stripe.leads WHERE id = ?", [number])
        connection.execute("CHECKPOINT wh")


def test_rekey_after_delete_removes_old_data(spendlake_env: Path, lake: list[Path], tmp_path: Path) -> None:
    path = duckdb_path(spendlake_env, TENANT)
    _delete_lead(spendlake_env, TENANT, 3)
    backup = tmp_path / "backup.duckdb"
    backup.write_bytes(path.read_bytes())
    old_key = load_tenant_keys(spendlake_env, TENANT).duckdb_key
    old_inode = path.stat().st_ino

    with tenant_lock(spendlake_env, TENANT, "the test"):
        result = rekey_database(spendlake_env, TENANT)

    assert result.tables["stripe.leads"] == 5
    assert [row[0] for row in duckdb_rows(spendlake_env, TENANT)] == [1, 2, 4, 5, 6]
    new_key = load_tenant_keys(spendlake_env, TENANT).duckdb_key
    assert new_key != old_key
    assert path.stat().st_ino != old_inode
    assert not wal_path(path).exists()
    assert not rekey_path(spendlake_env, TENANT).exists()
    document = json.loads(keyring_path(spendlake_env, TENANT).read_text())
    assert document["duckdb"]["pending"] is None
    # The old key no longer opens the live file, and the new keyring no longer opens the old copy.
    with pytest.raises(WarehouseKeyError, match="does not open"):
        open_encrypted_database(path, old_key, read_only=True, temp_directory=tmp_path / "t1")
    with pytest.raises(WarehouseKeyError, match="does not open"):
        open_encrypted_database(backup, new_key, read_only=True, temp_directory=tmp_path / "t2")


def test_copy_database_leaves_no_deleted_bytes_unencrypted(tmp_path: Path) -> None:
    """The same copy step on plain files: DELETE keeps the deleted values on disk, the copy does not."""
    old, new = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    connection = duckdb.connect()
    connection.execute(f"ATTACH '{old}' AS old")
    connection.execute("CREATE TABLE old.main.t (id BIGINT PRIMARY KEY, v VARCHAR)")
    # md5 text is stored verbatim; a repeated prefix would be compressed and hide from a byte search.
    connection.execute("INSERT INTO old.main.t SELECT range, md5(range::VARCHAR) FROM range(100)")
    connection.execute("CHECKPOINT old")
    deleted = [row[0].encode() for row in connection.execute("SELECT v FROM old.main.t WHERE id >= 10").fetchall()]
    connection.execute("DELETE FROM old.main.t WHERE id >= 10")
    connection.execute("CHECKPOINT old")
    assert sum(old.read_bytes().count(value) for value in deleted) == 90

    connection.execute(f"ATTACH '{new}' AS new")
    counts = copy_database(connection, "old", "new")
    connection.execute("DETACH new")
    connection.execute("DETACH old")

    assert counts == {"main.t": 10}
    data = new.read_bytes()
    assert sum(data.count(value) for value in deleted) == 0
    kept_values = duckdb.connect(str(new), read_only=True).execute("SELECT v FROM t ORDER BY id").fetchall()
    assert [row[0].encode() for row in kept_values] == [hashlib.md5(str(n).encode(), usedforsecurity=False).hexdigest().encode() for n in range(10)]
    assert all(data.count(row[0].encode()) >= 1 for row in kept_values)


def test_rekey_requires_tenant_lock(spendlake_env: Path, lake: list[Path]) -> None:
    with pytest.raises(RekeyError, match="needs its caller to hold the tenant lock"):
        rekey_database(spendlake_env, TENANT)


def test_rekey_without_database_fails(spendlake_env: Path) -> None:
    load_tenant_keys(spendlake_env, TENANT)

    with tenant_lock(spendlake_env, TENANT, "the test"), pytest.raises(RekeyError, match="has no DuckDB database"):
        rekey_database(spendlake_env, TENANT)


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import privacy.duckdb_rekey as rekey
    from spendlake.tenant_lock import tenant_lock

    step = sys.argv[2]
    original = getattr(rekey, step)

    def crash(*args, **kwargs):
        os._exit(17)

    setattr(rekey, step, crash)
    with tenant_lock(Path(sys.argv[1]), "acme", "the crash test"):
        rekey.rekey_database(Path(sys.argv[1]), "acme")
    """
)


@pytest.mark.parametrize(
    ("step", "outcome", "key_changes"),
    [
        pytest.param("_stage_key", None, False, id="before-staging-key"),
        pytest.param("_swap_files", "rolled back", False, id="before-swap"),
        pytest.param("_commit_key", "committed", True, id="before-commit"),
    ],
)
def test_rekey_crash_leaves_openable_warehouse(
    spendlake_env: Path, lake: list[Path], step: str, outcome: str | None, key_changes: bool
) -> None:
    rows = duckdb_rows(spendlake_env, TENANT)
    old_key = load_tenant_keys(spendlake_env, TENANT).duckdb_key

    process = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(spendlake_env), step],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        check=False,
    )

    assert process.returncode == 17, process.stderr.decode()[-2000:]
    assert duckdb_rows(spendlake_env, TENANT) == rows
    assert (load_tenant_keys(spendlake_env, TENANT).duckdb_key != old_key) is key_changes
    with tenant_lock(spendlake_env, TENANT, "the test"):
        assert recover_interrupted_rekey(spendlake_env, TENANT) == outcome
        assert not rekey_path(spendlake_env, TENANT).exists()
        assert duckdb_rows(spendlake_env, TENANT) == rows
        rekey_database(spendlake_env, TENANT)
    assert duckdb_rows(spendlake_env, TENANT) == rows
    assert json.loads(keyring_path(spendlake_env, TENANT).read_text())["duckdb"]["pending"] is None


def test_rekey_keeps_file_mode(spendlake_env: Path, lake: list[Path]) -> None:
    path = duckdb_path(spendlake_env, TENANT)
    path.chmod(0o600)

    with tenant_lock(spendlake_env, TENANT, "the test"):
        rekey_database(spendlake_env, TENANT)

    assert path.stat().st_mode & 0o777 == 0o600



def test_rewrite_keeps_file_mode(spendlake_env: Path, lake: list[Path]) -> None:
    keys = load_tenant_keys(spendlake_env, TENANT)
    lake[0].chmod(0o640)

    rewrite_parquet_file(lake[0], keys, keys)

    assert stat.S_IMODE(lake[0].stat().st_mode) == 0o640
    assert stat.S_IMODE(lake[1].stat().st_mode) == 0o600
    assert read_parquet_file(lake[0], keys).num_rows == 2
