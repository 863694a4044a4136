"""The target's read loop: route Singer messages, commit batches, forward STATE once it is safe.

Most lines are RECORDs written by mapper-pii, which start with
`{"type":"RECORD","stream":"<name>"`. Such a line is routed by that prefix
and buffered as bytes, without decoding; its stream's writer decodes the
whole batch at once. Every other line is decoded here.

A STATE is forwarded once every record read before it is committed: the loop
keeps each STATE with its line number and writes the newest one older than
the oldest record still buffered in any stream.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
import typing as t
from collections import Counter

from targets.warehouse.committer import Committer
from targets.warehouse.errors import InputLineError, RecordBeforeSchemaError, UnsupportedMessageError
from targets.warehouse.record_decoder import decode_line
from targets.warehouse.stream_writer import StreamWriter

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from targets.warehouse.session import WarehouseSession

logger = logging.getLogger(__name__)

RECORD_PREFIX = b'{"type":"RECORD","stream":"'
_PREFIX_LENGTH = len(RECORD_PREFIX)
#: The same prefix as Python's `json.dumps` writes it, with a space after each separator.
SPACED_RECORD_PREFIX = b'{"type": "RECORD", "stream": "'
_SPACED_PREFIX_LENGTH = len(SPACED_RECORD_PREFIX)
_KNOWN_TYPES = ("SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION")


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """Batching and checking options of a run."""

    batch_size_rows: int = 24_576
    batch_size_bytes: int = 32 * 1024 * 1024
    max_batch_age_seconds: float = 300.0
    require_pii_mapping: bool = True
    checked_decoding: bool = False
    validate_records: bool = False


@dataclasses.dataclass(frozen=True)
class _PendingState:
    line: int
    value: t.Any


class MessageLoop:
    """Reads one run's input and drives the stream writers."""

    def __init__(
        self,
        session: Callable[[], WarehouseSession],
        settings: LoopSettings,
        process_state: Callable[[t.Any], t.Any],
        write_state: Callable[[t.Any], None],
    ) -> None:
        self._session = session
        self._settings = settings
        self._process_state = process_state
        self._write_state = write_state
        self._committer = Committer()
        self._finished_commits = 0
        self._writers: dict[str, StreamWriter] = {}
        self._by_encoded_name: dict[bytes, StreamWriter] = {}
        self._pending: list[_PendingState] = []
        self._last_written: t.Any = None
        self._ignored_versions: set[str] = set()
        self.counts: Counter[str] = Counter()
        self._lines_read = 0

    def run(self, blocks: Iterable[list[bytes]]) -> Counter[str]:
        """Process every block of lines; call `finish` at the end of the input. Returns the messages read, by type."""
        number = self._lines_read
        for block in blocks:
            if not block:
                self._check_commits()  # The input is idle: commit batches that have grown old.
                continue
            writer = self._only_stream_of(block)
            if writer is not None:
                self._add_records(writer, block, number + 1)
                self.counts["RECORD"] += len(block)
                number += len(block)
            else:
                self._route_lines(block, number + 1)
                number += len(block)
            self._check_commits()
        self._lines_read = number
        return self.counts

    def _only_stream_of(self, block: list[bytes]) -> StreamWriter | None:
        """Return the writer when every line of `block` is a RECORD of one known stream, else None."""
        first = block[0]
        if not first.startswith(RECORD_PREFIX):
            return None
        end = first.find(b'"', _PREFIX_LENGTH)
        writer = self._by_encoded_name.get(first[_PREFIX_LENGTH:end])
        if writer is None:
            return None
        prefix = first[: end + 1]
        return writer if all(map(bytes.startswith, block, itertools.repeat(prefix))) else None

    def _add_records(self, writer: StreamWriter, lines: list[bytes], first_number: int) -> None:
        """Buffer RECORD lines of one stream, committing a batch each time one fills."""
        max_rows, max_bytes = self._settings.batch_size_rows, self._settings.batch_size_bytes
        start = 0
        while start < len(lines):
            room = max(max_rows - writer.buffered_rows, 1)
            part = lines[start : start + room]
            writer.add_lines(part, first_number + start)
            start += len(part)
            if writer.buffered_rows >= max_rows or writer.buffered_bytes >= max_bytes:
                self._flush(writer)

    def _route_lines(self, block: list[bytes], first_number: int) -> None:
        """Handle a block that mixes streams or message types: runs of RECORD lines of one stream go in bulk."""
        run_writer: StreamWriter | None = None
        run_start = 0
        for index, line in enumerate(block):
            writer = self._record_writer(line)
            if writer is run_writer and writer is not None:
                continue
            if run_writer is not None:
                self._add_run(run_writer, block[run_start:index], first_number + run_start)
            run_writer, run_start = writer, index
            if writer is None:
                # A SCHEMA here may replace a writer, so the lines after it are looked up afresh.
                self._process_other(line, first_number + index)
        if run_writer is not None:
            self._add_run(run_writer, block[run_start:], first_number + run_start)

    def _record_writer(self, line: bytes) -> StreamWriter | None:
        """Return the writer of a RECORD line of a known stream, read from the line's prefix; None otherwise."""
        if line.startswith(RECORD_PREFIX):
            return self._by_encoded_name.get(line[_PREFIX_LENGTH : line.find(b'"', _PREFIX_LENGTH)])
        if line.startswith(SPACED_RECORD_PREFIX):
            return self._by_encoded_name.get(line[_SPACED_PREFIX_LENGTH : line.find(b'"', _SPACED_PREFIX_LENGTH)])
        return None

    def _add_run(self, writer: StreamWriter, lines: list[bytes], first_number: int) -> None:
        self.counts["RECORD"] += len(lines)
        self._add_records(writer, lines, first_number)

    def _process_other(self, line: bytes, number: int) -> None:
        if not line.strip():
            return
        message = decode_line(line, number)
        kind = message.get("type")
        if kind == "RECORD":
            self._buffer_record(message, line, number)
        elif kind == "SCHEMA":
            self._apply_schema(message, number)
        elif kind == "STATE":
            self._receive_state(message, number)
        elif kind == "ACTIVATE_VERSION":
            self._ignore_version(message, number)
        elif kind == "BATCH":
            stream = message.get("stream")
            msg = (
                f"Line {number}, stream {stream!r}: BATCH messages are not accepted, because batch files skip "
                f"mapper-pii. Run the tap without `batch_config` so that records pass through the mapper."
            )
            raise UnsupportedMessageError(msg)
        else:
            type_text = repr(kind)[:40] if isinstance(kind, str) else f"a {type(kind).__name__}"
            msg = (
                f"Line {number}: unknown Singer message type {type_text}; expected one of {', '.join(_KNOWN_TYPES)}. "
                f"Check the tap or mapper output."
            )
            raise InputLineError(msg)
        self.counts[str(kind)] += 1

    def _buffer_record(self, message: dict[str, t.Any], line: bytes, number: int) -> None:
        stream = _required_text(message, "stream", number, "RECORD")
        writer = self._writers.get(stream)
        if writer is None:
            msg = (
                f"Line {number}, stream {stream!r}: a RECORD arrived before the stream's SCHEMA message. "
                f"The tap must send SCHEMA first; check the tap or any stream maps that rename streams."
            )
            raise RecordBeforeSchemaError(msg)
        if not isinstance(message.get("record"), dict):
            msg = f"Line {number}, stream {stream!r}: the RECORD message has no 'record' object."
            raise InputLineError(msg)

        self._add_records(writer, [line], number)

    def _apply_schema(self, message: dict[str, t.Any], number: int) -> None:
        stream = _required_text(message, "stream", number, "SCHEMA")
        schema = message.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            msg = f"Line {number}, stream {stream!r}: the SCHEMA message needs a 'schema' object with 'properties'."
            raise InputLineError(msg)
        keys = message.get("key_properties") or []
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            msg = f"Line {number}, stream {stream!r}: 'key_properties' must be a list of field names."
            raise InputLineError(msg)

        writer = self._writers.get(stream)
        if writer is None:
            _reject_case_twin(stream, self._writers, number)
            writer = StreamWriter(
                self._session(),
                stream,
                schema,
                keys,
                self._committer,
                require_pii_mapping=self._settings.require_pii_mapping,
                checked_decoding=self._settings.checked_decoding,
                validate_records=self._settings.validate_records,
            )
            self._writers[stream] = writer
            self._by_encoded_name[json.dumps(stream, ensure_ascii=False).encode("utf-8", "surrogatepass")[1:-1]] = writer
        elif schema != writer.schema or tuple(keys) != writer.key_properties:
            writer.apply_schema(schema, keys)
            self._write_ready_state()

    def _receive_state(self, message: dict[str, t.Any], number: int) -> None:
        if "value" not in message:
            msg = f"Line {number}: the STATE message has no 'value'."
            raise InputLineError(msg)
        value = self._process_state(message["value"])
        self._pending.append(_PendingState(number, value))
        self._write_ready_state()

    def _ignore_version(self, message: dict[str, t.Any], number: int) -> None:
        stream = message.get("stream")
        if stream not in self._ignored_versions:
            self._ignored_versions.add(stream)
            logger.warning(
                "Line %d, stream %r: ACTIVATE_VERSION is ignored; rows upsert by key and deletions arrive as "
                "tombstones (_sdc_deleted_at).",
                number,
                stream,
            )

    def _flush(self, writer: StreamWriter) -> None:
        writer.flush()
        self._write_ready_state()

    def _check_commits(self) -> None:
        """Raise a failed commit's error, forward STATE after finished commits, and flush old batches."""
        self._committer.raise_failure()
        finished = self._committer.finished
        if finished != self._finished_commits:
            self._finished_commits = finished
            self._write_ready_state()

        oldest_allowed = time.monotonic() - self._settings.max_batch_age_seconds
        for writer in self._writers.values():
            if writer.buffered_rows and writer.first_buffered_at < oldest_allowed:
                self._flush(writer)

    def _write_ready_state(self) -> None:
        """Write the newest STATE whose records are all committed; drop the older ones."""
        if not self._pending:
            return
        uncommitted = [writer.first_buffered_line for writer in self._writers.values() if writer.buffered_rows]
        uncommitted += [writer.discarded_from for writer in self._writers.values() if writer.discarded_from is not None]
        in_flight = self._committer.oldest_in_flight
        if in_flight is not None:
            uncommitted.append(in_flight)
        oldest_buffered = min(uncommitted, default=None)
        ready = [state for state in self._pending if oldest_buffered is None or state.line < oldest_buffered]
        if not ready:
            return

        self._pending = self._pending[len(ready) :]
        newest = ready[-1].value
        if newest != self._last_written:
            self._write_state(newest)
            self._last_written = newest

    def finish(self) -> None:
        """Commit every buffer, oldest first, forwarding STATE as each commit allows."""
        waiting = [writer for writer in self._writers.values() if writer.buffered_rows]
        for writer in sorted(waiting, key=lambda item: item.first_buffered_line or 0):
            self._flush(writer)
        self._committer.wait()
        self._write_ready_state()
        for writer in self._writers.values():
            writer.log_undeclared_fields()


    def close(self) -> None:
        """Let commits in progress finish, forward the STATE they complete, and stop the committer's thread.

        Called after a failure too: batches read before a bad line still commit,
        and a STATE whose records are all committed is safe to forward.
        """
        self._committer.close()
        if self._committer.failed:
            return
        self._write_ready_state()


def _reject_case_twin(stream: str, writers: dict[str, StreamWriter], number: int) -> None:
    """Raise when another stream's name differs only in case: DuckDB table names ignore case."""
    twin = next((name for name in writers if name.lower() == stream.lower()), None)
    if twin is not None:
        msg = (
            f"Line {number}, stream {stream!r}: stream {twin!r} of this run differs only in case, and both would "
            f"map to one DuckDB table. Rename one of them (for example with a stream map alias)."
        )
        raise InputLineError(msg)


def _required_text(message: dict[str, t.Any], key: str, number: int, kind: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value:
        msg = f"Line {number}: the {kind} message has no {key!r} name; every {kind} names its stream."
        raise InputLineError(msg)
    return value
