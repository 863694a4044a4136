"""`spendlake transform`: dbt-duckdb builds models inside the tenant's encrypted warehouse, through the plugin.

A one-model dbt project in a temporary folder replaces transform/, so
these tests check the command and the plugin, not the marketing models.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from privacy.catalog import stored_tables
from spendlake.paths import dbt_work_dir, duckdb_path
from spendlake.tenant_lock import TenantLock
from targets.warehouse.duckdb_store import connect_warehouse
from tests.target.support import TENANT, record_message, run_target, schema_message, state_message

SPENDLAKE = Path(sys.executable).parent / "spendlake"
REPO = Path(__file__).resolve().parents[2]

PROPERTIES = {"id": {"type": "string"}, "cost_micros": {"type": ["integer", "null"]}}


def write_dbt_project(folder: Path) -> Path:
    """Write a dbt project with the repository's profile and schema macro, and one table model over google_ads.costs."""
    (folder / "models").mkdir(parents=True)
    (folder / "macros").mkdir()
    (folder / "dbt_project.yml").write_text(
        "name: probe\nversion: '1.0.0'\nconfig-version: 2\nprofile: spendlake\n"
        "flags: {send_anonymous_usage_stats: false}\n"
        "vars: {reporting_currency: USD}\n"
        "models:\n  probe:\n    +database: wh\n    +schema: marts\n    +materialized: table\n"
    )
    (folder / "profiles.yml").write_text((REPO / "transform" / "profiles.yml").read_text())
    (folder / "macros" / "schema.sql").write_text((REPO / "transform" / "macros" / "generate_schema_name.sql").read_text())
    (folder / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: google_ads\n    database: wh\n    tables:\n      - name: costs\n"
    )
    (folder / "models" / "spend.sql").write_text(
        "select '{{ var(\"reporting_currency\") }}' as currency, sum(cost_micros) / 1e6 as spend "
        "from {{ source('google_ads', 'costs') }}"
    )
    (folder / "models" / "reporting_settings.sql").write_text(
        "select '{{ var(\"reporting_currency\") }}' as reporting_currency, "
        "'{{ var(\"reporting_timezone\", \"UTC\") }}' as reporting_timezone"
    )
    (folder / "seeds").mkdir()
    (folder / "seeds" / "fx_rates.csv").write_text("rate_date,currency,per_eur\n2020-01-01,EUR,1\n2020-01-01,USD,1.1\n2020-01-01,NZD,1.8\n")
    return folder


@pytest.fixture
def loaded_home(spendlake_env: Path) -> Path:
    """A tenant warehouse with google_ads.costs loaded by target-warehouse (three rows, 6.5 units in all)."""
    lines = [
        schema_message("costs", PROPERTIES, ["id"]),
        record_message("costs", {"id": "a", "cost_micros": 1_500_000}),
        record_message("costs", {"id": "b", "cost_micros": 2_000_000}),
        record_message("costs", {"id": "c", "cost_micros": 3_000_000}),
        state_message({"done": True}),
    ]
    assert run_target(spendlake_env, lines, source="google_ads")[-1]["done"] is True
    return spendlake_env


