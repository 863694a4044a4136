"""Singer message readers and writers that keep record values out of logs and errors.

singer-sdk's msgspec reader logs the whole input line when it cannot parse it.
Its line check quotes the whole message too, so both would leak personal data.
The writer here buffers output and flushes only after STATE, which keeps each
STATE behind the records before it without a flush per record.
"""

from __future__ import annotations

import json
import sys
import typing as t
from decimal import Decimal

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, MsgSpecWriter, decoder, serialize_jsonl
from singer_sdk.singerlib.exceptions import InvalidInputLine

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class SafeMsgSpecReader(MsgSpecReader):
    """Decode lines with msgspec; fall back to `json` for lines msgspec rejects."""

    def __init__(self) -> None:
        super().__init__()
        self._line_number = 0

    def deserialize_json(self, line: str) -> dict:
        """Decode one line; numbers with a fraction become `Decimal`, as in the SDK readers."""
        self._line_number += 1
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError:
            message = self._decode_with_json(line)

        if not isinstance(message, dict):
            msg = f"Input line {self._line_number} is not a JSON object; every Singer message is one."
            raise InvalidInputLine(msg)
        return message

    def _decode_with_json(self, line: str) -> object:
        # msgspec rejects an escaped lone UTF-16 surrogate ("\ud800"), which `json` accepts;
        # the batch builder later replaces such characters with U+FFFD.
        try:
            return json.loads(line, parse_float=Decimal)
        except ValueError:
            msg = f"Input line {self._line_number} is not valid JSON; check the output of the tap or mapper."
            raise InvalidInputLine(msg) from None

    @staticmethod
    def assert_line_requires(line_dict: dict, requires: set[str]) -> None:
        """Raise `InvalidInputLine` naming the message type and missing keys, not the message."""
        missing = sorted(requires - set(line_dict))
        if missing:
            kind = line_dict.get("type", "untyped")
            msg = f"A {kind} message is missing the required key(s) {', '.join(missing)}."
            raise InvalidInputLine(msg)


class BufferedMsgSpecWriter(MsgSpecWriter):
    """msgspec writer that flushes stdout only after STATE messages (and at exit).

    A string holding a lone UTF-16 surrogate cannot be encoded as UTF-8, so a
    message that fails to encode is written again with each such character
    replaced by U+FFFD.
    """

    def serialize_message(self, message: Message) -> bytearray:
        """Encode one message as a JSON line."""
        try:
            return super().serialize_message(message)
        except UnicodeEncodeError:
            return serialize_jsonl(_replace_lone_surrogates(message.to_dict()))

    def write_message(self, message: Message) -> None:
        """Write one message; flush if it is a STATE message."""
        sys.stdout.buffer.write(self.format_message(message))
        if getattr(message, "type", None) == "STATE":
            sys.stdout.buffer.flush()


def _replace_lone_surrogates(value: t.Any) -> t.Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_replace_lone_surrogates(key): _replace_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    return value
