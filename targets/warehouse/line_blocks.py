"""Read the target's input as blocks of lines, so the read loop handles many lines per step.

From a file descriptor, each read takes whatever the pipe holds (up to one
block) without waiting for more, so a slow tap's STATE messages are not held
back until a block fills. When nothing arrives for `idle_seconds`, an empty
block is yielded, so the loop can commit batches that have grown old.
"""

from __future__ import annotations

import itertools
import os
import select
import typing as t
from collections.abc import Iterable, Iterator

BLOCK_BYTES = 1 << 20
#: Lines per block when the input is an iterable of lines rather than a binary stream.
BLOCK_LINES = 1_000


def line_blocks(source: t.BinaryIO | Iterable[bytes], idle_seconds: float = 1.0) -> Iterator[list[bytes]]:
    """Yield the input's lines in blocks (an empty block after each idle spell); a line may keep its newline."""
    descriptor = _descriptor(source)
    if descriptor is None:
        lines = iter(t.cast("Iterable[bytes]", source))
        while block := list(itertools.islice(lines, BLOCK_LINES)):
            yield block
        return

    tail = b""
    while True:
        ready, _, _ = select.select([descriptor], [], [], idle_seconds)
        if not ready:
            yield []
            continue
        data = os.read(descriptor, BLOCK_BYTES)
        if not data:
            break
        lines = (tail + data).split(b"\n")
        tail = lines.pop()
        if lines:
            yield lines
    if tail:
        yield [tail]


def _descriptor(source: t.BinaryIO | Iterable[bytes]) -> int | None:
    """Return the file descriptor to read directly, or None for a stream without one.

    Reading the descriptor bypasses the stream's own buffer, which is empty
    because nothing reads the target's input before the loop does.
    """
    try:
        return source.fileno()  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return None
