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
import json
import logging
import time
import typing as t
from collections import Counter

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
#: How often (in lines) the loop checks the age of buffered records.
_AGE_CHECK_MASK = 0x0FFF
_KNOWN_TYPES = ("SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION")


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """Batching and checking options of a run."""

    batch_size_rows: int = 50_000
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
        self._writers: dict[str, StreamWriter] = {}
        self._by_encoded_name: dict[bytes, StreamWriter] = {}
        self._pending: list[_PendingState] = []
        self._last_written: t.Any = None
        self._ignored_versions: set[str] = set()
        self.counts: Counter[str] = Counter()
        self._lines_read = 0
        self._decoded_lines = 0

    def run(self, lines: Iterable[bytes]) -> Counter[str]:
        """Process every line; call `finish` at the end of the input. Returns the messages read, by type."""
        settings = self._settings
        max_rows, max_bytes = settings.batch_size_rows, settings.batch_size_bytes
        routes = self._by_encoded_name
        first = self._lines_read + 1
        decoded_before = self._decoded_lines
        number = first - 1
        for number, line in enumerate(lines, start=first):
            writer = None
            if line.startswith(RECORD_PREFIX):
                writer = routes.get(line[_PREFIX_LENGTH : line.find(b'"', _PREFIX_LENGTH)])
            elif line.startswith(SPACED_RECORD_PREFIX):
                writer = routes.get(line[_SPACED_PREFIX_LENGTH : line.find(b'"', _SPACED_PREFIX_LENGTH)])
            if writer is not None:
                writer.add(line, number)
                if writer.buffered_rows >= max_rows or writer.buffered_bytes >= max_bytes:
                    self._flush(writer)
                if not number & _AGE_CHECK_MASK:
                    self._flush_old_batches()
                continue
            self._process_other(line, number)

        # Lines routed by prefix are RECORDs; `_process_other` counts the lines it decodes itself.
        routed = (number - self._lines_read) - (self._decoded_lines - decoded_before)
        self.counts["RECORD"] += routed
        self._lines_read = number
        return self.counts

    def _process_other(self, line: bytes, number: int) -> None:
        self._decoded_lines += 1
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
            shown = repr(kind)[:40] if isinstance(kind, str) else f"a {type(kind).__name__}"
            msg = (
                f"Line {number}: unknown Singer message type {shown}; expected one of {', '.join(_KNOWN_TYPES)}. "
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

        writer.add(line, number)
        if writer.buffered_rows >= self._settings.batch_size_rows:
            self._flush(writer)

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
            writer = StreamWriter(
                self._session(),
                stream,
                schema,
                keys,
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

    def _flush_old_batches(self) -> None:
        oldest_allowed = time.monotonic() - self._settings.max_batch_age_seconds
        for writer in self._writers.values():
            if writer.buffered_rows and writer.first_buffered_at < oldest_allowed:
                self._flush(writer)

    def _write_ready_state(self) -> None:
        """Write the newest STATE whose records are all committed; drop the older ones."""
        if not self._pending:
            return
        buffered = [writer.first_buffered_line for writer in self._writers.values() if writer.buffered_rows]
        oldest_buffered = min(buffered, default=None)
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
        self._write_ready_state()
        for writer in self._writers.values():
            writer.log_undeclared_fields()


def _required_text(message: dict[str, t.Any], key: str, number: int, kind: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value:
        msg = f"Line {number}: the {kind} message has no {key!r} name; every {kind} names its stream."
        raise InputLineError(msg)
    return value
