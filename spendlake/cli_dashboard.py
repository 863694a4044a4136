"""`spendlake dashboard`: write a tenant's dashboard as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from spendlake.paths import InvalidTenantError, dashboard_path, spendlake_home, validate_tenant

#: Maximum length of the reporting period, in days (ten years).
MAX_DAYS = 3660


@click.command("dashboard")
@click.option("--tenant", required=True, help="Tenant whose marts the dashboard shows.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write (default: <home>/warehouse/<tenant>/dashboard/dashboard.html).",
)
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    default=28,
    show_default=True,
    help="Length of the reporting period in days. It ends at the latest date in the marts and is compared with the days before it.",
)
def dashboard(tenant: str, home: Path | None, output: Path | None, days: int) -> None:
    """Build the HTML dashboard from the tenant's marts and print the blended KPIs."""
    from spendlake.dashboard.build import build_dashboard, summary_lines
    from spendlake.dashboard.errors import DashboardError
    from spendlake.dashboard.output import make_private_folder, write_private_file

    try:
        validate_tenant(tenant)
        resolved_home = spendlake_home(home)
        result = build_dashboard(resolved_home, tenant, days=days)
        if output is None:
            path = dashboard_path(resolved_home, tenant)
            make_private_folder(path.parent)
        else:
            path = output.expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(path, result.html)
    except (InvalidTenantError, DashboardError) as error:
        raise click.ClickException(str(error)) from None

    click.echo(f"Dashboard written to {path}")
    for line in summary_lines(result):
        click.echo(line)
