"""The RECORD fast path: binary chunked input, raw JSON values, buffered output.

Each stream gets a msgspec Struct type built from its SCHEMA, with one field
per schema property. A field contains the raw JSON text of its value
(`msgspec.Raw`), except hmac fields, which msgspec decodes to text or an
integer. A RECORD line is decoded into the Struct in one call. Kept values
stay the bytes they arrived in, except that kept objects which declare
sub-fields lose the undeclared ones. Transformed fields are replaced, and
dropped fields are unset, which msgspec leaves out when it encodes the message
back in one call.

Lines that are not RECORD messages, and RECORD lines the stream's Struct
cannot read (a field missing from the SCHEMA, a lone UTF-16 surrogate, an odd
`version`), go through the plugin's normal message handlers, in input order.
"""

from __future__ import annotations

import decimal
import itertools
import re
import sys
import typing as t
from collections import Counter
from datetime import UTC, datetime

import msgspec
from msgspec import UNSET, UnsetType

from mappers.pii.actions import DROP, ENCRYPT, ERASURE_CLASSES, HMAC, KEEP, Transforms
from mappers.pii.errors import MappingError
from mappers.pii.nested import exact_type, pruner
from mappers.pii.plan import StreamPlan
from mappers.pii.record_steps import PSEUDONYM_LENGTH, TOKEN_PREFIX, RecordSteps, compile_steps
from spendlake.pipes import widen_pipe
from spendlake.singer_io import SafeMsgSpecReader

#: Bytes read from the input at a time; a read returns early with what a pipe holds.
READ_CHUNK_BYTES = 1 << 20
#: Output bytes collected before they are written to standard output.
WRITE_CHUNK_BYTES = 1 << 20

_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_struct_numbers = itertools.count()


class MessageProbe(msgspec.Struct):
    """The type and stream of a Singer message; the other keys are skipped."""

    type: str
    stream: str | None = None


_probe_decoder = msgspec.json.Decoder(MessageProbe)
_encoder = msgspec.json.Encoder()
_encode = _encoder.encode
#: Encodes values the slow path decoded (numbers with a fraction as `Decimal`) back to JSON text.
_values_encoder = msgspec.json.Encoder(decimal_format="number")


#: hmac fields are decoded by msgspec (their text is hashed); a value of another type goes the slow path, which rejects it.
_PSEUDONYMISED_INPUT = str | int | None


def _decoded_type(field: t.Any) -> t.Any:
    """Return the type a field of a RECORD line is decoded to on the fast path.

    A kept object or array that declares sub-fields is decoded into Structs
    that accept only those sub-fields, so a value with others fails the line's
    decode and goes the slow path, which prunes it. Its declared sub-fields
    stay raw JSON. Where msgspec cannot name a sub-field (a quote, backslash or
    control character in it), the value stays raw JSON and is pruned in Python.
    """
    if field.action == HMAC:
        return _PSEUDONYMISED_INPUT
    if field.action == KEEP and field.shape is not None:
        try:
            return exact_type(field.shape)
        except ValueError:
            return msgspec.Raw
    return msgspec.Raw


def _hashed_input(value: t.Any, stream: str, field: str) -> t.Any:
    """Return a value the slow path decoded for hmac; raise unless it is text, an integer or None.

    A pseudonym of another type's text could never match an erasure request, which
    is made from text or identifiers.
    """
    if value is None or type(value) in (str, int):
        return value
    msg = (
        f"Stream {stream!r}: the value of hmac field {field!r} is {_json_kind(value)}, but hmac takes only text or "
        "whole numbers (identifiers). Nothing of the record was written; fix the field's type in the tap, "
        "or encrypt or drop the field in the policy."
    )
    raise MappingError(msg)


def _json_kind(value: t.Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, (float, decimal.Decimal)):
        return "a number with a fraction or exponent"
    return f"a {type(value).__name__}"


