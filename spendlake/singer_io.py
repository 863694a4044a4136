"""Singer message readers and writers that keep record values out of logs and errors.

singer-sdk's msgspec reader logs the whole input line when it cannot parse it.
Its line check quotes the whole message too, so both would leak personal data.
The writer here buffers output and flushes only after STATE, which keeps each
STATE behind the records before it without a flush per record.
"""

from __future__ import annotations

import sys
import typing as t

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, MsgSpecWriter, decoder
from singer_sdk.singerlib.exceptions import InvalidInputLine

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class SafeMsgSpecReader(MsgSpecReader):
    """msgspec reader whose errors give the line number, never the line."""

    def __init__(self) -> None:
        super().__init__()
        self._line_number = 0

    def deserialize_json(self, line: str) -> dict[str, t.Any]:
        """Parse one line; on failure raise with its line number only."""
        self._line_number += 1
        try:
            return decoder.decode(line)  # type: ignore[no-any-return]
        except msgspec.DecodeError:
            msg = f"Input line {self._line_number} is not valid JSON; check the upstream plugin's output."
            raise InvalidInputLine(msg) from None

    @staticmethod
    def assert_line_requires(line_dict: dict[str, t.Any], requires: set[str]) -> None:
        """Check required keys, naming only the keys."""
        missing = requires - set(line_dict)
        if missing:
            msg = f"A Singer message is missing required key(s): {', '.join(sorted(missing))}."
            raise InvalidInputLine(msg)


class BufferedMsgSpecWriter(MsgSpecWriter):
    """msgspec writer that flushes stdout only after STATE messages (and at exit)."""

    def write_message(self, message: Message) -> None:
        """Write one message; flush if it is a STATE message."""
        sys.stdout.buffer.write(self.format_message(message))
        if getattr(message, "type", None) == "STATE":
            sys.stdout.buffer.flush()

