"""`spendlake transform`: run the dbt models on a tenant's encrypted warehouse."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spendlake.paths import InvalidTenantError, spendlake_home


@click.command("transform", context_settings={"ignore_unknown_options": True})
@click.option("--tenant", envvar="SPENDLAKE_TENANT", default="demo", show_default=True, help="Tenant whose warehouse the models read and write (env SPENDLAKE_TENANT).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).")
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="The dbt project (default: SPENDLAKE_DBT_PROJECT_DIR, else ./transform, else the one beside the installed spendlake).")
@click.option("--reporting-currency", default=None, help="Currency of the marts' converted amounts (env SPENDLAKE_REPORTING_CURRENCY; default: the last build's, else USD).")
@click.option("--reporting-timezone", default=None, help="IANA time zone of order dates (env SPENDLAKE_REPORTING_TIMEZONE; default: the last build's, else UTC).")
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
def transform(
    tenant: str,
    home: Path | None,
    project_dir: Path | None,
    reporting_currency: str | None,
    reporting_timezone: str | None,
    dbt_args: tuple[str, ...],
) -> None:
    """Run dbt (default `build`) on the tenant's warehouse; extra arguments go to dbt, e.g. `test --select marts`.

    The reporting currency and time zone come from the options, dbt's --vars,
    the environment or the tenant's last build, in that order. Put `--` before
    dbt arguments that spendlake would take itself: `transform -- build --help`.
    """
    from spendlake.reporting import ReportingSettingsError, from_options
    from spendlake.transform import TransformError, run_dbt

    try:
        options = from_options(reporting_currency, reporting_timezone)
        code = run_dbt(spendlake_home(home), tenant, dbt_args, project_dir=project_dir, options=options)
    except (InvalidTenantError, ReportingSettingsError, TransformError) as error:
        raise click.ClickException(str(error)) from None
    if code != 0:
        click.echo(f"dbt exited with code {code}; its log is above.", err=True)
        sys.exit(code)
