"""Read the target's input as blocks of lines, so the read loop handles many lines per step.

From a binary stream, each read takes whatever the pipe holds (up to one
block) without waiting for more, so a slow tap's STATE messages are not held
back until a block fills.
"""

from __future__ import annotations

import itertools
import typing as t
from collections.abc import Iterable, Iterator

BLOCK_BYTES = 1 << 20
#: Lines per block when the input is an iterable of lines rather than a binary stream.
BLOCK_LINES = 1_000


def line_blocks(source: t.BinaryIO | Iterable[bytes]) -> Iterator[list[bytes]]:
    """Yield the input's lines in blocks; a line may keep its trailing newline."""
    read1 = getattr(source, "read1", None)
    if read1 is None:
        lines = iter(t.cast("Iterable[bytes]", source))
        while block := list(itertools.islice(lines, BLOCK_LINES)):
            yield block
        return

    tail = b""
    while data := read1(BLOCK_BYTES):
        lines = (tail + data).split(b"\n")
        tail = lines.pop()
        if lines:
            yield lines
    if tail:
        yield [tail]
