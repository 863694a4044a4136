"""The dbt models of transform/ build inside a demo tenant's encrypted warehouse and pass their own tests.

The session's demo run loads the five sandbox sources (the `demo` fixture).
Then `dbt build` runs as a child process twice in all: the first run builds a
copy of that warehouse, and the second, which must fail, builds another copy
without the NZD exchange rates.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import duckdb
import pytest
import yaml

from spendlake.demo import DEMO_TENANT
from spendlake.paths import duckdb_path
from targets.warehouse.duckdb_store import connect_warehouse

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "transform"
DBT = Path(sys.executable).parent / "dbt"
MARTS = (
    "ad_performance_daily",
    "traffic_daily",
    "revenue_daily",
    "campaign_performance_daily",
    "marketing_performance_daily",
    "source_freshness",
)
#: Column names that would mean a personal value reached a model.
PERSONAL_COLUMN = re.compile(r"email|phone|customer|ip_address|remote_ip|postal|postcode|fingerprint|billing")
#: A DuckDB database file has this magic number at byte 8, encrypted or not.
DUCKDB_MAGIC = b"DUCK"


class DbtBuild(t.NamedTuple):
    """One `dbt build`: its exit code, output, and run_results.json."""

    returncode: int
    output: str
    run_results: dict[str, t.Any]


@pytest.fixture(autouse=True)
def local_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open the tenant keyring with its local master-key file, as the demo does."""
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    monkeypatch.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")


