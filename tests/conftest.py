"""Shared fixtures: an isolated spendlake home and master key for every test."""

from __future__ import annotations

import base64
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
