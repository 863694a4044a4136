"""Fixtures for target-warehouse tests."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh spendlake home with a random master key in the environment."""
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", raising=False)
    monkeypatch.delenv("SPENDLAKE_HOME", raising=False)
    return tmp_path / "home"
