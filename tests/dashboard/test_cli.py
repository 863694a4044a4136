"""`spendlake dashboard`: output file and folders, printed KPIs, one-line errors."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from spendlake.cli import main
from tests.dashboard.marts import TENANT, create_marts, expected_kpis


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["dashboard", "--tenant", TENANT, "--home", str(home), *args])
    return result.exit_code, result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_output_private(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    code, output = run(spendlake_env)

    path = spendlake_env / "warehouse" / TENANT / "dashboard" / "dashboard.html"
    assert code == 0, output
    assert output.splitlines()[0] == f"Dashboard written to {path}"
    assert path.stat().st_size > 4_000_000
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_prints_blended_kpis(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    expected = expected_kpis(spendlake_env)

    code, output = run(spendlake_env)

    lines = output.splitlines()
    assert code == 0, output
    assert lines[1] == "Period 2026-02-02 to 2026-03-01 (28 days), compared with 2026-01-05 to 2026-02-01"
    assert lines[2].split()[:3] == ["Spend", "EUR", f"{expected['spend']['value']:,.2f}"]
    assert lines[3].split()[:3] == ["Revenue", "EUR", f"{expected['revenue']['value']:,.2f}"]
    assert lines[4].split()[:2] == ["ROAS", f"{expected['roas']['value']:.2f}"]
    assert lines[5].split()[:3] == ["CPA", "EUR", f"{expected['cpa']['value']:,.2f}"]
    assert lines[6].split()[:2] == ["MER", f"{expected['mer']['value']:.2f}"]


def test_output_and_days_options(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    target = tmp_path / "reports" / "acme.html"

    code, output = run(spendlake_env, "--output", str(target), "--days", "7")

    assert code == 0, output
    assert target.is_file()
    assert mode(target) == 0o600
    assert "Period 2026-02-23 to 2026-03-01 (7 days)" in output
    assert not (spendlake_env / "warehouse" / TENANT / "dashboard").exists()


def test_rewrite_leaves_no_temporary_file(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    folder = spendlake_env / "warehouse" / TENANT / "dashboard"
    folder.mkdir(parents=True)
    (folder / "dashboard.html").write_text("old page")

    code, output = run(spendlake_env)

    assert code == 0, output
    assert sorted(path.name for path in folder.iterdir()) == ["dashboard.html"]
    assert (folder / "dashboard.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_missing_warehouse_one_line(spendlake_env: Path) -> None:
    code, output = run(spendlake_env)

    assert code == 1
    assert len(output.strip().splitlines()) == 1
    assert "Tenant 'acme' has no warehouse" in output
    assert "Traceback" not in output
    assert not (spendlake_env / "warehouse" / TENANT / "dashboard").exists()


def test_missing_marts_one_line(spendlake_env: Path) -> None:
    from targets.warehouse.duckdb_store import connect_warehouse

    connect_warehouse(spendlake_env, TENANT, read_only=False).close()

    code, output = run(spendlake_env)

    assert code == 1
    assert len(output.strip().splitlines()) == 1
    assert output.strip().endswith("run `spendlake transform` first.")


def test_empty_marts_summary(spendlake_env: Path) -> None:
    create_marts(spendlake_env, with_rows=False)

    code, output = run(spendlake_env)

    assert code == 0, output
    assert output.splitlines()[1] == "The marts have no rows yet: every KPI is n/a."


def test_invalid_tenant_and_days(spendlake_env: Path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--tenant", "../x", "--home", str(spendlake_env)])
    assert result.exit_code == 1
    assert "Invalid tenant id" in result.output

    code, output = run(spendlake_env, "--days", "0")
    assert code == 2
    assert "--days" in output
