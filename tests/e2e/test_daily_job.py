"""End to end: the demo's `daily` Meltano job builds the models, passes their tests and writes the dashboard.

The session's demo run (the `demo` fixture) ran the job twice. These tests
read what it left: dbt's run results, the dashboard file and the marts, and
open the dashboard in headless Chromium.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest

from spendlake.demo import DEMO_TENANT, MELTANO_QUIET_ENV
from spendlake.paths import dashboard_path, dbt_work_dir
from tests.dashboard.browser import CHARTS, PageRecord, launched_browser, screenshot_folder
from tests.dashboard.marts import expected_kpis

pytestmark = pytest.mark.e2e

KPI_KEYS = ["spend", "revenue", "roas", "cpa", "mer"]


@pytest.fixture(autouse=True)
def local_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open the demo's keyring with its local master-key file, as the demo itself does."""
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    monkeypatch.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")


def test_dbt_build_passed_every_test(demo: dict[str, t.Any]) -> None:
    run_results = json.loads((dbt_work_dir(demo["home"], DEMO_TENANT) / "target" / "run_results.json").read_text())
    statuses = [result["status"] for result in run_results["results"]]
    tests = [result for result in run_results["results"] if result["unique_id"].startswith("test.")]
    models = [result for result in run_results["results"] if result["unique_id"].startswith("model.")]

    assert run_results["args"]["which"] == "build"
    assert len(tests) > 100
    assert len(models) >= 16
    assert set(statuses) <= {"success", "pass"}, [r["unique_id"] for r in run_results["results"] if r["status"] not in ("success", "pass")]


def test_demo_prints_dashboard_and_kpis(demo: dict[str, t.Any]) -> None:
    path = dashboard_path(demo["home"], DEMO_TENANT)
    out = demo["out"]

    assert f"Dashboard: {path}" in out
    assert path.stat().st_size > 4_000_000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for label in ("Spend", "Revenue", "ROAS", "CPA", "MER"):
        assert f"\n  {label} " in out, label


def test_schedule_runs_daily_job(demo: dict[str, t.Any]) -> None:
    env = {**os.environ, **MELTANO_QUIET_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "meltano"), "schedule", "list", "--format=json"],
        cwd=demo["project"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr[-2000:]
    schedules = {item["name"]: item for item in json.loads(listed.stdout)["schedules"]["job"]}
    assert schedules["daily"]["interval"] == "@daily"
    assert schedules["daily"]["job"]["name"] == "daily"
    tasks = schedules["daily"]["job"]["tasks"]
    assert [task.split()[0] for task in tasks[:5]] == [
        "tap-google-ads",
        "tap-facebook",
        "tap-google-analytics",
        "tap-stripe",
        "tap-magento",
    ]
    assert tasks[5:] == ["dbt-spendlake:build", "dashboard:render"]


@pytest.fixture(scope="module")
def opened_dashboard(demo: dict[str, t.Any]) -> Iterator[PageRecord]:
    with launched_browser() as browser:
        record = PageRecord(browser, dashboard_path(demo["home"], DEMO_TENANT))
        yield record
        record.page.close()


def test_dashboard_opens_cleanly_in_chromium(opened_dashboard: PageRecord) -> None:
    assert opened_dashboard.messages("error") == []
    assert opened_dashboard.page_errors == []
    assert opened_dashboard.violations() == []
    assert opened_dashboard.requests == [opened_dashboard.url]
    for name in CHARTS:
        assert opened_dashboard.page.locator(f"[data-chart={name}] .plotly-graph-div svg.main-svg").count() >= 1, name


def test_kpi_values_fit_their_tiles(opened_dashboard: PageRecord) -> None:
    overflowing = opened_dashboard.page.eval_on_selector_all(
        ".tile-value", "values => values.filter(value => value.scrollWidth > value.clientWidth).map(value => value.innerText)"
    )

    assert overflowing == []


def test_dashboard_kpis_equal_the_marts(demo: dict[str, t.Any], opened_dashboard: PageRecord, tmp_path: Path) -> None:
    # The period ends the day before the page was made, in the reporting time zone, so use the page's own time.
    generated_at = opened_dashboard.page.get_attribute("[data-generated-at]", "data-generated-at")
    expected = expected_kpis(demo["home"], DEMO_TENANT, now=dt.datetime.fromisoformat(generated_at))
    displayed = opened_dashboard.page.eval_on_selector_all(
        "[data-kpi]", "tiles => tiles.map(tile => [tile.dataset.kpi, tile.querySelector('.tile-value').dataset.value])"
    )
    screenshot = screenshot_folder(tmp_path) / "demo-dashboard.png"
    opened_dashboard.page.screenshot(path=str(screenshot), full_page=True)

    assert [key for key, _ in displayed] == KPI_KEYS
    for key, value in displayed:
        assert expected[key]["value"] is not None, key
        assert float(value) == expected[key]["value"], key
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000
