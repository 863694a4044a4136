"""`spendlake dashboard`: output file and folders, printed KPIs, one-line errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
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
    assert lines[1] == (
        "Period 2026-02-02 to 2026-03-01 (28 days, time zone Europe/Berlin), compared with 2026-01-05 to 2026-02-01"
    )
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
    assert "Period 2026-02-23 to 2026-03-01 (7 days, time zone Europe/Berlin)" in output
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


def test_one_day_singular(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    code, output = run(spendlake_env, "--days", "1")

    assert code == 0, output
    assert output.splitlines()[1] == (
        "Period 2026-03-01 to 2026-03-01 (1 day, time zone Europe/Berlin), compared with 2026-02-28 to 2026-02-28"
    )


def test_old_marts_assume_utc(spendlake_env: Path) -> None:
    create_marts(spendlake_env, timezone=None)

    code, output = run(spendlake_env)

    lines = output.splitlines()
    assert code == 0, output
    assert "(28 days, time zone UTC)" in lines[1]
    assert lines[2] == (
        "  The marts have no reporting_settings table, so UTC is assumed. "
        "Run `spendlake transform` to record the zone."
    )
    assert lines[3].split()[0] == "Spend"


def test_quiet_prints_path_only(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    target = tmp_path / "acme.html"

    code, output = run(spendlake_env, "--output", str(target), "--quiet")

    assert code == 0, output
    assert output == f"{target}\n"
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_quiet_default_path(spendlake_env: Path) -> None:
    create_marts(spendlake_env)

    code, output = run(spendlake_env, "--quiet")

    assert code == 0, output
    assert output == f"{spendlake_env / 'warehouse' / TENANT / 'dashboard' / 'dashboard.html'}\n"


def assert_one_line_error(code: int, output: str, *parts: str) -> None:
    assert code == 1, output
    assert len(output.strip().splitlines()) == 1, output
    assert output.startswith("Error: ")
    for part in parts:
        assert part in output


def test_output_fifo_rejected(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    code, output = run(spendlake_env, "--output", str(fifo))

    assert_one_line_error(code, output, f"The output path {fifo} is a FIFO, not a regular file", "--output")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pipe", "spendlake-home"]


def test_output_link_to_fifo_rejected(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "page.html"
    link.symlink_to(fifo)

    code, output = run(spendlake_env, "--output", str(link))

    assert_one_line_error(code, output, f"The output path {fifo} is a FIFO")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert link.is_symlink()


def test_output_folder_rejected(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    folder = tmp_path / "reports"
    folder.mkdir()

    code, output = run(spendlake_env, "--output", str(folder))

    assert_one_line_error(code, output, f"The output path {folder} is a folder, not a regular file")
    assert list(folder.iterdir()) == []


def test_default_path_fifo_rejected(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    folder = spendlake_env / "warehouse" / TENANT / "dashboard"
    folder.mkdir()
    os.mkfifo(folder / "dashboard.html")

    code, output = run(spendlake_env)

    assert_one_line_error(code, output, "dashboard.html is a FIFO")
    assert stat.S_ISFIFO((folder / "dashboard.html").lstat().st_mode)


@pytest.mark.parametrize("below", ["out.html", "sub/out.html"])
def test_parent_is_file_one_line(spendlake_env: Path, tmp_path: Path, below: str) -> None:
    # A regular file in the folder path stops root as well as other users.
    create_marts(spendlake_env)
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")

    code, output = run(spendlake_env, "--output", str(blocker / below))

    assert_one_line_error(code, output, f"Creating the folder {blocker} for the dashboard failed", "--output")
    assert blocker.read_text() == "keep me"


def test_new_parent_folders_private(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    target = shared / "a" / "b" / "c" / "acme.html"

    code, output = run(spendlake_env, "--output", str(target))

    assert code == 0, output
    assert mode(shared / "a") == 0o700
    assert mode(shared / "a" / "b") == 0o700
    assert mode(shared / "a" / "b" / "c") == 0o700
    assert mode(target) == 0o600
    assert mode(shared) == 0o755
