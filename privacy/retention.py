"""Retention: delete stored rows older than the policy allows, from DuckDB and from the Parquet lake.

A stream's rows are dated by the retention rule's `date_field`. Without one,
they are dated by the stream's declared replication key when that is a date or
date-time column, else by the `_loaded_at` column that every row has. A row whose date is missing (null, or a
Parquet file written before the column existed) is kept; the report counts the
undated DuckDB rows. Deleting from DuckDB is followed by a copy of the database under a
new key, because DuckDB keeps deleted values in the file until then.
"""

from __future__ import annotations

import datetime as dt
import typing as t
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from privacy.audit import append_audit_event
from privacy.catalog import (
    LOADED_AT,
    FileChange,
    column_types,
    open_warehouse,
    parquet_files,
    quote_table,
    relative_to_tenant,
    require_warehouse,
    rollback,
    stored_tables,
)
from privacy.compaction import compact_if_marked, mark_rows_deleted
from privacy.declarations import replication_key
from privacy.keys import load_tenant_keys
from privacy.policy import Policy
from spendlake.tenant_lock import tenant_lock

if t.TYPE_CHECKING:
    from targets.warehouse.parquet_store import ParquetKeys

AUDIT_ACTION = "privacy.retention"
DATE_TYPES = frozenset({"DATE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"})


class RetentionError(RuntimeError):
    """Raised when retention cannot be applied; lists every problem with its policy key and the fix."""


@dataclass(frozen=True)
class StreamPlan:
    """The date column of one stream and the cutoff before which its rows are deleted."""

    source: str
    stream: str
    keep: str
    date_field: str
    date_type: str
    cutoff: dt.datetime

    @property
    def table(self) -> str:
        """Return `source.stream`."""
        return f"{self.source}.{self.stream}"

    def cutoff_value(self) -> dt.datetime | dt.date:
        """Return the cutoff in the column's type: a UTC date for DATE, a naive UTC time for TIMESTAMP."""
        utc = self.cutoff.astimezone(dt.UTC)
        if self.date_type == "DATE":
            return utc.date()
        if self.date_type == "TIMESTAMP WITH TIME ZONE":
            return utc
        return utc.replace(tzinfo=None)


@dataclass
class StreamOutcome:
    """Rows and files that retention removed from one stream."""

    plan: StreamPlan
    rows_deleted: int = 0
    undated_rows: int = 0
    parquet_rows_removed: int = 0
    files: list[FileChange] = field(default_factory=list)

    def details(self) -> dict[str, t.Any]:
        """Return the stream's counts and file names for the audit log and JSON output."""
        return {
            "keep": self.plan.keep,
            "date_field": self.plan.date_field,
            "cutoff": self.plan.cutoff.isoformat(timespec="seconds"),
            "rows_deleted": self.rows_deleted,
            "undated_rows": self.undated_rows,
            "parquet_rows_removed": self.parquet_rows_removed,
            "files_rewritten": [change.path for change in self.files if not change.removed],
            "files_removed": [change.path for change in self.files if change.removed],
        }


@dataclass
class RetentionReport:
    """Outcome of a retention run, per stream."""

    request_id: str
    now: dt.datetime
    dry_run: bool
    streams: list[StreamOutcome]
    database_rekeyed: bool = False

    def audit_details(self) -> dict[str, t.Any]:
        """Return the audit event's details: counts and file names per stream."""
        return {
            "request": self.request_id,
            "dry_run": self.dry_run,
            "now": self.now.isoformat(timespec="seconds"),
            "database_rekeyed": self.database_rekeyed,
            "streams": {outcome.plan.table: outcome.details() for outcome in self.streams},
        }


def apply_retention(home: Path, tenant: str, policy: Policy, *, dry_run: bool = False, now: dt.datetime | None = None) -> RetentionReport:
    """Delete every row past its stream's retention, or with `dry_run` count them only."""
    require_warehouse(home, tenant)
    now = now or dt.datetime.now(dt.UTC)
    request_id = uuid.uuid4().hex
    if dry_run:
        report = _run(home, tenant, policy, now, request_id, dry_run=True)
    else:
        with tenant_lock(home, tenant, "the retention run"):
            report = _run(home, tenant, policy, now, request_id, dry_run=False)
    append_audit_event(home, tenant, AUDIT_ACTION, report.audit_details())
    return report


def plan_retention(connection: duckdb.DuckDBPyConnection, policy: Policy, now: dt.datetime) -> list[StreamPlan]:
    """Resolve each stored stream's retention and date column; raise `RetentionError` listing every problem."""
    plans: list[StreamPlan] = []
    problems: list[str] = []
    for source, stream in stored_tables(connection):
        retention = policy.retention_for(source, stream)
        if retention is None:
            continue
        types = column_types(connection, source, stream)
        date_field, problem = date_field_for(source, stream, retention.date_field, types)
        if problem:
            problems.append(problem)
            continue
        plans.append(StreamPlan(source, stream, str(retention.keep), date_field, types[date_field], retention.cutoff(now)))

    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise RetentionError(f"Retention cannot be applied ({policy.origin}); nothing was deleted:\n{listing}")
    return plans


