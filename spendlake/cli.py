"""The `spendlake` command: sandbox, queries and the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spendlake.cli_dashboard import dashboard
from spendlake.cli_keys import keys
from spendlake.cli_lake import lake
from spendlake.cli_privacy import privacy
from spendlake.cli_transform import transform
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


@main.command("new-source")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Folder in which the package folder is created.")
@click.option("--meltano-yml", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="meltano.yml to add the extractor to (default: ./meltano.yml if it exists).")
def new_source(name: str, parent: Path, meltano_yml: Path | None) -> None:
    """Scaffold a source plugin package: declaration, test and Meltano extractor entry."""
    from spendlake.scaffold import ScaffoldError, scaffold_source

    if meltano_yml is None and Path("meltano.yml").exists():
        meltano_yml = Path("meltano.yml")
    try:
        folder = scaffold_source(name, parent, meltano_yml=meltano_yml)
    except ScaffoldError as error:
        raise click.ClickException(str(error)) from None

    click.echo(f"Created {folder}. Next steps:")
    click.echo(f"  1. Edit {folder / ('spendlake_source_' + name) / 'source.yaml'} for the API.")
    click.echo(f"  2. .venv/bin/pip install --no-deps -e {folder}")
    click.echo(f"  3. .venv/bin/python -m pytest {folder / 'tests'}")
    if meltano_yml is not None:
        click.echo(f"  4. meltano.yml now lists tap-{name.replace('_', '-')}; set its api_url and api_key.")


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


main.add_command(dashboard)
main.add_command(keys)
main.add_command(lake)
main.add_command(privacy)
main.add_command(transform)


if __name__ == "__main__":
    main()
