"""`spendlake dashboard`: write a tenant's dashboard as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from spendlake.paths import (
    InvalidTenantError,
    dashboard_path,
    spendlake_home,
    validate_tenant,
)

#: Maximum length of the reporting period, in days (ten years).
MAX_DAYS = 3660


@click.command("dashboard")
@click.option(
    "--tenant",
    envvar="SPENDLAKE_TENANT",
    required=True,
    help="Tenant whose marts the dashboard shows (default: SPENDLAKE_TENANT; one of the two is required).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).",
)
@click.option(
    "--output",
    # A string, not a Path: pathlib drops the trailing slash of "new/", which resolve_output rejects.
    # Not dir_okay=False: check_replaceable rejects a folder, like any path that is not a regular file, in one line.
    type=click.Path(),
    default=None,
    help=(
        "HTML file to write (default: <home>/warehouse/<tenant>/dashboard/dashboard.html). Missing folders are "
        "created with mode 0700. Inside the home only the tenant's dashboard folder is allowed, and an existing "
        "file elsewhere is replaced only when its name ends in .html or .htm."
    ),
)
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    default=28,
    show_default=True,
    help=(
        "Length of the reporting period in days. It ends at the latest date in the marts, or yesterday in the "
        "reporting time zone if that is earlier, and is compared with the days before it."
    ),
)
@click.option(
    "--quiet",
    is_flag=True,
    help="Print only the path of the written file, not the period and KPIs (for logs that schedulers keep).",
)
def dashboard(tenant: str, home: Path | None, output: str | None, days: int, quiet: bool) -> None:
    """Build the HTML dashboard from the tenant's marts and print the blended KPIs."""
    from spendlake.dashboard.build import build_dashboard, summary_lines
    from spendlake.dashboard.errors import DashboardError
    from spendlake.dashboard.output import (
        check_replaceable,
        make_dashboard_folder,
        make_missing_folders,
        write_private_file,
    )
    from spendlake.dashboard.output_path import check_output_path, resolve_output

    try:
        validate_tenant(tenant)
        resolved_home = spendlake_home(home)
        # Checked before the marts are read too, so a wrong --output fails at once.
        if output is None:
            path = dashboard_path(resolved_home, tenant)
            check_replaceable(path)
        else:
            path = resolve_output(output)
            check_output_path(path, resolved_home, tenant)

        result = build_dashboard(resolved_home, tenant, days=days)
        if output is None:
            make_dashboard_folder(path.parent)
        else:
            make_missing_folders(path.parent)
        write_private_file(path, result.html)
    except (InvalidTenantError, DashboardError) as error:
        raise click.ClickException(str(error)) from None

    if quiet:
        click.echo(str(path))
        return

    click.echo(f"Dashboard written to {path}")
    for line in summary_lines(result):
        click.echo(line)

