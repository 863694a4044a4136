"""A throw-away Meltano project for end-to-end tests: this repository's meltano.yml and a spendlake home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

from spendlake.demo import MELTANO_QUIET_ENV
from targets.warehouse.duckdb_store import connect_warehouse

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def copy_project_files(root: Path) -> None:
    """Copy what a Meltano run of this repository reads into `root`: meltano.yml, the policies and the dbt project."""
    shutil.copy(REPO / "meltano.yml", root / "meltano.yml")
    shutil.copytree(REPO / "policies", root / "policies")
    # Symbolic links (the currency table seed) are copied as the files they point to.
    shutil.copytree(REPO / "transform", root / "transform", ignore=shutil.ignore_patterns("target", "logs"))


class MeltanoProject:
    """A project folder with the repository's meltano.yml, whose runs write to `home` for tenant demo."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.home = home
        root.mkdir(parents=True)
        copy_project_files(root)

    def meltano_run(self, steps: t.Sequence[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
        """Run `meltano --environment dev run STEPS` with the plugins of this interpreter's virtualenv."""
        full_env = {
            **os.environ,
            **MELTANO_QUIET_ENV,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "SPENDLAKE_HOME": str(self.home),
            **env,
        }
        return subprocess.run(
            [str(BIN / "meltano"), "--environment", "dev", "run", *steps],
            cwd=self.root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def query(self, sql: str, parameters: list[t.Any] | None = None) -> list[tuple[t.Any, ...]]:
        """Run one read-only query on the demo tenant's warehouse."""
        connection = connect_warehouse(self.home, "demo", read_only=True)
        try:
            return connection.execute(sql, parameters or []).fetchall()
        finally:
            connection.close()
