"""Erase a data subject (GDPR Art. 17) from a tenant's warehouse and keep them from coming back.

The steps run under the tenant lock, in an order that loses nothing when a step fails:

1. locate the subject's rows through the searched pseudonym and the subject ids
   linked to it (`privacy.subjects`);
2. add the pseudonyms to the erasure list, so mapper-pii drops the subject from
   every later load even if a later step fails;
3. delete the rows from DuckDB in one transaction;
4. copy the database into a fresh file under a new key, because DuckDB keeps
   deleted values in the file until then, and the old key is destroyed;
5. rewrite every Parquet file that contains a matched row, with fresh data keys,
   deleting files left empty.

Running the erasure again after a failure finishes the job: the rows still
stored are found again by the same pseudonyms, and a database copy that failed
is made first (`privacy.compaction`). A dry run takes no lock and changes
nothing but the audit log.
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from privacy.audit import append_audit_event
from privacy.catalog import FileChange, open_warehouse, quote_table, relative_to_tenant, require_warehouse, rollback
from privacy.compaction import compact_if_marked, mark_rows_deleted
from privacy.erasures import add_erased
from privacy.keys import load_tenant_keys
from privacy.policy import Policy
from privacy.pseudonyms import Pseudonymizer
from privacy.subjects import (
    DEFAULT_MAX_ROUNDS,
    LinkTable,
    Subject,
    SubjectLocation,
    locate_subject,
    sql_subject_predicate,
    subject_mask,
)
from spendlake.tenant_lock import tenant_lock

if t.TYPE_CHECKING:
    from targets.warehouse.parquet_store import ParquetKeys

AUDIT_ACTION = "privacy.erase"


class ErasureError(RuntimeError):
    """Raised when an erasure cannot run or finish; the message names the step and the fix, never the subject's value."""


@dataclass
class ErasureReport:
    """Outcome of an erasure: pseudonyms, link rounds, rows per table and Parquet files changed.

    `subject_ids` counts the subject ids followed and `record_values` the distinct e-mails and
    phones of the records they key, so an operator can see when the links reached several people.
    """

    request_id: str
    pii_class: str
    searched: str
    pseudonyms: dict[str, list[str]]
    rounds: int
    table_rows: dict[str, int]
    parquet_rows: dict[str, int]
    dry_run: bool
    subject_ids: int = 0
    record_values: dict[str, int] = field(default_factory=dict)
    new_erasures: int = 0
    database_rekeyed: bool = False
    files: list[FileChange] = field(default_factory=list)

    @property
    def rows_deleted(self) -> int:
        """Return the number of DuckDB rows matched (deleted unless this was a dry run)."""
        return sum(self.table_rows.values())

    def audit_details(self) -> dict[str, object]:
        """Return the audit event's details: counts, pseudonyms and file names only."""
        return {
            "request": self.request_id,
            "dry_run": self.dry_run,
            "searched_class": self.pii_class,
            "searched_pseudonym": self.searched,
            "pseudonyms": self.pseudonyms,
            "link_rounds": self.rounds,
            "subject_ids_followed": self.subject_ids,
            "record_values_by_class": self.record_values,
            "rows_by_table": self.table_rows,
            "parquet_rows_by_file": self.parquet_rows,
            "new_erasure_list_entries": self.new_erasures,
            "database_rekeyed": self.database_rekeyed,
            "files_rewritten": [change.path for change in self.files if not change.removed],
            "files_removed": [change.path for change in self.files if change.removed],
        }


