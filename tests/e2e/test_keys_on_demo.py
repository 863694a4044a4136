"""End to end: `spendlake keys rotate` and `keys destroy` on the demo tenant, loaded by `spendlake demo`.

The module copies the home of the session's demo run and loads a second
tenant beside the demo tenant. Rotation must keep every row of the demo warehouse and lake. Then
the demo tenant is destroyed: its backup copy cannot be read, and the second
tenant still reads all of its rows.
"""

from __future__ import annotations

import shutil
import typing as t
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy.keys import KeyringError, load_tenant_keys
from privacy.parquet_rewrite import lake_files
from spendlake.cli import main
from spendlake.demo import DEMO_TENANT
from spendlake.paths import dashboard_path, dbt_work_dir, tenant_dir
from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.errors import WarehouseNotFoundError
from targets.warehouse.parquet_store import read_parquet_file
from tests.privacy.lake_support import duckdb_rows, load_leads

pytestmark = pytest.mark.e2e

OTHER_TENANT = "acme"


@pytest.fixture(autouse=True)
def local_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open the demo's keyring with its local master-key file, as the demo itself does."""
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    monkeypatch.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")


@pytest.fixture(scope="module")
def demo_home(demo: dict[str, t.Any], tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Path]:
    """Copy the session's demo home, because these tests destroy its tenant, and load a second tenant into it."""
    home = tmp_path_factory.mktemp("keys-demo") / "home"
    shutil.copytree(demo["home"], home)
    patcher = pytest.MonkeyPatch()
    patcher.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    patcher.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")

    load_leads(home, OTHER_TENANT, range(1, 6))

    yield home
    patcher.undo()


def table_counts(home: Path) -> dict[str, int]:
    """Return the row count of every table of the demo warehouse."""
    with connect_warehouse(home, DEMO_TENANT, read_only=True) as connection:
        tables = connection.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'wh' AND schema_name <> '_spendlake'"
        ).fetchall()
        return {
            f"{schema}.{table}": connection.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]  # noqa: S608
            for schema, table in tables
        }


def lake_row_count(home: Path) -> int:
    """Return the rows of every Parquet file of the demo lake, read with the current keys."""
    keys = load_tenant_keys(home, DEMO_TENANT)
    return sum(read_parquet_file(path, keys).num_rows for path in lake_files(tenant_dir(home, DEMO_TENANT) / "parquet"))


def keys_cli(home: Path, *arguments: str) -> t.Any:
    return CliRunner().invoke(main, ["keys", *arguments, "--tenant", DEMO_TENANT, "--home", str(home)])


def test_rotate_then_destroy_demo(demo_home: Path, tmp_path: Path) -> None:
    counts_before = table_counts(demo_home)
    lake_rows_before = lake_row_count(demo_home)
    assert counts_before["stripe.charges"] > 0
    assert lake_rows_before > 0

    rotated = keys_cli(demo_home, "rotate")

    assert rotated.exit_code == 0, rotated.output
    assert load_tenant_keys(demo_home, DEMO_TENANT).generation == 2
    assert table_counts(demo_home) == counts_before
    # The dbt staging views are re-created in the re-encrypted database and still read their tables.
    with connect_warehouse(demo_home, DEMO_TENANT, read_only=True) as connection:
        charges_view = connection.execute("SELECT count(*) FROM staging.stg_stripe__charges").fetchone()[0]
    assert charges_view > 0
    assert lake_row_count(demo_home) == lake_rows_before

    assert dashboard_path(demo_home, DEMO_TENANT).is_file()
    backup = Path(shutil.copytree(tenant_dir(demo_home, DEMO_TENANT), tmp_path / "backup"))
    destroyed = keys_cli(demo_home, "destroy", "--yes")

    assert destroyed.exit_code == 0, destroyed.output
    # The dashboard and dbt's files live in the tenant's folder, so they go with it.
    assert not dashboard_path(demo_home, DEMO_TENANT).exists()
    assert not dbt_work_dir(demo_home, DEMO_TENANT).exists()
    assert not (demo_home / "keys" / f"{DEMO_TENANT}.json").exists()
    with pytest.raises(WarehouseNotFoundError):
        connect_warehouse(demo_home, DEMO_TENANT, read_only=True)

    # A restored backup has no keyring to open it, and one made afterwards under the same id does not fit.
    shutil.copytree(backup, tenant_dir(demo_home, DEMO_TENANT), dirs_exist_ok=True)
    with pytest.raises(KeyringError, match=f"Tenant '{DEMO_TENANT}' has no keyring"):
        connect_warehouse(demo_home, DEMO_TENANT, read_only=True)
    new_keys = load_tenant_keys(demo_home, DEMO_TENANT)
    backup_files = lake_files(backup / "parquet")
    assert backup_files
    with pytest.raises(Exception, match="(?i)key|decrypt|unwrap"):
        read_parquet_file(backup_files[0], new_keys)
    with pytest.raises(Exception, match="does not open"):
        connect_warehouse(demo_home, DEMO_TENANT, read_only=True)

    assert [row[0] for row in duckdb_rows(demo_home, OTHER_TENANT)] == [1, 2, 3, 4, 5]
