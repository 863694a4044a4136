"""`spendlake new-source`: the scaffold is a valid, installable source package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from click.testing import CliRunner

from spendlake.cli import main
from taps.engine.declaration import load_declaration
from taps.engine.tap import build_tap_class

REPO = Path(__file__).resolve().parents[2]


def test_scaffold_files_are_valid(tmp_path: Path) -> None:
    meltano_yml = tmp_path / "meltano.yml"
    meltano_yml.write_text((REPO / "meltano.yml").read_text())

    result = CliRunner().invoke(main, ["new-source", "crm_leads", "--dir", str(tmp_path), "--meltano-yml", str(meltano_yml)])

    assert result.exit_code == 0, result.output
    folder = tmp_path / "spendlake-source-crm-leads"
    source = load_declaration(folder / "spendlake_source_crm_leads" / "source.yaml")
    assert build_tap_class(source).name == "tap-crm-leads"
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"tap-crm-leads": "spendlake_source_crm_leads:TapCrmLeads.cli"}
    assert project["entry-points"]["spendlake.sources"] == {"crm_leads": "spendlake_source_crm_leads"}
    extractors = yaml.safe_load(meltano_yml.read_text())["plugins"]["extractors"]
    assert extractors[0]["name"] == "tap-crm-leads"
    assert [e["name"] for e in extractors[1:]] == ["tap-stripe", "tap-google-ads", "tap-facebook", "tap-google-analytics", "tap-magento", "tap-toy"]


def test_scaffold_test_passes(tmp_path: Path) -> None:
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as cwd:  # no meltano.yml here, so none is edited
        created = runner.invoke(main, ["new-source", "crm"])
        folder = Path(cwd) / "spendlake-source-crm"
    assert created.exit_code == 0, created.output
    assert "meltano.yml now lists" not in created.output

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
        cwd=folder,
        env={"PYTHONPATH": f"{folder}:{REPO}", "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 passed" in result.stdout


def test_invalid_name_rejected(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new-source", "Bad-Name", "--dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "Invalid source name 'Bad-Name'" in result.output