def erase_subject(
    home: Path,
    tenant: str,
    policy: Policy,
    subject: Subject,
    *,
    dry_run: bool = False,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> ErasureReport:
    """Erase every row linked to `subject`, or with `dry_run` only report what would be erased."""
    require_warehouse(home, tenant)
    request_id = uuid.uuid4().hex
    if dry_run:
        report = _locate_only(home, tenant, policy, subject, max_rounds, request_id)
        append_audit_event(home, tenant, AUDIT_ACTION, report.audit_details())
        return report

    try:
        with tenant_lock(home, tenant, "the erasure"):
            report = _erase_locked(home, tenant, policy, subject, max_rounds, request_id)
    except Exception as error:
        failure = {"request": request_id, "dry_run": False, "searched_class": subject.pii_class, "failed": type(error).__name__}
        append_audit_event(home, tenant, AUDIT_ACTION, failure)
        raise
    append_audit_event(home, tenant, AUDIT_ACTION, report.audit_details())
    return report


def _locate_only(home: Path, tenant: str, policy: Policy, subject: Subject, max_rounds: int, request_id: str) -> ErasureReport:
    with open_warehouse(home, tenant, read_only=True) as connection:
        keys = load_tenant_keys(home, tenant)
        searched = subject.pseudonym(Pseudonymizer(keys.hmac_key, default_phone_region=policy.phone_region))
        location = locate_subject(connection, home, tenant, keys, subject.pii_class, searched, max_rounds=max_rounds)
    _check_converged(location, max_rounds)
    return _report(home, tenant, request_id, subject, location, dry_run=True)


def _erase_locked(home: Path, tenant: str, policy: Policy, subject: Subject, max_rounds: int, request_id: str) -> ErasureReport:
    with open_warehouse(home, tenant, read_only=False) as connection:
        keys = load_tenant_keys(home, tenant)
        searched = subject.pseudonym(Pseudonymizer(keys.hmac_key, default_phone_region=policy.phone_region))
        location = locate_subject(connection, home, tenant, keys, subject.pii_class, searched, max_rounds=max_rounds)
        _check_converged(location, max_rounds)
        report = _report(home, tenant, request_id, subject, location, dry_run=False)

        # The erasure list first: if anything below fails, the next load still drops the subject.
        report.new_erasures = add_erased(home, tenant, location.all_pseudonyms, request_id)
        if location.matched_table_rows:
            mark_rows_deleted(home, tenant)
            delete_subject_rows(connection, location)

    # A marker left by an earlier failed run is honoured here too, although this run may delete nothing.
    report.database_rekeyed = compact_if_marked(home, tenant)

    # The keyring changed on rekey, so it is read again.
    keys = load_tenant_keys(home, tenant)
    value_set = pa.array(sorted(location.followed), type=pa.string())
    for path in location.matched_files:
        link = location.file_tables[path]
        report.files.append(_rewrite_without_subject(home, tenant, path, keys, link, value_set))
    return report


def delete_subject_rows(connection: duckdb.DuckDBPyConnection, location: SubjectLocation) -> dict[str, int]:
    """Delete the located rows from every table in one transaction and return the count per table.

    Raises `ErasureError`, with everything rolled back, when a table's count
    differs from what the search found (rows changed in between).
    """
    pseudonyms = sorted(location.followed)
    deleted: dict[str, int] = {}
    connection.execute("BEGIN TRANSACTION")
    try:
        for link in location.link_tables:
            expected = location.table_rows.get(link.name, 0)
            if not expected:
                continue
            count = _delete_from(connection, link, pseudonyms)
            if count != expected:
                msg = (
                    f"Table {link.name}: {count} rows matched at deletion but {expected} at search; "
                    "the warehouse changed in between. Nothing was deleted; run the erasure again."
                )
                raise ErasureError(msg)
            deleted[link.name] = count
        connection.execute("COMMIT")
    except BaseException:
        rollback(connection)
        raise
    connection.execute("CHECKPOINT")
    return deleted


def _delete_from(connection: duckdb.DuckDBPyConnection, link: LinkTable, pseudonyms: list[str]) -> int:
    predicate = sql_subject_predicate(link.column_names)
    table = quote_table(link.source, link.stream)
    row = connection.execute(f"DELETE FROM {table} WHERE {predicate}", {"pseudonyms": pseudonyms}).fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _rewrite_without_subject(
    home: Path,
    tenant: str,
    path: Path,
    keys: ParquetKeys,
    link: LinkTable,
    value_set: pa.Array,
) -> FileChange:
    from privacy.parquet_rewrite import rewrite_parquet_file

    def keep(table: pa.Table) -> pa.Array:
        return pc.invert(subject_mask(table, link.column_names, value_set))

    result = rewrite_parquet_file(path, keys, keys, keep=keep)
    return FileChange(relative_to_tenant(home, tenant, path), result.rows_before, result.rows_after, result.removed)


def _check_converged(location: SubjectLocation, max_rounds: int) -> None:
    if location.converged:
        return
    count = len(location.all_pseudonyms)
    msg = (
        f"The subject's rows still linked to new pseudonyms when the round limit ({max_rounds}) was reached "
        f"({count} pseudonyms so far), so nothing was erased: a shared value may tie many people together. "
        "Inspect the links with --dry-run, then raise --max-link-rounds if they all belong to this subject."
    )
    raise ErasureError(msg)


def _report(
    home: Path,
    tenant: str,
    request_id: str,
    subject: Subject,
    location: SubjectLocation,
    *,
    dry_run: bool,
) -> ErasureReport:
    return ErasureReport(
        request_id=request_id,
        pii_class=subject.pii_class,
        searched=location.searched,
        pseudonyms={pii_class: sorted(values) for pii_class, values in sorted(location.pseudonyms.items())},
        rounds=location.rounds,
        table_rows=location.matched_table_rows,
        parquet_rows={relative_to_tenant(home, tenant, path): count for path, count in location.matched_files.items()},
        dry_run=dry_run,
        subject_ids=len(location.subject_ids),
        record_values={pii_class: len(values) for pii_class, values in sorted(location.record_values.items())},
    )


__all__ = ["ErasureError", "ErasureReport", "delete_subject_rows", "erase_subject"]