class StreamCodec:
    """Decode, map, verify and encode the RECORD messages of one stream by its plan."""

    def __init__(self, plan: StreamPlan, transforms: Transforms, *, erased: frozenset[str], fail_on_unknown: bool) -> None:
        self.plan = plan
        self.erased_records = 0
        self._erased = erased
        self._fail_on_unknown = fail_on_unknown
        self._time_extracted = TimeExtracted()

        names = list(plan.fields)
        attributes = [f"f{index}" for index in range(len(names))]
        attribute_of = dict(zip(names, attributes, strict=True))
        number = next(_struct_numbers)
        decoded_types = {name: _decoded_type(field) for name, field in plan.fields.items()}
        self.record_type = msgspec.defstruct(
            f"Record{number}",
            [(attribute_of[name], decoded_types[name], UNSET) for name in names],
            rename=dict(zip(attributes, names, strict=True)),
            forbid_unknown_fields=True,
            gc=False,  # values are raw JSON, text, numbers and Structs of raw JSON, so no reference cycle is possible
        )
        self.envelope_type = msgspec.defstruct(
            f"RecordMessage{number}",
            [
                ("type", str),
                ("stream", str),
                ("record", self.record_type),
                ("version", int | None | UnsetType, UNSET),
                ("time_extracted", str | None | UnsetType, UNSET),
            ],
            gc=False,
        )
        self.decode = msgspec.json.Decoder(self.envelope_type).decode
        self.attribute_of = attribute_of

        def attributes_with(*actions: str) -> tuple[str, ...]:
            return tuple(attribute_of[name] for name, field in plan.fields.items() if field.action in actions)

        self._pseudonym_caches = tuple(
            (attribute_of[name], *transforms.pseudonym_cache(t.cast("str", field.pii_class), name))
            for name, field in plan.fields.items()
            if field.action == HMAC
        )
        self._transforms = tuple(
            (
                attribute_of[name],
                transforms.build(field.action, source=plan.source, stream=plan.stream, field=name, pii_class=field.pii_class),
            )
            for name, field in plan.fields.items()
            if field.action not in (KEEP, DROP, HMAC)
        )
        # On the slow path, kept objects and arrays that declare sub-fields are pruned to those.
        self._pruners = {
            name: pruner(field.shape, plan.stream, name, plan.dropped_subfields)
            for name, field in plan.fields.items()
            if field.action == KEEP and field.shape is not None
        }
        self._decoded_names = frozenset(name for name, field in plan.fields.items() if field.action == HMAC)
        self._dropped = attributes_with(DROP)
        self._pseudonyms = attributes_with(HMAC)
        self._tokens = attributes_with(ENCRYPT)
        self._other_transformed = tuple(attribute for attribute, _ in self._transforms if attribute not in self._tokens)
        self._erasure_fields = tuple(
            (attribute_of[name], field.action == ENCRYPT)
            for name, field in plan.fields.items()
            if field.action in (HMAC, ENCRYPT) and field.pii_class in ERASURE_CLASSES
        ) if erased else ()
        # Kept values that stay raw JSON although they declare sub-fields are pruned by the steps, on both
        # paths, so the slow path leaves them to the steps.
        raw_pruners = tuple((attribute_of[name], prune) for name, prune in self._pruners.items() if decoded_types[name] is msgspec.Raw)
        self._pruners = {name: prune for name, prune in self._pruners.items() if decoded_types[name] is not msgspec.Raw}
        steps = RecordSteps(
            pseudonyms=self._pseudonym_caches,
            transforms=self._transforms + raw_pruners,
            dropped=self._dropped,
            tokens=self._tokens,
            other_transformed=self._other_transformed,
        )
        self._map_record, self._verify_record = compile_steps(
            steps, self._fail, self._keep_unless_erased if self._erasure_fields else None
        )

    def write(self, message: t.Any, output: OutputBuffer) -> None:
        """Map and verify a decoded RECORD message, then append it to `output` unless its subject was erased."""
        if not self._map_record(message.record):
            return
        if message.time_extracted is not UNSET:
            message.time_extracted = self._time_extracted(message.time_extracted)
        if message.version is None:
            message.version = UNSET
        output.add_record(_encode(message))

    def map(self, record: t.Any) -> bool:
        """Map a decoded record in place and verify it; return False when it belongs to an erased data subject.

        Pseudonyms come from the cache or are made, the other transforms run,
        dropped fields are unset, and then `verify` runs (see `record_steps`).
        """
        return self._map_record(record)

    def verify(self, record: t.Any) -> None:
        """Raise unless dropped fields are unset and each transformed field contains its action's output.

        Pseudonyms and field tokens were checked against their full pattern when
        they were made; here each value's type and shape is checked again.
        """
        self._verify_record(record)

    def _keep_unless_erased(self, record: t.Any) -> bool:
        if self._is_erased(record):
            self.erased_records += 1
            return False
        return True

    def _fail(self, problem: str, attribute: str) -> t.NoReturn:
        name = next(name for name, candidate in self.attribute_of.items() if candidate == attribute)
        msg = f"Stream {self.plan.stream!r}: a mapped record {problem} ({name}). Nothing of it was written."
        raise MappingError(msg)

    def _is_erased(self, record: t.Any) -> bool:
        erased = self._erased
        for attribute, is_token in self._erasure_fields:
            value = getattr(record, attribute)
            if value is UNSET or value is None:
                continue
            if (value[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + PSEUDONYM_LENGTH] if is_token else value) in erased:
                return True
        return False

    def record_from_values(self, values: dict[str, t.Any]) -> t.Any:
        """Build the stream's record from decoded values; fields missing from the SCHEMA are dropped and counted, or fail."""
        unknown = sorted(name for name in values if name not in self.attribute_of)
        if unknown and self._fail_on_unknown:
            msg = f"Stream {self.plan.stream!r}: a record carries field(s) not in its SCHEMA: {', '.join(unknown)}."
            raise MappingError(msg)
        self.plan.unknown_fields.update(unknown)
        return self.record_type(
            **{self.attribute_of[name]: self._slow_path_value(name, value) for name, value in values.items() if name in self.attribute_of}
        )

    def _slow_path_value(self, name: str, value: t.Any) -> t.Any:
        """Return a decoded value in the fast path's form: hmac input as is, other values as raw JSON, pruned."""
        if name in self._decoded_names:
            return _hashed_input(value, self.plan.stream, name)
        raw = msgspec.Raw(_values_encoder.encode(value))
        prune = self._pruners.get(name)
        return prune(raw) if prune is not None else raw


