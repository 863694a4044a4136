"""Export a data subject's rows (GDPR Art. 15 and 20) as JSON.

The rows are the ones an erasure would delete: every row linked to the
subject (see `privacy.subjects`), grouped by `source.stream`, from DuckDB under
`tables` and, under `parquet_history`, the older versions that only the Parquet
lake still keeps (a row identical to an exported DuckDB row is left out). Values
stored with `encrypt` are decrypted, because they are the subject's own data.
Pseudonyms stay as stored: they cannot be reversed, and the subject may use
them to refer to their rows later.

The export contains the searched value in clear, because it is written for the
subject. The audit event records only the pseudonym, the row counts and where
the export went.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import typing as t
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from privacy.audit import append_audit_event
from privacy.catalog import LOADED_AT, columns_by_table, open_warehouse, quote_table, read_catalog, require_warehouse
from privacy.keys import load_tenant_keys
from privacy.policy import Policy
from privacy.pseudonyms import Pseudonymizer
from privacy.subjects import (
    DEFAULT_MAX_ROUNDS,
    Subject,
    SubjectLocation,
    locate_subject,
    sql_subject_predicate,
    subject_mask,
)

if t.TYPE_CHECKING:
    from privacy.field_crypto import FieldCipher
    from targets.warehouse.parquet_store import ParquetKeys

AUDIT_ACTION = "privacy.export"
EXPORT_FORMAT = "spendlake-subject-export-v1"


class ExportError(RuntimeError):
    """Raised when an export cannot be made; the message never carries a personal value."""


@dataclass(frozen=True)
class SubjectExport:
    """A finished export: the JSON document and the counts for the audit log."""

    document: dict[str, t.Any]
    request_id: str
    searched: str
    rows_by_table: dict[str, int]
    history_rows_by_table: dict[str, int]
    rounds: int

    def to_json(self) -> str:
        """Return the document as indented JSON text."""
        return json.dumps(self.document, indent=2, ensure_ascii=False, default=_json_value) + "\n"


def export_subject(
    home: Path,
    tenant: str,
    policy: Policy,
    subject: Subject,
    *,
    now: dt.datetime | None = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> SubjectExport:
    """Collect every row linked to `subject` in DuckDB and the older versions in Parquet, with encrypted values decrypted."""
    from privacy.field_crypto import FieldCipher

    require_warehouse(home, tenant)
    requested_at = now or dt.datetime.now(dt.UTC)
    keys = load_tenant_keys(home, tenant)
    pseudonymizer = Pseudonymizer(keys.hmac_key, default_phone_region=policy.phone_region)
    cipher = FieldCipher(keys.field_key, tenant, pseudonymizer)
    searched = subject.pseudonym(pseudonymizer)

    with open_warehouse(home, tenant, read_only=True) as connection:
        location = locate_subject(connection, home, tenant, keys, subject.pii_class, searched, max_rounds=max_rounds)
        if not location.converged:
            msg = (
                f"The subject's rows still linked to new pseudonyms when the round limit ({max_rounds}) was "
                "reached, so the export would be incomplete; raise --max-link-rounds if the links all belong "
                "to this subject."
            )
            raise ExportError(msg)
        encrypted = _encrypted_columns(connection)
        tables = _subject_rows(connection, location, encrypted, cipher)
    history = _parquet_history(location, tables, encrypted, keys, cipher)

    request_id = uuid.uuid4().hex
    document = {
        "format": EXPORT_FORMAT,
        "tenant": tenant,
        "request": request_id,
        "requested_at": requested_at.isoformat(timespec="seconds"),
        "searched": {"class": subject.pii_class, "value": subject.value, "pseudonym": searched},
        "linked_pseudonyms": {pii_class: sorted(values) for pii_class, values in sorted(location.pseudonyms.items())},
        "link_rounds": location.rounds,
        "note": (
            "Rows stored for this person in the warehouse, per source and stream; 'parquet_history' holds older "
            "versions of rows kept only in the Parquet lake. Values stored encrypted are shown decrypted; "
            "64-character hex values are keyed pseudonyms, which cannot be reversed."
        ),
        "tables": tables,
        "parquet_history": history,
    }
    return SubjectExport(
        document=document,
        request_id=request_id,
        searched=searched,
        rows_by_table={name: len(rows) for name, rows in tables.items()},
        history_rows_by_table={name: len(rows) for name, rows in history.items()},
        rounds=location.rounds,
    )


def audit_export(home: Path, tenant: str, export: SubjectExport, destination: str) -> None:
    """Record the export in the audit log: the pseudonym, row counts and destination, never the value."""
    details = {
        "request": export.request_id,
        "searched_class": export.document["searched"]["class"],
        "searched_pseudonym": export.searched,
        "link_rounds": export.rounds,
        "rows_by_table": export.rows_by_table,
        "parquet_history_rows_by_table": export.history_rows_by_table,
        "destination": destination,
    }
    append_audit_event(home, tenant, AUDIT_ACTION, details)


def _encrypted_columns(connection: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], list[str]]:
    """Return the columns stored with `encrypt`, per `(source, stream)`."""
    return {
        key: [column.name for column in columns if column.pii_action == "encrypt"]
        for key, columns in columns_by_table(read_catalog(connection)).items()
    }


def _subject_rows(
    connection: duckdb.DuckDBPyConnection,
    location: SubjectLocation,
    encrypted: dict[tuple[str, str], list[str]],
    cipher: FieldCipher,
) -> dict[str, list[dict[str, t.Any]]]:
    pseudonyms = sorted(location.followed)

    tables: dict[str, list[dict[str, t.Any]]] = {}
    for link in location.link_tables:
        if not location.table_rows.get(link.name):
            continue
        cursor = connection.execute(
            f"SELECT * FROM {quote_table(link.source, link.stream)} WHERE {sql_subject_predicate(link.column_names)}",  # noqa: S608
            {"pseudonyms": pseudonyms},
        )
        names = [column[0] for column in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        decrypt_columns = encrypted.get((link.source, link.stream), [])
        tables[link.name] = [_decrypted(row, link.source, link.stream, decrypt_columns, cipher) for row in rows]
    return tables


def _parquet_history(
    location: SubjectLocation,
    tables: dict[str, list[dict[str, t.Any]]],
    encrypted: dict[tuple[str, str], list[str]],
    keys: ParquetKeys,
    cipher: FieldCipher,
) -> dict[str, list[dict[str, t.Any]]]:
    """Return the subject's Parquet rows that differ from every exported DuckDB row, per `source.stream`."""
    import pyarrow as pa

    from targets.warehouse.parquet_store import read_parquet_file

    value_set = pa.array(sorted(location.followed), type=pa.string())
    seen = {name: {_row_identity(row) for row in rows} for name, rows in tables.items()}
    history: dict[str, list[dict[str, t.Any]]] = {}
    for path in sorted(location.matched_files):
        link = location.file_tables[path]
        data = read_parquet_file(path, keys)
        matched = data.filter(subject_mask(data, link.column_names, value_set))
        decrypt_columns = encrypted.get((link.source, link.stream), [])
        for row in matched.to_pylist():
            row = _decrypted(row, link.source, link.stream, decrypt_columns, cipher)
            identity = _row_identity(row)
            if identity in seen.setdefault(link.name, set()):
                continue
            seen[link.name].add(identity)
            history.setdefault(link.name, []).append(row)
    return history


def _row_identity(row: t.Mapping[str, t.Any]) -> str:
    """Return a canonical text of a row's values without its load time, to compare DuckDB and Parquet rows."""
    values = {name: _comparable(value) for name, value in row.items() if name != LOADED_AT and value is not None}
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=_json_value)


def _comparable(value: t.Any) -> t.Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def _decrypted(
    row: dict[str, t.Any],
    source: str,
    stream: str,
    columns: list[str],
    cipher: FieldCipher,
) -> dict[str, t.Any]:
    from privacy.field_crypto import is_field_token

    result = dict(row)
    for name in columns:
        value = result.get(name)
        # A value written before the column's action became `encrypt` is a pseudonym: keep it as stored.
        if is_field_token(value):
            result[name] = cipher.decrypt(source, stream, name, value)
    return result


def _json_value(value: t.Any) -> t.Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    msg = f"Cannot write a {type(value).__name__} value as JSON."
    raise TypeError(msg)
