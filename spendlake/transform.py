"""Run the dbt project in `transform/` against one tenant's encrypted warehouse.

dbt runs as a child process with the profile of the project, whose plugin
attaches the tenant's warehouse with the key from the keyring. dbt's own
files (compiled SQL, run results) go to the tenant's warehouse folder, not
into the checkout, so two tenants never share them and destroying a tenant
removes them. dbt writes no log file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from spendlake import reporting
from spendlake.paths import dbt_work_dir, duckdb_path, make_private_folder, validate_tenant
from spendlake.reporting import ReportingSettings

PROJECT_DIR_ENV = "SPENDLAKE_DBT_PROJECT_DIR"
#: dbt commands that accept `--vars`. Others, such as debug and clean, run without the reporting settings.
_COMMANDS_WITH_VARS = frozenset({"build", "run", "test", "seed", "compile", "show", "snapshot", "list", "ls", "docs"})
DBT_COMMANDS = _COMMANDS_WITH_VARS | {"clean", "clone", "debug", "deps", "init", "parse", "retry", "run-operation", "source"}
#: Options that build only part of the project, which must not change the reporting settings.
_SELECTION_OPTIONS = frozenset({"--select", "-s", "--models", "-m", "--exclude", "--selector", "--resource-type"})
SETTINGS_TABLE = "marts.reporting_settings"


class TransformError(RuntimeError):
    """Raised when dbt cannot start; the message names the cause and the fix."""


def find_project_dir(configured: Path | None = None) -> Path:
    """Return the dbt project: the given folder, SPENDLAKE_DBT_PROJECT_DIR, ./transform, or the checkout's."""
    if configured is None and os.environ.get(PROJECT_DIR_ENV):
        configured = Path(os.environ[PROJECT_DIR_ENV])
    if configured is not None:
        if not (configured / "dbt_project.yml").is_file():
            msg = (
                f"No dbt project at {configured}: the folder has no dbt_project.yml. Point --project-dir "
                f"(or {PROJECT_DIR_ENV}) at the transform/ folder."
            )
            raise TransformError(msg)
        return configured.resolve()

    for candidate in (Path.cwd() / "transform", Path(__file__).resolve().parents[1] / "transform"):
        if (candidate / "dbt_project.yml").is_file():
            return candidate.resolve()
    msg = f"No dbt project found: run from the spendlake project root, or set {PROJECT_DIR_ENV} to its transform/ folder."
    raise TransformError(msg)


def dbt_executable() -> str:
    """Return the dbt beside this interpreter, else the one on PATH."""
    executable = shutil.which("dbt", path=str(Path(sys.executable).parent)) or shutil.which("dbt")
    if executable is None:
        msg = "The dbt executable was not found; run `make demo` or `make test`, which install dbt-duckdb into .venv."
        raise TransformError(msg)
    return executable


def with_command(dbt_args: Sequence[str]) -> tuple[list[str], str]:
    """Return the arguments with `build` added when they name no dbt command, and the command."""
    args = list(dbt_args)
    command = next((argument for argument in args if argument in DBT_COMMANDS), None)
    if command is None or (args and not args[0].startswith("-") and args[0] != command):
        return ["build", *args], "build"
    if command == "clean":
        # dbt cleans only folders inside the project by default, and dbt's files are in the tenant's folder.
        args.append("--no-clean-project-files-only")
    return args, command


def last_build_settings(home: Path, tenant: str) -> ReportingSettings:
    """Return the settings the tenant's marts were last built with; empty before the first build."""
    from targets.warehouse.duckdb_store import connect_warehouse
    from targets.warehouse.errors import WarehouseError

    try:
        connection = connect_warehouse(home, tenant, read_only=True)
    except WarehouseError as error:
        raise TransformError(str(error)) from None
    try:
        exists = connection.execute(
            "select count(*) from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'marts' and table_name = 'reporting_settings'"
        ).fetchone()
        if not exists or not exists[0]:
            return ReportingSettings()
        row = connection.execute(f"select reporting_currency, reporting_timezone from {SETTINGS_TABLE}").fetchone()  # noqa: S608
    finally:
        connection.close()
    return ReportingSettings(row[0], row[1], "kept from the last build") if row else ReportingSettings()


def resolved_args(
    home: Path, tenant: str, dbt_args: Sequence[str], project: Path, options: ReportingSettings
) -> tuple[list[str], str | None]:
    """Return dbt's arguments with the reporting settings as `--vars`, and a line naming the settings."""
    args, command = with_command(dbt_args)
    if command not in _COMMANDS_WITH_VARS:
        return args, None

    try:
        remaining, caller_vars = reporting.split_vars(args)
        last_build = last_build_settings(home, tenant)
        layers = [
            options,
            reporting.from_vars(caller_vars, options),
            reporting.from_environment(),
            last_build,
            reporting.project_defaults(project),
        ]
        settings, described = reporting.resolve(layers)
        reporting.require_rates(settings.currency, project)
    except reporting.ReportingSettingsError as error:
        raise TransformError(str(error)) from None

    check_settings_change(settings, last_build, command, remaining)
    return remaining + reporting.dbt_vars(settings, caller_vars), described


def check_settings_change(settings: ReportingSettings, last_build: ReportingSettings, command: str, args: Sequence[str]) -> None:
    """Raise when other settings than the last build's would leave the marts mixed or test them against other rates."""
    if last_build.currency is None or (settings.currency, settings.timezone) == (last_build.currency, last_build.timezone):
        return

    built = f"{last_build.currency} and {last_build.timezone}"
    if command == "test":
        msg = (
            f"The marts were built with {built}, so `test` with {settings.currency} and {settings.timezone} "
            f"would check them against other rates. Run `build` with the new settings, or `test` without them."
        )
        raise TransformError(msg)
    if _SELECTION_OPTIONS.intersection(args):
        msg = (
            f"Changing the reporting settings from {built} to {settings.currency} and {settings.timezone} needs a "
            f"build of the whole project, but the arguments select only part of it. Build without --select/--exclude first."
        )
        raise TransformError(msg)


def dbt_environment(home: Path, tenant: str, project_dir: Path) -> dict[str, str]:
    """Return the environment of the dbt process: tenant, home, profile, and per-tenant output folders."""
    work = make_private_folder(dbt_work_dir(home, tenant))
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
    options: ReportingSettings | None = None,
) -> int:
    """Run dbt for the tenant and return its exit code; raise `TransformError` when it cannot start."""
    validate_tenant(tenant)
    if not duckdb_path(home, tenant).exists():
        msg = f"Tenant {tenant!r} has no warehouse yet ({duckdb_path(home, tenant)}); run a load with target-warehouse first."
        raise TransformError(msg)

    project = find_project_dir(project_dir)
    args, described = resolved_args(home, tenant, dbt_args, project, options or ReportingSettings())
    if described:
        print(described, file=sys.stderr, flush=True)
    command = [dbt_executable(), *args]
    return subprocess.run(command, cwd=project, env=dbt_environment(home, tenant, project), check=False).returncode
