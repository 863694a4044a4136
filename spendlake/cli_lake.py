"""`spendlake lake …`: read a tenant's encrypted Parquet lake."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
import typing as t
from pathlib import Path

import click

from spendlake.paths import InvalidTenantError, spendlake_home, tenant_dir, validate_tenant

if t.TYPE_CHECKING:
    import pyarrow as pa

LAKE_URL_ENV = "SPENDLAKE_LAKE_URL"


@click.group("lake")
def lake() -> None:
    """Read a tenant's encrypted Parquet lake."""


@lake.command("read")
@click.option("--tenant", required=True, help="Tenant id whose lake is read.")
@click.option("--source", required=True, help="Source whose stream is read, for example 'stripe'.")
@click.option("--stream", required=True, help="Stream to read, for example 'charges'.")
@click.option("--all-versions", is_flag=True, help="Print every stored version of each key, not only the latest.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "table"]),
    default="jsonl",
    show_default=True,
    help="Print one JSON object per line, or a table.",
)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Print at most this many rows (default: all).")
@click.option(
    "--lake-url",
    envvar=LAKE_URL_ENV,
    default=None,
    help=f"Lake location, for example s3://bucket/prefix (default: {LAKE_URL_ENV}, else the tenant's local folder).",
)
@click.option("--s3-endpoint-url", default=None, help="S3 endpoint URL for an s3:// lake (default: AWS_ENDPOINT_URL, else AWS S3).")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).",
)
def read(
    tenant: str,
    source: str,
    stream: str,
    all_versions: bool,
    output_format: str,
    limit: int | None,
    lake_url: str | None,
    s3_endpoint_url: str | None,
    home: Path | None,
) -> None:
    """Print a stream of the Parquet lake with each primary key once (the latest version), sorted by key."""
    from privacy.keys import KeyringError, load_tenant_keys
    from targets.warehouse.errors import WarehouseError
    from targets.warehouse.lake_location import open_lake
    from targets.warehouse.lake_reader import checked_stream_folder, read_stream

    try:
        validate_tenant(tenant)
        resolved_home = spendlake_home(home)
        store = open_lake(tenant_dir(resolved_home, tenant), tenant, lake_url, endpoint_url=s3_endpoint_url)
        # A reader never creates keys: a missing keyring is an error.
        keys = load_tenant_keys(resolved_home, tenant, create=False)
        table = read_stream(store, keys, source, stream, all_versions=all_versions)
    except (InvalidTenantError, KeyringError, WarehouseError) as error:
        raise click.ClickException(str(error)) from None

    if table.num_columns == 0:
        location = store.describe(checked_stream_folder(source, stream))
        click.echo(f"The lake has no files for stream {stream!r} under {location}.", err=True)
        return
    if limit is not None:
        table = table.slice(0, limit)
    _write_table(table, output_format)


def _write_table(table: pa.Table, output_format: str) -> None:
    if output_format == "jsonl":
        for batch in table.to_batches():
            for row in batch.to_pylist():
                sys.stdout.write(json.dumps(row, default=_json_value) + "\n")
        return

    from spendlake.query import QueryResult, write_result

    rows = [tuple(row.values()) for row in table.to_pylist()]
    write_result(QueryResult(columns=table.column_names, rows=rows), "table", sys.stdout)


def _json_value(value: t.Any) -> t.Any:
    """Convert the values `json` cannot encode: dates and times to ISO 8601, decimals to exact strings."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    msg = f"A value of type {type(value).__name__} cannot be printed as JSON."
    raise TypeError(msg)
