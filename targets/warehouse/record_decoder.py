"""Decode a batch of RECORD lines of one stream into columns, in one call to msgspec.

The fast path joins the raw lines into one JSON array and decodes it into
typed structs built from the stream's layout. msgspec checks the envelope
(type and stream) and every value's JSON type in C. Object, array and decimal
values stay raw JSON text for Arrow to convert. Any surprise (a line that is not JSON, a wrong type,
a field the SCHEMA does not declare, an escaped lone surrogate) sends the
batch down the checked path, which decodes line by line and either loads the
batch or names the line that fails.
"""

from __future__ import annotations

import gc
import json
import typing as t
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter

import msgspec

from targets.warehouse.arrow_batch import RawJsonColumn
from targets.warehouse.arrow_schema import StreamLayout
from targets.warehouse.errors import InputLineError

#: msgspec type of each column kind on the fast path; checked again when Arrow arrays are built.
_FAST_TYPES: dict[str, t.Any] = {
    "string": str | None,
    "timestamp": str | None,
    "date": str | None,
    "integer": int | None,
    "number": float | None,
    # Raw text, so that a JSON string is not taken for a number; Arrow converts the texts exactly.
    "decimal": msgspec.Raw,
    "boolean": bool | None,
    "json": msgspec.Raw,
}
_NULL_RAW = msgspec.Raw(b"null")
#: Column kinds the fast path keeps as raw JSON text for Arrow to convert.
_RAW_KINDS = frozenset({"json", "decimal"})

#: Checks one decoded record; raises an error naming the line (the second argument) when it is invalid.
RecordValidator = t.Callable[[dict[str, t.Any], int], None]
_generic_decoder = msgspec.json.Decoder(float_hook=Decimal)


@dataclass
class DecodedBatch:
    """Column values of a batch, one list per declared column, plus undeclared field counts."""

    columns: dict[str, list[t.Any]]
    rows: int
    undeclared: dict[str, int] = field(default_factory=dict)
    #: True when msgspec checked each value's type (the fast path): see `build_records`.
    typed: bool = False


class BatchDecoder:
    """Decodes RECORD lines of one stream; build a new one when the stream's SCHEMA changes."""

    def __init__(
        self,
        layout: StreamLayout,
        ignored_fields: Sequence[str] = (),
        *,
        checked_only: bool = False,
        validator: RecordValidator | None = None,
    ) -> None:
        self._layout = layout
        self._validator = validator
        self._ignored = frozenset(ignored_fields)
        self._declared = frozenset(layout.column_names) | self._ignored
        self._checked_only = checked_only or validator is not None
        self._attributes = [f"c{index}" for index in range(len(layout.columns))]
        self._fast_decoder = self._build_fast_decoder()

    def decode(self, lines: Sequence[bytes], line_numbers: Sequence[int]) -> DecodedBatch:
        """Return the batch's columns; raise `InputLineError` naming the first line that cannot load."""
        if not self._checked_only:
            batch = self._decode_fast(lines)
            if batch is not None:
                return batch
        return self._decode_checked(lines, line_numbers)

    def _build_fast_decoder(self) -> msgspec.json.Decoder:
        layout = self._layout
        fields: list[tuple[str, t.Any, t.Any]] = []
        rename: dict[str, str] = {}
        for attribute, column in zip(self._attributes, layout.columns, strict=True):
            kind_type = _FAST_TYPES[column.type.kind]
            fields.append((attribute, kind_type, _NULL_RAW if kind_type is msgspec.Raw else None))
            rename[attribute] = column.name
        for index, name in enumerate(sorted(self._ignored)):
            attribute = f"ignored{index}"
            fields.append((attribute, msgspec.Raw, _NULL_RAW))
            rename[attribute] = name

        record_type = msgspec.defstruct(
            "Record", fields, rename=rename, forbid_unknown_fields=True, gc=False
        )
        line_type = msgspec.defstruct(
            "RecordLine",
            [
                ("type", t.Literal["RECORD"]),
                ("stream", t.Literal[layout.stream]),  # type: ignore[valid-type]
                ("record", record_type),
            ],
            gc=False,
        )
        return msgspec.json.Decoder(list[line_type])

    def _decode_fast(self, lines: Sequence[bytes]) -> DecodedBatch | None:
        text = b"[" + b",".join(lines) + b"]"
        try:
            with _collector_paused():
                messages = self._fast_decoder.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return None

        records = [message.record for message in messages]
        columns: dict[str, t.Any] = {}
        for attribute, column in zip(self._attributes, self._layout.columns, strict=True):
            values = list(map(attrgetter(attribute), records))
            columns[column.name] = RawJsonColumn(values) if column.type.kind in _RAW_KINDS else values
        return DecodedBatch(columns=columns, rows=len(records), typed=True)

    def _decode_checked(self, lines: Sequence[bytes], line_numbers: Sequence[int]) -> DecodedBatch:
        stream = self._layout.stream
        records: list[dict[str, t.Any]] = []
        undeclared: dict[str, int] = {}
        for line, number in zip(lines, line_numbers, strict=True):
            record = record_of_line(line, number, stream)
            if self._validator is not None:
                self._validator(record, number)
            for name in record:
                if name not in self._declared:
                    undeclared[name] = undeclared.get(name, 0) + 1
            records.append(record)

        columns = {name: [record.get(name) for record in records] for name in self._layout.column_names}
        return DecodedBatch(columns=columns, rows=len(records), undeclared=undeclared)


def record_of_line(line: bytes, number: int, stream: str) -> dict[str, t.Any]:
    """Decode one RECORD line of `stream` and return its record object."""
    message = decode_line(line, number, stream)
    if message.get("type") != "RECORD" or message.get("stream") != stream:
        # The fast classifier read this line as a RECORD of `stream`; a full decode disagrees.
        msg = f"Line {number}: the message does not parse as a RECORD of stream {stream!r}; check the tap or mapper output."
        raise InputLineError(msg)

    record = message.get("record")
    if not isinstance(record, dict):
        msg = f"Line {number}, stream {stream!r}: the RECORD message has no 'record' object; check the tap or mapper output."
        raise InputLineError(msg)
    return record


def decode_line(line: bytes | str, number: int, stream: str | None = None) -> dict[str, t.Any]:
    """Decode one Singer message; numbers with a fraction become `Decimal`. Errors name the line, not its text."""
    try:
        message = _generic_decoder.decode(line)
    except msgspec.DecodeError:
        message = _decode_with_json(line, number, stream)

    if not isinstance(message, dict):
        msg = f"Line {number}{_stream_part(stream)}: the line is not a JSON object; every Singer message is one."
        raise InputLineError(msg)
    return message


def _decode_with_json(line: bytes | str, number: int, stream: str | None) -> t.Any:
    # msgspec rejects an escaped lone UTF-16 surrogate ("\ud800"), which `json` accepts;
    # the batch builder later replaces such characters with U+FFFD.
    try:
        return json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        msg = f"Line {number}{_stream_part(stream)}: the message nests objects or arrays too deeply to load."
        raise InputLineError(msg) from None
    except ValueError:
        msg = (
            f"Line {number}{_stream_part(stream)}: the line is not valid JSON (truncated or corrupted output?); "
            f"check the output of the tap or mapper."
        )
        raise InputLineError(msg) from None


def _reject_constant(name: str) -> t.NoReturn:
    """Reject NaN and Infinity, which `json` accepts but JSON does not allow."""
    raise ValueError(name)


def _stream_part(stream: str | None) -> str:
    return f", stream {stream!r}" if stream else ""


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while msgspec allocates a batch of objects without cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
