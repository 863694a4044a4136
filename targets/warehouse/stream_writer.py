"""One stream's buffer of RECORD lines and the commit of each batch.

A batch is committed in this order:
1. decode the lines into typed Arrow columns, checking each value's type, on
   the read loop's thread;
2. on the committer's thread, check the whole batch (duplicate keys,
   pseudonym shapes, stored column types). A failure in 1 or 2 stops the
   batch before anything is written;
3. publish the encrypted Parquet file (atomic, durable);
4. then upsert into DuckDB and list the file in the load ledger, in one
   transaction.
If step 4 fails the file is deleted again. A run killed between 3 and 4 leaves
a file the ledger does not list; the next run deletes it (see `session`).
The read loop forwards STATE only after the batches before it are committed.
"""

from __future__ import annotations

import datetime
import logging
import time
import typing as t

import pyarrow as pa

from targets.warehouse.arrow_batch import build_records, with_loaded_at
from targets.warehouse.arrow_schema import StreamLayout, layout_from_schema
from targets.warehouse.committer import CommitJob, Committer
from targets.warehouse.errors import RecordTypeError
from targets.warehouse.parquet_store import check_folder_name, write_parquet_batch
from targets.warehouse.pii_guard import check_mapped_values, check_pii_mapped, check_schema_actions
from targets.warehouse.primary_key import reject_duplicate_keys
from targets.warehouse.record_decoder import BatchDecoder
from targets.warehouse.record_validation import schema_validator

if t.TYPE_CHECKING:
    from targets.warehouse.session import WarehouseSession

logger = logging.getLogger(__name__)

#: Lines decoded at a time; the batch is kept as typed Arrow columns, far smaller than the raw lines.
DECODE_CHUNK_ROWS = 2_000

#: Columns singer-sdk adds for record metadata that the warehouse does not store.
SDK_METADATA_COLUMNS = (
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_sync_started_at",
)