class OutputBuffer:
    """Collect output lines and write them to standard output in large writes.

    Lines are kept as a list and joined once per write. Appending each record
    to one growing bytearray made the allocator move it again and again, which
    cost about 4% of the mapper's time in a load of one million records.
    """

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._size = 0

    def add_record(self, encoded: bytes) -> None:
        """Append one encoded message without its newline."""
        self._lines.append(encoded)
        self._size += len(encoded)
        if self._size >= WRITE_CHUNK_BYTES:
            self.write_out()

    def write_line(self, line: bytes | bytearray) -> None:
        """Append one encoded line that already ends in a newline."""
        self.add_record(bytes(line.removesuffix(b"\n")))

    def write_out(self) -> None:
        """Hand the collected lines to standard output, each followed by a newline."""
        if self._lines:
            self._lines.append(b"")
            sys.stdout.buffer.write(b"\n".join(self._lines))
            self._lines.clear()
            self._size = 0

    def flush(self) -> None:
        """Write the collected bytes and flush standard output."""
        self.write_out()
        sys.stdout.buffer.flush()


class TimeExtracted:
    """Normalise `time_extracted` to UTC with a `Z`, remembering the last value (taps repeat it)."""

    def __init__(self) -> None:
        self._last: tuple[t.Any, t.Any] = (None, UNSET)

    def __call__(self, text: str | None) -> str | UnsetType:
        if text == self._last[0]:
            return self._last[1]
        if text is None:
            return UNSET
        normalised = text if _UTC_TIME.fullmatch(text) else _reformat_time(text)
        self._last = (text, normalised)
        return normalised


