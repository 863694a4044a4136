"""`spendlake keys …`: inspect, rotate and destroy a tenant's keys."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spendlake.paths import InvalidTenantError, spendlake_home, validate_tenant

TENANT_OPTION = click.option("--tenant", required=True, help="Tenant id whose keys are used.")
HOME_OPTION = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).",
)


@click.group("keys")
def keys() -> None:
    """Manage a tenant's keys: status, rotate, destroy."""


@keys.command("status")
@TENANT_OPTION
@HOME_OPTION
def status(tenant: str, home: Path | None) -> None:
    """Show the tenant's keyring: master-key provider, generations, key ids (never key bytes)."""
    from privacy.key_status import format_status, keyring_status
    from privacy.keys import KeyringError

    try:
        validate_tenant(tenant)
        description = keyring_status(spendlake_home(home), tenant)
    except (InvalidTenantError, KeyringError) as error:
        raise click.ClickException(str(error)) from None

    for line in format_status(description):
        click.echo(line)
    if not description["opens"]:
        sys.exit(1)


@keys.command("rotate")
@TENANT_OPTION
@HOME_OPTION
def rotate(tenant: str, home: Path | None) -> None:
    """Rotate the tenant's keys: new generation, every Parquet file and the DuckDB database re-encrypted, old keys retired.

    Rerun it after an interruption: it resumes where it stopped.
    """
    from privacy.duckdb_rekey import RekeyError
    from privacy.keys import KeyringError
    from privacy.rotation import RotationError, rotate_tenant
    from spendlake.tenant_lock import TenantBusyError
    from targets.warehouse.errors import WarehouseError

    try:
        validate_tenant(tenant)
        report = rotate_tenant(spendlake_home(home), tenant)
    except (InvalidTenantError, KeyringError, RotationError, RekeyError, TenantBusyError, WarehouseError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.summary())


@keys.command("destroy")
@TENANT_OPTION
@HOME_OPTION
@click.option("--yes", is_flag=True, help="Skip the confirmation prompt (needed when not run from a terminal).")
def destroy(tenant: str, home: Path | None, yes: bool) -> None:
    """Destroy the tenant's keys and delete its warehouse, so its data and every copy of it become unreadable.

    The audit log is kept. This cannot be undone.
    """
    from privacy.keys import KeyringError
    from privacy.shredding import destroy_tenant
    from spendlake.tenant_lock import TenantBusyError

    try:
        validate_tenant(tenant)
    except InvalidTenantError as error:
        raise click.ClickException(str(error)) from None
    if not yes:
        _confirm_destruction(tenant)

    try:
        report = destroy_tenant(spendlake_home(home), tenant)
    except (KeyringError, TenantBusyError) as error:
        raise click.ClickException(str(error)) from None

    click.echo(report.summary())
    for problem in report.problems:
        click.echo(f"Problem: {problem}", err=True)
    if report.problems:
        sys.exit(1)


def _confirm_destruction(tenant: str) -> None:
    if not sys.stdin.isatty():
        msg = (
            f"Refusing to destroy tenant {tenant!r} without confirmation: stdin is not a terminal. "
            f"Pass --yes to confirm from a script."
        )
        raise click.ClickException(msg)

    click.echo(f"This destroys every key and the whole warehouse of tenant {tenant!r}; it cannot be undone.")
    typed = click.prompt("Type the tenant id again to confirm", default="", show_default=False)
    if typed != tenant:
        msg = f"The typed tenant id does not match {tenant!r}; nothing was destroyed."
        raise click.ClickException(msg)
