"""Locate a data subject's rows in a tenant's warehouse, in DuckDB and in the Parquet lake.

A subject is searched by keyed pseudonym, never by clear value: an `hmac`
column stores the pseudonym itself, and an `encrypt` column stores a token whose
blind index is the same pseudonym. Only columns of class email, phone or
identifier are searched ("link columns").

One row can tie a subject to more pseudonyms: a customer row found by e-mail
also contains the customer id and phone, and the charges of that customer id
contain billing e-mails. So the search repeats with every pseudonym found in matched
rows until no new one appears (a fixed point), up to a round limit that keeps
one shared value (a card used by a whole family, say) from pulling in ever
more people. Both stores are searched because the Parquet files keep older
versions of rows, such as a customer's previous e-mail.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from privacy.catalog import StoredColumn, columns_by_table, parquet_files, quote_table, read_catalog
from privacy.field_crypto import TOKEN_PREFIX as FIELD_TOKEN_PREFIX

if t.TYPE_CHECKING:
    from privacy.pseudonyms import Pseudonymizer
    from targets.warehouse.parquet_store import ParquetKeys

SUBJECT_CLASSES = ("email", "phone", "identifier")
LINK_ACTIONS = ("hmac", "encrypt")
DEFAULT_MAX_ROUNDS = 5

#: The text every field token starts with (`spl1e.<blind index>.<payload>`).
TOKEN_START = f"{FIELD_TOKEN_PREFIX}."
_PSEUDONYM_LENGTH = 64
_PSEUDONYM_REGEX = "^[0-9a-f]{64}$"


class SubjectSearchError(ValueError):
    """Raised when a subject cannot be searched; the message never contains the searched value."""


@dataclass(frozen=True)
class Subject:
    """A data subject as the requester names them: a PII class and a value (kept out of logs and repr)."""

    pii_class: str
    value: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.pii_class not in SUBJECT_CLASSES:
            msg = f"A subject is searched by {', '.join(SUBJECT_CLASSES)}, not by {self.pii_class!r}."
            raise SubjectSearchError(msg)
        if not self.value.strip():
            msg = f"The {self.pii_class} to search for is empty; pass the subject's {self.pii_class}."
            raise SubjectSearchError(msg)

    def pseudonym(self, pseudonymizer: Pseudonymizer) -> str:
        """Return the subject's pseudonym under the tenant's key, as mapper-pii computes it."""
        return t.cast(str, pseudonymizer.pseudonym(self.pii_class, self.value))


@dataclass(frozen=True)
class LinkTable:
    """The link columns of one stream: where a subject's pseudonyms can be stored."""

    source: str
    stream: str
    columns: tuple[StoredColumn, ...]

    @property
    def name(self) -> str:
        """Return `source.stream`."""
        return f"{self.source}.{self.stream}"

    @property
    def column_names(self) -> list[str]:
        """Return the names of the link columns."""
        return [column.name for column in self.columns]


@dataclass
class SubjectLocation:
    """The matched rows of a subject per table and per Parquet file, and every linked pseudonym."""

    searched: str
    pseudonyms: dict[str, set[str]]
    rounds: int
    converged: bool
    table_rows: dict[str, int]
    parquet_rows: dict[Path, int]
    link_tables: list[LinkTable]
    file_tables: dict[Path, LinkTable]

    @property
    def all_pseudonyms(self) -> frozenset[str]:
        """Return every pseudonym found, of all classes."""
        return frozenset(value for values in self.pseudonyms.values() for value in values)

    @property
    def matched_table_rows(self) -> dict[str, int]:
        """Return the tables with at least one matched row."""
        return {name: count for name, count in self.table_rows.items() if count}

    @property
    def matched_files(self) -> dict[Path, int]:
        """Return the Parquet files with at least one matched row."""
        return {path: count for path, count in self.parquet_rows.items() if count}


def link_tables(connection: duckdb.DuckDBPyConnection) -> list[LinkTable]:
    """Return every stored stream that has at least one link column, from the warehouse's column catalog."""
    tables = []
    for (source, stream), columns in columns_by_table(read_catalog(connection)).items():
        links = tuple(column for column in columns if is_link_column(column))
        if links:
            tables.append(LinkTable(source, stream, links))
    return tables


def is_link_column(column: StoredColumn) -> bool:
    """Return whether a column stores pseudonyms of a subject class (as hmac values or encrypt blind indexes)."""
    # NOTE: a column the policy keeps in clear (`keep`) is not searched, so its values survive an erasure.
    return column.pii_class in SUBJECT_CLASSES and column.pii_action in LINK_ACTIONS