def run_dbt_build(home: Path, project: Path, work: Path) -> DbtBuild:
    """Run `dbt build` on `project` for the demo tenant of `home`. dbt writes its files under `work` only."""
    work.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DBT_", "SPENDLAKE_"))}
    env.update(
        {
            "SPENDLAKE_HOME": str(home),
            "SPENDLAKE_TENANT": DEMO_TENANT,
            "SPENDLAKE_ALLOW_LOCAL_MASTER_KEY": "true",
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    command = [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(project)]
    completed = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)

    results_path = work / "target" / "run_results.json"
    run_results = json.loads(results_path.read_text()) if results_path.exists() else {"results": []}
    return DbtBuild(completed.returncode, completed.stdout + completed.stderr, run_results)


def dbt_output_files() -> set[Path]:
    """Files that a dbt run ignoring DBT_TARGET_PATH or DBT_LOG_PATH would leave in the checkout."""
    names = ("target", "logs", "dbt_packages", ".user.yml")
    return {path for name in names for path in (DBT_PROJECT / name).rglob("*")} | {
        DBT_PROJECT / name for name in names if (DBT_PROJECT / name).exists()
    }


@pytest.fixture(scope="module")
def built(demo: dict[str, t.Any], tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    """Copy the demo's warehouse (loaded by the demo's Meltano job), then run `dbt build` of transform/ on it once."""
    base = tmp_path_factory.mktemp("models")
    home = base / "home"
    shutil.copytree(demo["home"], home)
    patcher = pytest.MonkeyPatch()
    patcher.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    patcher.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")

    checkout_files_before = dbt_output_files()
    build = run_dbt_build(home, DBT_PROJECT, base / "dbt")

    yield {
        "base": base,
        "home": home,
        "build": build,
        "checkout_files_before": checkout_files_before,
        "checkout_files_after": dbt_output_files(),
    }
    patcher.undo()


def query(home: Path, sql: str) -> list[tuple[t.Any, ...]]:
    connection = connect_warehouse(home, DEMO_TENANT, read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def declared_generic_tests() -> int:
    """Count the generic tests declared in the project's schema files (model, seed and column level)."""
    count = 0
    for path in [*DBT_PROJECT.joinpath("models").rglob("*.yml"), *DBT_PROJECT.joinpath("seeds").glob("*.yml")]:
        document = yaml.safe_load(path.read_text()) or {}
        for node in [*document.get("models", []), *document.get("seeds", [])]:
            count += len(node.get("data_tests", []))
            count += sum(len(column.get("data_tests", [])) for column in node.get("columns", []))
    return count


def results_by_type(run_results: dict[str, t.Any]) -> dict[str, list[dict[str, t.Any]]]:
    found: dict[str, list[dict[str, t.Any]]] = {}
    for result in run_results["results"]:
        found.setdefault(result["unique_id"].split(".")[0], []).append(result)
    return found


def failed_tests(run_results: dict[str, t.Any]) -> dict[str, int]:
    """Map the name of each failed test to its number of failing rows."""
    return {
        result["unique_id"].split(".")[2]: result["failures"]
        for result in run_results["results"]
        if result["unique_id"].startswith("test.") and result["status"] == "fail"
    }


def test_build_succeeds(built: dict[str, t.Any]) -> None:
    build: DbtBuild = built["build"]

    assert build.returncode == 0, build.output[-6000:]
    assert "ERROR=0" in build.output


def test_build_runs_every_node(built: dict[str, t.Any]) -> None:
    by_type = results_by_type(built["build"].run_results)
    singular_tests = len(list(DBT_PROJECT.joinpath("tests").glob("*.sql")))

    assert len(by_type["model"]) == len(list(DBT_PROJECT.joinpath("models").rglob("*.sql")))
    assert len(by_type["seed"]) == len(list(DBT_PROJECT.joinpath("seeds").glob("*.csv")))
    assert len(by_type["test"]) == declared_generic_tests() + singular_tests
    assert len(by_type["model"]) == 17
    assert singular_tests >= 8


def test_every_node_passes(built: dict[str, t.Any]) -> None:
    results = built["build"].run_results["results"]
    statuses = {result["unique_id"]: result["status"] for result in results}
    not_passing = {node: status for node, status in statuses.items() if status not in ("success", "pass")}

    assert len(results) > 100
    assert not_passing == {}


def test_marts_have_rows(built: dict[str, t.Any]) -> None:
    counts = {mart: query(built["home"], f"select count(*) from marts.{mart}")[0][0] for mart in MARTS}  # noqa: S608

    assert all(count > 0 for count in counts.values()), counts
    assert counts["source_freshness"] == 5


def test_amounts_in_reporting_currency_are_unchanged(built: dict[str, t.Any]) -> None:
    rows = query(
        built["home"],
        "select store, sum(gross), sum(gross_rc), count(*) from marts.revenue_daily "
        "where currency = 'USD' group by store order by store",
    )

    assert [store for store, *_ in rows] == ["magento", "stripe"]
    for store, gross, gross_rc, days in rows:
        assert days > 0, store
        assert gross == gross_rc, store


def test_no_personal_column_in_models(built: dict[str, t.Any]) -> None:
    columns = query(
        built["home"],
        "select table_schema || '.' || table_name || '.' || column_name from information_schema.columns "
        "where table_schema in ('staging', 'marts')",
    )

    assert len(columns) > 100
    assert [name for (name,) in columns if PERSONAL_COLUMN.search(name.split(".")[-1])] == []


def duckdb_files(folder: Path) -> list[Path]:
    """Files under `folder` that start with a DuckDB database header."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(12)[8:12] == DUCKDB_MAGIC:
                    found.append(path)
    return found


def test_no_plain_database_written(built: dict[str, t.Any]) -> None:
    warehouse = duckdb_path(built["home"], DEMO_TENANT)

    assert duckdb_files(built["base"]) == [warehouse]
    with pytest.raises(duckdb.CatalogException, match="without a key"):
        duckdb.connect(str(warehouse), read_only=True)
    assert built["checkout_files_after"] == built["checkout_files_before"]


def copy_project_without_rates(target: Path, currency: str) -> int:
    """Copy transform/ to `target`, links as files, without the `currency` rows of the fx_rates seed.

    Return the number of rows removed.
    """
    shutil.copytree(DBT_PROJECT, target, ignore=shutil.ignore_patterns("target", "logs"))
    seed = target / "seeds" / "fx_rates.csv"
    with seed.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    remaining = [row for row in rows if row["currency"] != currency]

    with seed.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["rate_date", "currency", "per_eur"])
        writer.writeheader()
        writer.writerows(remaining)
    return len(rows) - len(remaining)


def test_missing_rate_fails_build(built: dict[str, t.Any], tmp_path: Path) -> None:
    nzd_ad_rows = query(built["home"], "select count(*) from marts.ad_performance_daily where currency = 'NZD'")[0][0]
    nzd_traffic_rows = query(built["home"], "select count(*) from marts.traffic_daily where currency = 'NZD'")[0][0]
    home = tmp_path / "home"
    shutil.copytree(built["home"], home)
    removed = copy_project_without_rates(tmp_path / "transform", "NZD")

    build = run_dbt_build(home, tmp_path / "transform", tmp_path / "dbt")
    failed = failed_tests(build.run_results)

    assert removed == 14
    assert nzd_ad_rows > 0
    assert build.returncode == 1, build.output[-6000:]
    assert failed["not_null_ad_performance_daily_spend_rc"] == nzd_ad_rows
    assert failed["not_null_ad_performance_daily_conversion_value_rc"] == nzd_ad_rows
    assert failed["not_null_traffic_daily_revenue_rc"] == nzd_traffic_rows
    assert f"FAIL {nzd_ad_rows} not_null_ad_performance_daily_spend_rc" in build.output
    assert duckdb_files(tmp_path) == [duckdb_path(home, DEMO_TENANT)]
