"""Run the dbt project in `transform/` against one tenant's encrypted warehouse.

dbt runs as a child process with the profile of the project, whose plugin
attaches the tenant's warehouse with the key from the keyring. dbt's own
files (compiled SQL, run results) go to the tenant's warehouse folder, not
into the checkout, so two tenants never share them and destroying a tenant
removes them. dbt writes no log file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spendlake.currencies import exponents
from spendlake.paths import dbt_work_dir, duckdb_path, validate_tenant

PROJECT_DIR_ENV = "SPENDLAKE_DBT_PROJECT_DIR"
CURRENCY_ENV = "SPENDLAKE_REPORTING_CURRENCY"
TIMEZONE_ENV = "SPENDLAKE_REPORTING_TIMEZONE"
#: dbt commands that accept `--vars`. Others, such as debug and clean, run as given.
_COMMANDS_WITH_VARS = frozenset({"build", "run", "test", "seed", "compile", "show", "snapshot", "list", "ls", "docs"})


class TransformError(RuntimeError):
    """Raised when dbt cannot start; the message names the cause and the fix."""


@dataclass(frozen=True)
class ReportingSettings:
    """The tenant's reporting currency and time zone, passed to the models as dbt vars."""

    currency: str | None = None
    timezone: str | None = None

    @classmethod
    def from_env(cls, currency: str | None = None, timezone: str | None = None) -> ReportingSettings:
        """Take explicit values first, then SPENDLAKE_REPORTING_CURRENCY / _TIMEZONE; check both."""
        settings = cls(currency or os.environ.get(CURRENCY_ENV) or None, timezone or os.environ.get(TIMEZONE_ENV) or None)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise `TransformError` for a currency the exponent table lacks or an unknown IANA time zone."""
        if self.currency is not None and self.currency.upper() not in exponents():
            msg = (
                f"Unknown reporting currency {self.currency!r}: use a three-letter ISO 4217 code such as 'EUR' "
                f"(option --reporting-currency or {CURRENCY_ENV})."
            )
            raise TransformError(msg)
        if self.timezone is not None:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                msg = (
                    f"Unknown reporting time zone {self.timezone!r}: use an IANA name such as 'Europe/Berlin' "
                    f"(option --reporting-timezone or {TIMEZONE_ENV})."
                )
                raise TransformError(msg) from None

    def as_vars(self) -> dict[str, str]:
        """Return the dbt vars that override the project's defaults."""
        found = {"reporting_currency": self.currency.upper() if self.currency else None, "reporting_timezone": self.timezone}
        return {name: value for name, value in found.items() if value is not None}


def find_project_dir(configured: Path | None = None) -> Path:
    """Return the dbt project: the given folder, SPENDLAKE_DBT_PROJECT_DIR, ./transform, or the checkout's."""
    if configured is None and os.environ.get(PROJECT_DIR_ENV):
        configured = Path(os.environ[PROJECT_DIR_ENV])
    if configured is not None:
        if not (configured / "dbt_project.yml").is_file():
            msg = f"No dbt project at {configured}: the folder has no dbt_project.yml. Point --project-dir at transform/."
            raise TransformError(msg)
        return configured.resolve()

    for candidate in (Path.cwd() / "transform", Path(__file__).resolve().parents[1] / "transform"):
        if (candidate / "dbt_project.yml").is_file():
            return candidate.resolve()
    msg = f"No dbt project found: run from the spendlake project root, or set {PROJECT_DIR_ENV} to its transform/ folder."
    raise TransformError(msg)


def dbt_command(dbt_args: Sequence[str], reporting: ReportingSettings) -> list[str]:
    """Return the dbt command line; `--vars` is added to commands that take it when a setting is given."""
    executable = shutil.which("dbt", path=str(Path(sys.executable).parent)) or shutil.which("dbt")
    if executable is None:
        msg = "The dbt executable was not found; run `make demo` or `make test`, which install dbt-duckdb into .venv."
        raise TransformError(msg)

    args = list(dbt_args) or ["build"]
    overrides = reporting.as_vars()
    if overrides and args[0] in _COMMANDS_WITH_VARS and "--vars" not in args:
        args += ["--vars", json.dumps(overrides)]
    return [executable, *args]


def dbt_environment(home: Path, tenant: str, project_dir: Path) -> dict[str, str]:
    """Return the environment of the dbt process: tenant, home, profile, and per-tenant output folders."""
    work = dbt_work_dir(home, tenant)
    work.mkdir(exist_ok=True, mode=0o700)
    return {
        **os.environ,
        "SPENDLAKE_HOME": str(home),
        "SPENDLAKE_TENANT": tenant,
        "DBT_PROJECT_DIR": str(project_dir),
        "DBT_PROFILES_DIR": str(project_dir),
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        # No dbt.log in the tenant folder, because the message of a failed statement may quote a value.
        "DBT_LOG_LEVEL_FILE": "none",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def run_dbt(
    home: Path,
    tenant: str,
    dbt_args: Sequence[str],
    *,
    project_dir: Path | None = None,
    reporting: ReportingSettings | None = None,
) -> int:
    """Run dbt for the tenant and return its exit code; raise `TransformError` when it cannot start."""
    validate_tenant(tenant)
    if not duckdb_path(home, tenant).exists():
        msg = f"Tenant {tenant!r} has no warehouse yet ({duckdb_path(home, tenant)}); run a load with target-warehouse first."
        raise TransformError(msg)

    project = find_project_dir(project_dir)
    command = dbt_command(dbt_args, reporting or ReportingSettings())
    return subprocess.run(command, cwd=project, env=dbt_environment(home, tenant, project), check=False).returncode
