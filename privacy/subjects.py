"""Locate a data subject's rows in a tenant's warehouse, in DuckDB and in the Parquet lake.

A subject is searched by keyed pseudonym, never by clear value: an `hmac`
column stores the pseudonym itself, and an `encrypt` column stores a token whose
blind index is the same pseudonym. Only columns of class email, phone or
identifier are searched ("link columns").

Links are followed only through subject ids: identifier values that are the
primary key of a row in a table keyed by an identifier column (a customer id in
`stripe.customers`, say). The search starts with the rows carrying the searched
pseudonym, takes the subject ids among their identifier values, adds the rows
carrying those ids, and repeats until no new id appears (a fixed point), up to
a round limit. Card fingerprints, payment method ids and the e-mails and phones
found in linked rows are never followed, because a family may share a card or
an e-mail, and following them would reach other people. The e-mails and phones
of the subject's own records (the rows keyed by a followed subject id) are
collected for the erasure list but not searched. Both stores are searched
because the Parquet files keep older versions of rows.
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
from targets.warehouse.table_keys import stored_keys

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
    """The matched rows of a subject per table and per Parquet file, and the pseudonyms found.

    `followed` holds the pseudonyms rows are matched by: the searched one and
    the subject ids reached from it. `pseudonyms` adds, by class, the e-mails
    and phones of the subject's own records, which go on the erasure list
    without being searched.
    """

    searched: str
    pseudonyms: dict[str, set[str]]
    followed: frozenset[str]
    subject_ids: frozenset[str]
    record_values: dict[str, set[str]]
    rounds: int
    converged: bool
    table_rows: dict[str, int]
    parquet_rows: dict[Path, int]
    link_tables: list[LinkTable]
    file_tables: dict[Path, LinkTable]

    @property
    def all_pseudonyms(self) -> frozenset[str]:
        """Return every pseudonym found, of all classes (what the erasure list receives)."""
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


def subject_id_columns(connection: duckdb.DuckDBPyConnection, tables: list[LinkTable]) -> dict[str, str]:
    """Return, per `source.stream`, the primary-key column of the tables keyed by a single identifier column.

    The values of these columns are the subject ids: the only values links are followed through.
    """
    database = connection.execute("SELECT current_database()").fetchone()[0]
    primary_keys = {f"{source}.{stream}": names for (source, stream), names in stored_keys(connection, database).items()}

    columns = {}
    for link in tables:
        key = primary_keys.get(link.name, [])
        if len(key) != 1:
            continue
        column = next((item for item in link.columns if item.name.lower() == key[0].lower()), None)
        if column is not None and column.pii_class == "identifier":
            columns[link.name] = column.name
    return columns


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
    """Find every row linked to the subject whose `pii_class` pseudonym is `pseudonym`, through subject ids only.

    The link columns of each DuckDB table and each Parquet file are read once,
    then matched in memory round by round.
    """
    if max_rounds < 1:
        msg = "The number of link rounds must be at least 1."
        raise SubjectSearchError(msg)

    tables = link_tables(connection)
    id_columns = subject_id_columns(connection, tables)
    # NOTE: the link columns of every table and Parquet file are held in memory at once, which suits
    # tenants of marketing size; a lake far larger would need a per-file pass for each round.
    snapshots = _table_snapshots(connection, tables) + _parquet_snapshots(home, tenant, keys, tables)
    known_ids = _known_subject_ids(snapshots, id_columns)
    followed = {pseudonym}

    rounds, converged = 0, False
    while rounds < max_rounds:
        rounds += 1
        new = _linked_subject_ids(snapshots, _as_value_set(followed), known_ids) - followed
        if not new:
            converged = True
            break
        followed |= new

    subject_ids = frozenset(followed & known_ids)
    record_values = _record_values(snapshots, id_columns, subject_ids)
    found: dict[str, set[str]] = {pii_class: {pseudonym}}
    if subject_ids:
        found.setdefault("identifier", set()).update(subject_ids)
    for record_class, values in record_values.items():
        found.setdefault(record_class, set()).update(values)

    value_set = _as_value_set(followed)
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
        followed=frozenset(followed),
        subject_ids=subject_ids,
        record_values=record_values,
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


def _as_value_set(values: Iterable[str]) -> pa.Array:
    return pa.array(sorted(values), type=pa.string())


def _known_subject_ids(snapshots: list[_Snapshot], id_columns: dict[str, str]) -> set[str]:
    """Return every stored primary-key value of the identifier-keyed tables, in DuckDB and in Parquet."""
    known: set[str] = set()
    for snapshot in snapshots:
        column = id_columns.get(snapshot.link.name)
        if column is not None and column in snapshot.data.column_names:
            known |= _pseudonyms_in(snapshot.data.column(column))
    return known


def _linked_subject_ids(snapshots: list[_Snapshot], value_set: pa.Array, known_ids: set[str]) -> set[str]:
    """Return the subject ids among the identifier values of the rows that carry a pseudonym of `value_set`."""
    linked: set[str] = set()
    for snapshot in snapshots:
        mask = subject_mask(snapshot.data, snapshot.link.column_names, value_set)
        if not _count_true(mask):
            continue
        matched = snapshot.data.filter(mask)
        for column in snapshot.link.columns:
            if column.pii_class == "identifier" and column.name in matched.column_names:
                linked |= _pseudonyms_in(matched.column(column.name)) & known_ids
    return linked


def _record_values(snapshots: list[_Snapshot], id_columns: dict[str, str], subject_ids: frozenset[str]) -> dict[str, set[str]]:
    """Return the e-mail and phone pseudonyms of the rows whose primary key is one of `subject_ids`, by class."""
    values: dict[str, set[str]] = {}
    if not subject_ids:
        return values
    id_set = _as_value_set(subject_ids)
    for snapshot in snapshots:
        column = id_columns.get(snapshot.link.name)
        if column is None or column not in snapshot.data.column_names:
            continue
        records = snapshot.data.filter(subject_mask(snapshot.data, [column], id_set))
        for link_column in snapshot.link.columns:
            if link_column.pii_class in ("email", "phone") and link_column.name in records.column_names:
                values.setdefault(link_column.pii_class, set()).update(_pseudonyms_in(records.column(link_column.name)))
    return {pii_class: found for pii_class, found in values.items() if found}


def _pseudonyms_in(values: pa.ChunkedArray) -> set[str]:
    """Return the distinct pseudonyms of a column; values that are not pseudonyms (a kept raw value) are skipped."""
    keys = pseudonym_keys(values)
    valid = pc.fill_null(pc.match_substring_regex(keys, _PSEUDONYM_REGEX), False)
    return {value for value in pc.unique(pc.filter(keys, valid)).to_pylist() if value is not None}


def _count_true(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