def _reformat_time(text: str) -> str | UnsetType:
    """Return an ISO-8601 time in UTC with a `Z`; a time without a zone is UTC; unreadable text is left out."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return UNSET
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.isoformat().replace("+00:00", "Z")


class RecordSink(t.Protocol):
    """The mapper's side of the fast path: its output buffer and the codec of each stream."""

    output: OutputBuffer

    def codec_for(self, stream: str) -> StreamCodec | None:
        """Return the codec of a stream whose SCHEMA arrived, else None."""


class FastRecordReader(SafeMsgSpecReader):
    """Read binary chunks, send RECORD messages to the fast path and every other line to its handler."""

    def __init__(self, sink: RecordSink) -> None:
        super().__init__()
        self._sink = sink

    def process_lines(self, file_input: t.IO[t.Any] | None, callbacks: dict[str, t.Callable[[dict], None]]) -> Counter[str]:
        """Process every line of the input in order and return the count per message type."""
        counts: Counter[str] = Counter()
        sink = self._sink
        output = sink.output
        records = 0
        codec: StreamCodec | None = None
        decode = _probe_decoder.decode  # replaced by the current stream's decoder
        stream = None
        number = 0
        file_input = file_input if file_input is not None else sys.stdin
        _widen_pipes(file_input)
        for lines in _line_batches(file_input):
            for line in lines:
                number += 1
                try:
                    message = decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    message = None
                if message is None or message.stream != stream or message.type != "RECORD" or codec is None:
                    found, message = self._switch_stream(line, sink)
                    if found is not None:
                        codec, decode, stream = found, found.decode, found.plan.stream
                if message is not None:
                    t.cast("StreamCodec", codec).write(message, output)
                    records += 1
                elif line.strip():
                    counts[self._dispatch(line, number, callbacks)] += 1
                    # A SCHEMA message may have replaced the stream's codec.
                    codec, decode, stream = None, _probe_decoder.decode, None
        counts["RECORD"] += records
        return counts

    @staticmethod
    def _switch_stream(line: bytes, sink: RecordSink) -> tuple[StreamCodec | None, t.Any]:
        """Find the codec of a RECORD line's stream and decode the line with it; (None, None) when it cannot."""
        try:
            probe = _probe_decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None, None
        if probe.type != "RECORD" or probe.stream is None:
            return None, None
        codec = sink.codec_for(probe.stream)
        if codec is None:
            return None, None
        try:
            return codec, codec.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return codec, None

    def _dispatch(self, line: bytes, number: int, callbacks: dict[str, t.Callable[[dict], None]]) -> str:
        """Decode a line fully and pass it to the handler of its message type."""
        self._line_number = number - 1  # deserialize_json counts the line again
        message = self.deserialize_json(line)  # type: ignore[arg-type]  # msgspec and json read bytes too
        self.assert_line_requires(message, requires={"type"})
        kind = message["type"]
        callback = callbacks.get(kind)
        if callback is None:
            self._process_unknown_message(message)
        else:
            callback(message)
        return str(kind)


def _widen_pipes(file_input: t.IO[t.Any]) -> None:
    """Give the input and output pipes one MiB of buffer, so the tap, this mapper and the target overlap."""
    for stream in (file_input, sys.stdout):
        try:
            descriptor = stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue  # an in-memory stream (tests)
        widen_pipe(descriptor)


def _line_batches(file_input: t.IO[t.Any]) -> t.Iterator[list[bytes]]:
    """Yield the complete lines of each chunk read; a last line without a newline comes at the end."""
    pending = b""
    for data in _binary_chunks(file_input):
        lines = data.split(b"\n")
        lines[0] = pending + lines[0]
        pending = lines.pop()
        yield lines
    if pending:
        yield [pending]


def _binary_chunks(file_input: t.IO[t.Any]) -> t.Iterator[bytes]:
    binary = getattr(file_input, "buffer", None)
    if binary is not None:
        read = getattr(binary, "read1", binary.read)
        while data := read(READ_CHUNK_BYTES):
            yield data
        return
    # An in-memory text stream (tests): encode its text as the bytes a pipe would carry.
    while text := file_input.read(READ_CHUNK_BYTES):
        yield text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