class StreamWriter:
    """Buffers one stream's RECORD lines and commits them in batches."""

    def __init__(
        self,
        session: WarehouseSession,
        stream: str,
        schema: dict[str, t.Any],
        key_properties: t.Sequence[str],
        committer: Committer,
        *,
        require_pii_mapping: bool,
        checked_decoding: bool = False,
        validate_records: bool = False,
    ) -> None:
        self.stream = stream
        self._session = session
        self._committer = committer
        self._require_pii_mapping = require_pii_mapping
        self._checked_decoding = checked_decoding
        self._validate_records = validate_records
        self._lines: list[bytes] = []
        self._line_numbers: list[int] = []
        self._chunks: list[pa.RecordBatch] = []
        self._chunk_line_numbers: list[int] = []
        #: Records waiting for the next commit.
        self.buffered_rows = 0
        #: Input line of the oldest record dropped with a failed batch, or None.
        self.discarded_from: int | None = None
        self.buffered_bytes = 0
        self.first_buffered_at = 0.0
        self.undeclared_fields: dict[str, int] = {}
        self.rows_committed = 0
        self.schema: dict[str, t.Any] = {}
        self.key_properties: tuple[str, ...] = ()
        self.apply_schema(schema, key_properties)

    @property
    def first_buffered_line(self) -> int | None:
        """Input line of the oldest uncommitted record, or None when the buffer is empty."""
        numbers = self._chunk_line_numbers or self._line_numbers
        return numbers[0] if numbers else None

    def apply_schema(self, schema: dict[str, t.Any], key_properties: t.Sequence[str]) -> None:
        """Map a SCHEMA message to columns and create or evolve the table; records buffered before it commit first."""
        self.flush()
        self._committer.wait()
        check_folder_name(self.stream)
        declared = {**schema, "properties": dict(schema.get("properties") or {})}
        ignored = [name for name in SDK_METADATA_COLUMNS if declared["properties"].pop(name, None) is not None]
        if self._require_pii_mapping:
            check_pii_mapped(self.stream, declared, self._session.tenant, self._session.pseudonym_key_id)
            check_schema_actions(self.stream, declared)

        layout = layout_from_schema(self.stream, declared, key_properties)
        self.stored_layout: StreamLayout = self._session.writer.ensure_table(layout)
        self.layout = layout
        validator = schema_validator(self.stream, schema) if self._validate_records else None
        self._decoder = BatchDecoder(layout, ignored, checked_only=self._checked_decoding, validator=validator)
        self.schema = schema
        self.key_properties = tuple(key_properties)

    def add_lines(self, lines: list[bytes], first_number: int) -> None:
        """Buffer consecutive RECORD lines of this stream; every `DECODE_CHUNK_ROWS` lines are decoded to Arrow."""
        if not self.buffered_rows:
            self.first_buffered_at = time.monotonic()
        self._lines.extend(lines)
        self._line_numbers.extend(range(first_number, first_number + len(lines)))
        self.buffered_rows += len(lines)
        self.buffered_bytes += sum(map(len, lines))
        if len(self._lines) >= DECODE_CHUNK_ROWS:
            self._decode_chunk()

    def flush(self) -> None:
        """Check the buffered records as one batch and hand it to the committer; the buffer is empty afterwards."""
        if not self.buffered_rows:
            return
        first_line = self.first_buffered_line
        try:
            self._decode_chunk()
            chunks, line_numbers = self._chunks, self._chunk_line_numbers
            self._reset_buffer()
            self._submit(pa.Table.from_batches(chunks, schema=self.layout.record_schema), line_numbers)
        except BaseException:
            self._discard(first_line)
            raise

    def _reset_buffer(self) -> None:
        self._lines, self._line_numbers, self._chunks, self._chunk_line_numbers = [], [], [], []
        self.buffered_rows = 0
        self.buffered_bytes = 0

    def _decode_chunk(self) -> None:
        """Turn the buffered lines into a typed record batch, so that the raw lines can be freed."""
        if not self._lines:
            return
        lines, line_numbers = self._lines, self._line_numbers
        self._lines, self._line_numbers = [], []
        try:
            decoded = self._decoder.decode(lines, line_numbers)
            for name, count in decoded.undeclared.items():
                self.undeclared_fields[name] = self.undeclared_fields.get(name, 0) + count
            self._chunks.append(build_records(self.layout, decoded.columns, line_numbers, typed=decoded.typed))
        except BaseException:
            self._discard(self._chunk_line_numbers[0] if self._chunk_line_numbers else line_numbers[0])
            raise
        self._chunk_line_numbers.extend(line_numbers)

    def _discard(self, first_line: int | None) -> None:
        """Drop a batch that failed its checks; no STATE after `first_line` may be forwarded any more."""
        self._reset_buffer()
        if first_line is not None and (self.discarded_from is None or first_line < self.discarded_from):
            self.discarded_from = first_line

    def _submit(self, records: pa.Table, line_numbers: list[int]) -> None:
        """Hand the batch to the committer's thread, which checks it as a whole and then commits it.

        The whole-batch checks run in Arrow, which releases the GIL, so on the
        committer's thread they overlap with the decoding of the next batch.
        A failed check fails the job, and nothing of the batch is written.
        """
        loaded_at = self._session.next_loaded_at()
        layout, stored_layout = self.layout, self.stored_layout
        check_values = self._require_pii_mapping

        def commit() -> None:
            table = with_loaded_at(records, layout, loaded_at)
            reject_duplicate_keys(layout, table, line_numbers)
            if check_values:
                check_mapped_values(layout, table)
            self._commit(_as_stored(table, stored_layout, line_numbers), stored_layout, loaded_at)

        self._committer.submit(CommitJob(first_line=line_numbers[0], run=commit))

    def _commit(self, table: pa.Table, stored_layout: StreamLayout, loaded_at: datetime.datetime) -> None:
        """Publish the Parquet file, then upsert and list it in the ledger (runs on the committer's thread)."""
        session = self._session
        relative = write_parquet_batch(
            table,
            session.lake,
            session.stream_folder(self.stream),
            session.parquet_crypto,
            stored_layout.pii_columns,
            loaded_at,
            stored_layout.key_properties,
        )
        try:
            session.writer.write_batch(stored_layout, table, relative, loaded_at)
        except BaseException:
            # The file is not in the ledger, so remove it rather than leave an orphan in the lake.
            session.lake.remove(relative)
            raise
        session.writer.checkpoint_large_log()

        self.rows_committed += table.num_rows
        logger.info("Committed %d rows of stream %r (%s).", table.num_rows, self.stream, relative)

    def log_undeclared_fields(self) -> None:
        """Log how many values of undeclared fields were dropped, by field name."""
        for name, count in sorted(self.undeclared_fields.items()):
            logger.warning(
                "Stream %r: dropped %d values of field %r, which the SCHEMA message does not declare.",
                self.stream,
                count,
                name,
            )


def _as_stored(table: pa.Table, stored: StreamLayout, line_numbers: list[int]) -> pa.Table:
    """Convert columns whose stored type is wider than the declared one (see `type_changes`)."""
    schema = stored.arrow_schema
    if table.schema.equals(schema):
        return table
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # pyarrow's message quotes the value, so only the columns are named.
        changed = [field.name for field in schema if not field.type.equals(table.schema.field(field.name).type)]
        msg = (
            f"Stream {stored.stream!r}: a value of the batch from line {line_numbers[0]} to {line_numbers[-1]} in "
            f"column(s) {changed} does not convert exactly to the stored column type. Declare the stored type in "
            f"the tap or mapper schema, or load the field under a new name; nothing from this batch was written."
        )
        raise RecordTypeError(msg) from None