def pseudonym_keys(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Return each value's pseudonym: the blind index of a field token, else the value itself (an hmac pseudonym).

    Both forms are read in every link column because a policy change can turn
    an `hmac` column into an `encrypt` one, and older files keep the old form.
    """
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    is_token = pc.starts_with(text, TOKEN_START)
    start = len(TOKEN_START)
    blind_indexes = pc.utf8_slice_codeunits(text, start, start + _PSEUDONYM_LENGTH)
    return pc.if_else(is_token, blind_indexes, text)


def subject_mask(table: pa.Table, column_names: Iterable[str], pseudonyms: pa.Array) -> pa.Array:
    """Return a boolean per row: true where any of the named columns contains one of `pseudonyms`."""
    mask: pa.Array | pa.ChunkedArray = pa.repeat(False, table.num_rows)
    for name in column_names:
        if name not in table.column_names:
            continue
        found = pc.is_in(pseudonym_keys(table.column(name)), value_set=pseudonyms)
        mask = pc.or_(mask, pc.fill_null(found, False))
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def sql_subject_predicate(column_names: Iterable[str]) -> str:
    """Return a SQL condition true where a named column contains a pseudonym of the list bound as `$pseudonyms`."""
    from targets.warehouse.duckdb_store import quote_identifier

    start = len(TOKEN_START) + 1
    terms = []
    for name in column_names:
        column = f"CAST({quote_identifier(name)} AS VARCHAR)"
        key = (
            f"CASE WHEN starts_with({column}, '{TOKEN_START}') "
            f"THEN substr({column}, {start}, {_PSEUDONYM_LENGTH}) ELSE {column} END"
        )
        terms.append(f"coalesce(list_contains($pseudonyms, {key}), false)")
    return " OR ".join(terms) if terms else "false"


def locate_subject(
    connection: duckdb.DuckDBPyConnection,
    home: Path,
    tenant: str,
    keys: ParquetKeys,
    pii_class: str,
    pseudonym: str,
    *,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> SubjectLocation:
    """Find every row linked to the subject whose `pii_class` pseudonym is `pseudonym`.

    The link columns of each DuckDB table and each Parquet file are read once,
    then matched in memory round by round.
    """
    if max_rounds < 1:
        msg = "The number of link rounds must be at least 1."
        raise SubjectSearchError(msg)

    tables = link_tables(connection)
    # NOTE: the link columns of every table and Parquet file are held in memory at once, which suits
    # tenants of marketing size; a lake far larger would need a per-file pass for each round.
    snapshots = _table_snapshots(connection, tables) + _parquet_snapshots(home, tenant, keys, tables)
    found: dict[str, set[str]] = {pii_class: {pseudonym}}

    rounds, converged = 0, False
    while rounds < max_rounds:
        rounds += 1
        value_set = _value_set(found)
        new = _collect_linked(snapshots, value_set, found)
        if not new:
            converged = True
            break
        for linked_class, values in new.items():
            found.setdefault(linked_class, set()).update(values)

    value_set = _value_set(found)
    table_rows: dict[str, int] = {}
    parquet_rows: dict[Path, int] = {}
    file_tables: dict[Path, LinkTable] = {}
    for snapshot in snapshots:
        matched = _count_true(subject_mask(snapshot.data, snapshot.link.column_names, value_set))
        if snapshot.path is None:
            table_rows[snapshot.link.name] = matched
        else:
            parquet_rows[snapshot.path] = matched
            file_tables[snapshot.path] = snapshot.link

    return SubjectLocation(
        searched=pseudonym,
        pseudonyms=found,
        rounds=rounds,
        converged=converged,
        table_rows=table_rows,
        parquet_rows=parquet_rows,
        link_tables=tables,
        file_tables=file_tables,
    )


@dataclass(frozen=True)
class _Snapshot:
    """The link columns of one DuckDB table (`path` None) or one Parquet file."""

    link: LinkTable
    data: pa.Table
    path: Path | None = None


def _table_snapshots(connection: duckdb.DuckDBPyConnection, tables: list[LinkTable]) -> list[_Snapshot]:
    from targets.warehouse.duckdb_store import quote_identifier

    snapshots = []
    for link in tables:
        columns = ", ".join(quote_identifier(name) for name in link.column_names)
        data = connection.execute(f"SELECT {columns} FROM {quote_table(link.source, link.stream)}").arrow().read_all()  # noqa: S608
        snapshots.append(_Snapshot(link, data))
    return snapshots


def _parquet_snapshots(home: Path, tenant: str, keys: ParquetKeys, tables: list[LinkTable]) -> list[_Snapshot]:
    from targets.warehouse.parquet_crypto import ParquetCrypto

    crypto = ParquetCrypto(keys.parquet_master_key)
    snapshots = []
    for link in tables:
        for path in parquet_files(home, tenant, link.source, link.stream):
            snapshots.append(_Snapshot(link, _read_link_columns(path, crypto, link), path))
    return snapshots


def _read_link_columns(path: Path, crypto: t.Any, link: LinkTable) -> pa.Table:
    """Read only the link columns a file has; a file written before a column was added lacks it."""
    parquet_file = pq.ParquetFile(path, decryption_properties=crypto.decryption_properties())
    try:
        present = [name for name in link.column_names if name in parquet_file.schema_arrow.names]
        return parquet_file.read(columns=present)
    finally:
        parquet_file.close()


def _value_set(found: dict[str, set[str]]) -> pa.Array:
    return pa.array(sorted({value for values in found.values() for value in values}), type=pa.string())


def _collect_linked(snapshots: list[_Snapshot], value_set: pa.Array, found: dict[str, set[str]]) -> dict[str, set[str]]:
    """Return the pseudonyms in matched rows that are not in `found` yet, by class."""
    new: dict[str, set[str]] = {}
    for snapshot in snapshots:
        mask = subject_mask(snapshot.data, snapshot.link.column_names, value_set)
        if not _count_true(mask):
            continue
        matched = snapshot.data.filter(mask)
        for column in snapshot.link.columns:
            if column.name not in matched.column_names:
                continue
            pii_class = t.cast(str, column.pii_class)
            for value in _pseudonyms_in(matched.column(column.name)):
                if value not in found.get(pii_class, ()):
                    new.setdefault(pii_class, set()).add(value)
    return new


def _pseudonyms_in(values: pa.ChunkedArray) -> set[str]:
    """Return the distinct pseudonyms of a column; values that are not pseudonyms (a kept raw value) are skipped."""
    keys = pseudonym_keys(values)
    valid = pc.fill_null(pc.match_substring_regex(keys, _PSEUDONYM_REGEX), False)
    return {value for value in pc.unique(pc.filter(keys, valid)).to_pylist() if value is not None}


def _count_true(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