def transform(home: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(SPENDLAKE), "transform", "--tenant", TENANT, "--home", str(home), "--project-dir", str(project), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_models_are_built_inside_the_encrypted_warehouse(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(loaded_home, project, "build", "--reporting-currency", "eur")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS=3" in result.stdout
    connection = connect_warehouse(loaded_home, TENANT, read_only=True)
    try:
        assert connection.execute("select currency, spend from marts.spend").fetchall() == [("EUR", 6.5)]
        # The model is not a loaded stream, so privacy tools and the demo summary leave it out.
        assert stored_tables(connection) == [("google_ads", "costs")]
    finally:
        connection.close()
    with pytest.raises(duckdb.Error, match="encrypt"):
        duckdb.connect(str(duckdb_path(loaded_home, TENANT)), read_only=True)


def test_dbt_output_stays_in_tenant_folder(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")
    before = sorted(path.relative_to(project) for path in project.rglob("*"))

    result = transform(loaded_home, project, "run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(path.relative_to(project) for path in project.rglob("*")) == before
    work = dbt_work_dir(loaded_home, TENANT)
    assert (work / "target" / "run_results.json").is_file()
    assert [path for path in work.rglob("*.log")] == []
    assert [path.name for path in loaded_home.rglob("*.duckdb")] == ["warehouse.duckdb"]


def test_busy_tenant_stops_dbt(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")
    lock = TenantLock(loaded_home, TENANT, "the test")
    try:
        result = transform(loaded_home, project, "run")
    finally:
        lock.release()

    assert result.returncode != 0
    assert "busy" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--reporting-currency", "XYZ", "Invalid reporting currency 'XYZ' (option --reporting-currency)"),
        ("--reporting-currency", " ", "Invalid reporting currency ' ' (option --reporting-currency)"),
        ("--reporting-timezone", "Mars/Olympus", "Invalid reporting time zone 'Mars/Olympus' (option --reporting-timezone)"),
    ],
)
def test_bad_reporting_setting_names_the_option(loaded_home: Path, tmp_path: Path, option: str, value: str, message: str) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(loaded_home, project, "build", option, value)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_tenant_without_warehouse_rejected(spendlake_env: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(spendlake_env, project, "build")

    assert result.returncode == 1
    assert f"Tenant '{TENANT}' has no warehouse yet" in result.stderr
    assert not duckdb_path(spendlake_env, TENANT).exists()


def test_missing_project_names_the_folder(loaded_home: Path, tmp_path: Path) -> None:
    result = transform(loaded_home, tmp_path / "nowhere", "build")

    assert result.returncode == 1
    assert f"No dbt project at {tmp_path / 'nowhere'}" in result.stderr


def mart_rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    connection = connect_warehouse(home, TENANT, read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_settings_kept_from_last_build(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    first = transform(loaded_home, project, "build", "--reporting-currency", "NZD", "--reporting-timezone", "pacific/auckland")
    second = transform(loaded_home, project, "run")

    assert first.returncode == 0, first.stdout + first.stderr
    assert "Reporting currency NZD (option), time zone Pacific/Auckland (option)." in first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Reporting currency NZD (kept from the last build), time zone Pacific/Auckland (kept from the last build)." in second.stderr
    assert mart_rows(loaded_home, "select reporting_currency, reporting_timezone from marts.reporting_settings") == [("NZD", "Pacific/Auckland")]
    assert mart_rows(loaded_home, "select currency from marts.spend") == [("NZD",)]


def test_vars_set_the_currency(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(loaded_home, project, "--select", "spend", "--vars", "{reporting_currency: usd}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reporting currency USD (--vars)" in result.stderr
    assert mart_rows(loaded_home, "select currency from marts.spend") == [("USD",)]


def test_vars_and_option_conflict(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(loaded_home, project, "--reporting-currency", "EUR", "build", "--vars", "{reporting_currency: USD}")

    assert result.returncode == 1
    assert "Both --vars and the option --reporting-currency set reporting_currency: give it once." in result.stderr


def test_currency_without_rate_stops_before_dbt(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(loaded_home, project, "build", "--reporting-currency", "JPY")

    assert result.returncode == 1
    assert "No exchange rate for the reporting currency JPY" in result.stderr
    assert "EUR, NZD, USD" in result.stderr
    assert not (dbt_work_dir(loaded_home, TENANT) / "target").exists()


def test_defaults_named_on_first_build(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(loaded_home, project, "run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reporting currency USD (the dbt project's default), time zone not set." in result.stderr


def test_test_with_other_settings_refused(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")
    built = transform(loaded_home, project, "build", "--reporting-currency", "NZD")

    result = transform(loaded_home, project, "test", "--reporting-currency", "USD")

    assert built.returncode == 0, built.stdout + built.stderr
    assert result.returncode == 1
    assert "The marts were built with NZD and UTC, so `test` with USD and UTC would check them against other rates" in result.stderr


def test_partial_build_keeps_settings(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")
    built = transform(loaded_home, project, "build", "--reporting-currency", "NZD")

    result = transform(loaded_home, project, "run", "--select", "spend", "--reporting-currency", "EUR")

    assert built.returncode == 0, built.stdout + built.stderr
    assert result.returncode == 1
    assert "needs a build of the whole project" in result.stderr
    assert mart_rows(loaded_home, "select currency from marts.spend") == [("NZD",)]


def test_clean_removes_tenant_target(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")
    built = transform(loaded_home, project, "run")
    target = dbt_work_dir(loaded_home, TENANT) / "target"
    assert built.returncode == 0, built.stdout + built.stderr
    assert target.is_dir()

    result = transform(loaded_home, project, "clean")

    assert result.returncode == 0, result.stdout + result.stderr
    assert not target.exists()


def test_global_flag_before_command(loaded_home: Path, tmp_path: Path) -> None:
    project = write_dbt_project(tmp_path / "dbt")

    result = transform(loaded_home, project, "--", "--no-use-colors", "ls", "--resource-type", "model")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "probe.spend" in result.stdout
