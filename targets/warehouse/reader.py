"""Singer message reader: the SDK's msgspec reader, with errors that never quote the input line.

The SDK's readers put the whole offending line (record values included) into
their log lines and error messages; this reader names the line number instead.
"""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, decoder
from singer_sdk.singerlib.exceptions import InvalidInputLine


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
