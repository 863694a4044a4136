"""Load a tenant's warehouse through the real target and read every row back, for key and rewrite tests."""

from __future__ import annotations

import hashlib
import shutil
import typing as t
from pathlib import Path

from privacy.keys import load_tenant_keys
from privacy.parquet_rewrite import lake_files
from spendlake.paths import tenant_dir
from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.parquet_store import read_parquet_file
from tests.target.support import record_message, run_target

STREAM = "leads"
SOURCE = "stripe"
PLAIN_MARKER = "plain-marker-7c41d9"
PROPERTIES = {
    "id": {"type": "integer", "x-pii": "none", "x-pii-applied": "keep"},
    "campaign": {"type": "string", "x-pii": "none", "x-pii-applied": "keep"},
    "email_hash": {"type": ["null", "string"], "x-pii": "email", "x-pii-applied": "hmac"},
    "spend": {"type": "number", "x-pii": "none", "x-pii-applied": "keep"},
}
PII_COLUMNS = ["email_hash"]


def pseudonym(number: int) -> str:
    """Return a stand-in for an HMAC pseudonym (64 hex digits), as mapper-pii emits."""
    return hashlib.sha256(f"subject-{number}".encode()).hexdigest()


def lead(number: int, marker: str = PLAIN_MARKER) -> dict[str, t.Any]:
    """Return one record of the `leads` stream; `campaign` carries a plaintext marker."""
    return {"id": number, "campaign": f"{marker}-{number}", "email_hash": pseudonym(number), "spend": number * 1.5}


def load_leads(home: Path, tenant: str, numbers: t.Iterable[int], batch_size_rows: int = 2) -> None:
    """Load `leads` rows through target-warehouse: one Parquet file per batch plus the DuckDB table."""
    keys = load_tenant_keys(home, tenant)
    schema = {
        "type": "object",
        "properties": PROPERTIES,
        "x-pii-tenant": tenant,
        "x-pii-key-id": keys.pseudonym_key_id,
    }
    messages = [{"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": ["id"]}]
    messages += [record_message(STREAM, lead(number)) for number in numbers]
    run_target(home, messages, tenant=tenant, source=SOURCE, batch_size_rows=batch_size_rows)


def duckdb_rows(home: Path, tenant: str) -> list[tuple[t.Any, ...]]:
    """Return every `leads` row of the DuckDB warehouse, ordered by id."""
    with connect_warehouse(home, tenant, read_only=True) as connection:
        return connection.execute(f"SELECT id, campaign, email_hash, spend FROM {SOURCE}.{STREAM} ORDER BY id").fetchall()


def parquet_rows(home: Path, tenant: str) -> list[dict[str, t.Any]]:
    """Return every row of the tenant's Parquet files (without `_loaded_at`), ordered by id."""
    keys = load_tenant_keys(home, tenant)
    rows = [row for path in parquet_files(home, tenant) for row in read_parquet_file(path, keys).to_pylist()]
    for row in rows:
        row.pop("_loaded_at")
    return sorted(rows, key=lambda row: row["id"])


def parquet_files(home: Path, tenant: str) -> list[Path]:
    """Return the tenant's Parquet files."""
    return lake_files(tenant_dir(home, tenant) / "parquet")


def copy_warehouse(home: Path, tenant: str, destination: Path) -> Path:
    """Copy the tenant's warehouse folder aside (a backup) and return the copy."""
    return Path(shutil.copytree(tenant_dir(home, tenant), destination / tenant))