def date_field_for(source: str, stream: str, configured: str | None, types: dict[str, str]) -> tuple[str, str | None]:
    """Return the column that dates the stream's rows, or a problem naming the policy key to fix."""
    if configured is not None:
        place = f"retention.streams.{source}.{stream}.date_field"
        if configured not in types:
            return configured, f"{place}: table {source}.{stream} has no column {configured!r}; name one of its date columns"
        if types[configured] not in DATE_TYPES:
            return configured, (
                f"{place}: column {configured!r} of {source}.{stream} is {types[configured]}, not a date or "
                "date-time; name a date column"
            )
        return configured, None

    declared = replication_key(source, stream)
    if declared is not None and types.get(declared) in DATE_TYPES:
        return declared, None
    return LOADED_AT, None


def _run(home: Path, tenant: str, policy: Policy, now: dt.datetime, request_id: str, *, dry_run: bool) -> RetentionReport:
    with open_warehouse(home, tenant, read_only=dry_run) as connection:
        plans = plan_retention(connection, policy, now)
        outcomes = [StreamOutcome(plan) for plan in plans]
        for outcome in outcomes:
            outcome.undated_rows = _count(connection, outcome.plan, "IS NULL")
            outcome.rows_deleted = _count(connection, outcome.plan, "< $cutoff")
        if not dry_run and any(outcome.rows_deleted for outcome in outcomes):
            mark_rows_deleted(home, tenant)
            _delete_expired(connection, outcomes)

    report = RetentionReport(request_id=request_id, now=now, dry_run=dry_run, streams=outcomes)
    if not dry_run:
        # A marker left by an earlier failed run is honoured here too, although this run may delete nothing.
        report.database_rekeyed = compact_if_marked(home, tenant)

    keys = load_tenant_keys(home, tenant)
    for outcome in outcomes:
        _purge_parquet(home, tenant, keys, outcome, dry_run=dry_run)
    return report


def _count(connection: duckdb.DuckDBPyConnection, plan: StreamPlan, condition: str) -> int:
    from targets.warehouse.duckdb_store import quote_identifier

    sql = f"SELECT count(*) FROM {quote_table(plan.source, plan.stream)} WHERE {quote_identifier(plan.date_field)} {condition}"  # noqa: S608
    parameters = {"cutoff": plan.cutoff_value()} if "$cutoff" in condition else {}
    row = connection.execute(sql, parameters).fetchone()
    return int(row[0]) if row else 0


def _delete_expired(connection: duckdb.DuckDBPyConnection, outcomes: list[StreamOutcome]) -> None:
    """Delete the expired rows of every stream in one transaction."""
    from targets.warehouse.duckdb_store import quote_identifier

    connection.execute("BEGIN TRANSACTION")
    try:
        for outcome in outcomes:
            plan = outcome.plan
            sql = f"DELETE FROM {quote_table(plan.source, plan.stream)} WHERE {quote_identifier(plan.date_field)} < $cutoff"  # noqa: S608
            row = connection.execute(sql, {"cutoff": plan.cutoff_value()}).fetchone()
            outcome.rows_deleted = int(row[0]) if row else 0
        connection.execute("COMMIT")
    except BaseException:
        rollback(connection)
        raise
    connection.execute("CHECKPOINT")


def expired_mask(table: pa.Table, plan: StreamPlan) -> pa.Array:
    """Return a boolean per row: true where the date column is before the cutoff (false when it is null or absent)."""
    if plan.date_field not in table.column_names:
        return pa.array([False] * table.num_rows, type=pa.bool_())
    column = table.column(plan.date_field)
    cutoff = pa.scalar(plan.cutoff_value(), type=column.type)
    expired = pc.fill_null(pc.less(column, cutoff), False)
    return expired.combine_chunks() if isinstance(expired, pa.ChunkedArray) else expired


def _purge_parquet(home: Path, tenant: str, keys: ParquetKeys, outcome: StreamOutcome, *, dry_run: bool) -> None:
    from privacy.parquet_rewrite import rewrite_parquet_file
    from targets.warehouse.parquet_crypto import ParquetCrypto

    plan = outcome.plan
    crypto = ParquetCrypto(keys.parquet_master_key)
    for path in parquet_files(home, tenant, plan.source, plan.stream):
        expired = _count_expired(path, crypto, plan)
        if not expired:
            continue
        outcome.parquet_rows_removed += expired
        if dry_run:
            continue

        def keep(table: pa.Table) -> pa.Array:
            return pc.invert(expired_mask(table, plan))

        result = rewrite_parquet_file(path, keys, keys, keep=keep)
        outcome.files.append(FileChange(relative_to_tenant(home, tenant, path), result.rows_before, result.rows_after, result.removed))


def _count_expired(path: Path, crypto: t.Any, plan: StreamPlan) -> int:
    """Read only the date column of one file and count its expired rows."""
    parquet_file = pq.ParquetFile(path, decryption_properties=crypto.decryption_properties())
    try:
        if plan.date_field not in parquet_file.schema_arrow.names:
            return 0
        table = parquet_file.read(columns=[plan.date_field])
    finally:
        parquet_file.close()
    return int(pc.sum(pc.cast(expired_mask(table, plan), pa.int64())).as_py() or 0)
