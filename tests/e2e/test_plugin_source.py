"""A source installed as a plugin package loads through `meltano run` like a built-in one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.server import start_server
from sandbox.stripe_api import DEMO_API_KEY
from sandbox.stripe_data import StripeWorld
from spendlake.demo import MELTANO_QUIET_ENV
from taps.engine.plugins import installed_sources
from targets.warehouse.duckdb_store import connect_warehouse
from tests.e2e.project import copy_project_files

BIN = Path(sys.executable).parent
MASTER_KEY = "dGhpcyBpcyBhIHRlc3QgbWFzdGVyIGtleSBvZiAzMiE="


@pytest.fixture(autouse=True)
def spendlake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use one master key for the run and the queries that inspect it."""
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", MASTER_KEY)


def test_toy_plugin_is_discovered() -> None:
    sources = installed_sources()

    assert "toy" in sources
    assert [stream.name for stream in sources["toy"].streams] == ["leads"]
    assert (BIN / "tap-toy").exists()


def test_toy_plugin_loads_through_meltano(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    copy_project_files(project)
    home = project / ".spendlake"
    world = StripeWorld(20261204, 1_790_000_000)

    with start_server(world) as server:
        env = {
            **os.environ,
            **MELTANO_QUIET_ENV,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "SPENDLAKE_HOME": str(home),
            "TAP_TOY_API_URL": server.url,
            "TAP_TOY_API_KEY": DEMO_API_KEY,
        }
        result = subprocess.run(
            [str(BIN / "meltano"), "--environment", "dev", "run", "tap-toy", "mapper-pii", "target-warehouse"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]

    with connect_warehouse(home, "demo", read_only=True) as connection:
        count, distinct = connection.execute("select count(*), count(distinct id) from toy.leads").fetchone()
        columns = {row[0] for row in connection.execute("select column_name from duckdb_columns() where table_name = 'leads'").fetchall()}
        emails = connection.execute("select email from toy.leads where email is not null limit 20").fetchall()
    assert count == distinct == len(world.customers)
    assert "full_name" not in columns
    assert all(len(email) == 64 for (email,) in emails)
