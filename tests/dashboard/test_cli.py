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


def test_summary_without_analytics(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["google_analytics"])
    expected = expected_kpis(spendlake_env)

    code, output = run(spendlake_env)

    lines = output.splitlines()
    assert code == 0, output
    assert lines[2].split()[:3] == ["Spend", "EUR", f"{expected['spend']['value']:,.2f}"]
    assert lines[4].split() == ["ROAS", "n/a", "n/a", "(previous", "n/a)"]
    assert lines[5].split() == ["CPA", "n/a", "n/a", "(previous", "n/a)"]
    assert lines[6].split()[:2] == ["MER", f"{expected['mer']['value']:.2f}"]
    assert lines[7:] == [
        "  Google Analytics 4 is not loaded, so conversions, attributed revenue, CPA and ROAS are not available."
    ]


def test_summary_without_ads_and_stores(spendlake_env: Path) -> None:
    create_marts(spendlake_env, unloaded=["google_ads", "facebook", "stripe", "magento"])

    code, output = run(spendlake_env)

    lines = output.splitlines()
    assert code == 0, output
    assert [line.split()[1] for line in lines[2:7]] == ["n/a"] * 5
    assert lines[7:] == [
        "  Neither Google Ads nor Meta (Facebook) is loaded, so spend, ROAS, CPA and MER are not available.",
        "  Neither Stripe nor Magento is loaded, so store revenue and MER are not available.",
    ]


def test_tenant_from_environment(spendlake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_marts(spendlake_env)
    monkeypatch.setenv("SPENDLAKE_TENANT", TENANT)

    result = CliRunner().invoke(main, ["dashboard", "--quiet"])

    assert result.exit_code == 0, result.output
    assert result.output == f"{spendlake_env / 'warehouse' / TENANT / 'dashboard' / 'dashboard.html'}\n"


def test_tenant_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPENDLAKE_TENANT", raising=False)

    result = CliRunner().invoke(main, ["dashboard"])
    help_text = CliRunner().invoke(main, ["dashboard", "--help"]).output

    assert result.exit_code == 2
    assert "Missing option '--tenant'" in result.output
    assert "SPENDLAKE_TENANT" in help_text


@pytest.mark.parametrize("inside", ["warehouse/acme/warehouse.duckdb", "keys/acme.json"])
def test_output_over_tenant_files_rejected(spendlake_env: Path, inside: str) -> None:
    # A typo in --output must not replace the encrypted database or crypto-shred the tenant's keyring.
    create_marts(spendlake_env)
    target = spendlake_env / inside
    before = target.read_bytes()

    code, output = run(spendlake_env, "--output", str(target))

    dashboard_folder = spendlake_env / "warehouse" / TENANT / "dashboard"
    assert_one_line_error(
        code,
        output,
        f"The output path {target} is inside the spendlake home {spendlake_env}",
        f"Pass a path outside it to --output, or one inside {dashboard_folder}.",
    )
    assert target.read_bytes() == before
    assert expected_kpis(spendlake_env)["spend"]["value"] is not None


def test_output_new_file_in_home_rejected(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    targets = [
        spendlake_env / "report.html",
        spendlake_env / "warehouse" / TENANT / "report.html",
        spendlake_env / "warehouse" / "other" / "dashboard" / "dashboard.html",
        spendlake_env / "warehouse" / TENANT / "dashboard",
    ]

    for target in targets:
        code, output = run(spendlake_env, "--output", str(target))

        assert_one_line_error(code, output, f"The output path {target} is inside the spendlake home")
        assert not target.exists()


def test_output_in_dashboard_folder(spendlake_env: Path) -> None:
    create_marts(spendlake_env)
    target = spendlake_env / "warehouse" / TENANT / "dashboard" / "weekly" / "acme.html"

    code, output = run(spendlake_env, "--output", str(target))

    assert code == 0, output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_output_link_into_home_rejected(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    keyring = spendlake_env / "keys" / f"{TENANT}.json"
    before = keyring.read_bytes()
    link = tmp_path / "page.html"
    link.symlink_to(keyring)
    linked_folder = tmp_path / "reports"
    linked_folder.symlink_to(spendlake_env / "warehouse" / TENANT)

    code, output = run(spendlake_env, "--output", str(link))
    folder_code, folder_output = run(spendlake_env, "--output", str(linked_folder / "warehouse.duckdb"))

    assert_one_line_error(code, output, f"The output path {keyring} is inside the spendlake home")
    database = spendlake_env / "warehouse" / TENANT / "warehouse.duckdb"
    assert_one_line_error(folder_code, folder_output, f"The output path {database} is inside the spendlake home")
    assert keyring.read_bytes() == before
    assert expected_kpis(spendlake_env)["spend"]["value"] is not None


def test_output_existing_non_html_rejected(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")

    code, output = run(spendlake_env, "--output", str(notes))

    assert_one_line_error(
        code,
        output,
        f"The output path {notes} is an existing file whose name does not end in .html or .htm",
        "Pass a new file name or an HTML file to --output.",
    )
    assert notes.read_text() == "keep me"


@pytest.mark.parametrize("name", ["old.html", "old.htm", "OLD.HTML"])
def test_output_existing_html_replaced(spendlake_env: Path, tmp_path: Path, name: str) -> None:
    create_marts(spendlake_env)
    target = tmp_path / name
    target.write_text("old page")

    code, output = run(spendlake_env, "--output", str(target), "--quiet")

    assert code == 0, output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_output_new_file_any_name(spendlake_env: Path, tmp_path: Path) -> None:
    create_marts(spendlake_env)
    target = tmp_path / "report"

    code, output = run(spendlake_env, "--output", str(target), "--quiet")

    assert code == 0, output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("ending", ["/", "/."])
def test_output_folder_name_rejected(spendlake_env: Path, tmp_path: Path, ending: str) -> None:
    create_marts(spendlake_env)
    raw = f"{tmp_path / 'new'}{ending}"

    code, output = run(spendlake_env, "--output", raw)

    assert_one_line_error(
        code,
        output,
        f"The output path {raw} names a folder, not a file.",
        f"Pass a file name to --output, such as {tmp_path / 'new' / 'dashboard.html'}.",
    )
    assert not (tmp_path / "new").exists()
