"""The `spendlake` command: sandbox, queries and the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spendlake.paths import InvalidTenantError, spendlake_home, validate_tenant


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """spendlake: a privacy-first pipeline for digital-marketing data."""


@main.group()
def sandbox() -> None:
    """Run the local emulator of the source APIs."""


@sandbox.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="TCP port on 127.0.0.1; 0 lets the OS choose.")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).")
def sandbox_serve(port: int, home: Path | None) -> None:
    """Serve the emulated APIs on 127.0.0.1 until interrupted."""
    from sandbox.server import serve_forever

    serve_forever(spendlake_home(home) / "sandbox", port=port)


@main.command("query")
@click.argument("sql")
@click.option("--tenant", default="demo", show_default=True, help="Tenant whose warehouse is queried.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True, help="Print the result as a table, CSV with a header row, or a JSON array of objects.")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).")
def query(sql: str, tenant: str, output_format: str, home: Path | None) -> None:
    """Run SQL on a tenant's encrypted DuckDB warehouse, read-only."""
    from spendlake.query import QueryError, run_query, write_result

    try:
        validate_tenant(tenant)
        result = run_query(spendlake_home(home), tenant, sql)
    except (InvalidTenantError, QueryError) as error:
        raise click.ClickException(str(error)) from None
    write_result(result, output_format, sys.stdout)


@main.command("demo")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).")
@click.option(
    "--force",
    is_flag=True,
    help="Pass --force to meltano run: start even if Meltano still records a killed run of this pipeline as running.",
)
def demo(home: Path | None, force: bool) -> None:
    """Start the sandbox, run the Meltano pipeline for tenant `demo`, print what was loaded."""
    from spendlake.demo import DemoError, run_demo

    try:
        run_demo(spendlake_home(home), project_root=Path.cwd(), force=force)
    except DemoError as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
