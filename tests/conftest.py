"""Shared fixtures: an isolated spendlake home and master key for every test."""

from __future__ import annotations

import base64
import io
import json
import os
import typing as t
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def spendlake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SPENDLAKE_HOME at a fresh folder and set a random master key."""
    home = tmp_path / "spendlake-home"
    monkeypatch.setenv("SPENDLAKE_HOME", str(home))
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", raising=False)
    return home


@pytest.fixture
def fixtures_dir() -> Path:
    """The shared public API payloads; skip where absent, but fail under CI."""
    if not FIXTURES.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"The shared fixtures folder {FIXTURES} is missing, and CI=true requires it.")
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


def pytest_collection_modifyitems(config: pytest.Config, items: list[t.Any]) -> None:
    """Mark tests under tests/e2e as end-to-end."""
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    """Run the demo twice in a fresh project folder and home; the second start adds a sandbox tick.

    Shared by the end-to-end tests that only read its results; a test that
    changes the warehouse works on a copy of `home`.
    """
    from sandbox.server import state_path
    from spendlake.demo import run_demo
    from tests.e2e.project import copy_project_files

    root = tmp_path_factory.mktemp("demo")
    project = root / "project"
    project.mkdir()
    copy_project_files(project)
    home = project / ".spendlake"
    patcher = pytest.MonkeyPatch()
    patcher.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    patcher.delenv("MELTANO_STATE_BACKEND_URI", raising=False)
    # run_demo sets it in this process, and the patcher removes it again afterwards.
    patcher.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")

    out = io.StringIO()
    summary = run_demo(home, project_root=project, out=out)
    second_summary = run_demo(home, project_root=project, out=out)
    state = json.loads(state_path(home / "sandbox").read_text())

    yield {
        "project": project,
        "home": home,
        "summary": summary,
        "second_summary": second_summary,
        "out": out.getvalue(),
        "state": state,
    }
    patcher.undo()
