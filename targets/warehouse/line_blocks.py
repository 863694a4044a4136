"""Read the target's input as blocks of lines, so the read loop handles many lines per step.

From a file descriptor, a reader thread takes whatever the pipe holds (up to
one block per read) and queues it, up to `READ_AHEAD_BLOCKS` blocks. The
stage before the target can then keep writing while the loop decodes or hands
over a batch: without the queue, a one-MiB pipe filled within milliseconds and
the two processes took turns. Reads do not wait for a block to fill, so a slow
tap's STATE messages are not held back. When nothing arrives for
`idle_seconds`, an empty block is yielded, so the loop can commit batches that
have grown old.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import typing as t
from collections.abc import Iterable, Iterator

from spendlake.pipes import widen_pipe

BLOCK_BYTES = 1 << 20
#: Blocks read ahead of the loop at most (8 MiB of input).
READ_AHEAD_BLOCKS = 8
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

    widen_pipe(descriptor)
    reader = _ReadAhead(descriptor)
    try:
        yield from _split_lines(reader, idle_seconds)
    finally:
        reader.stop()


def _split_lines(reader: _ReadAhead, idle_seconds: float) -> Iterator[list[bytes]]:
    tail = b""
    while True:
        data = reader.next_block(idle_seconds)
        if data is None:
            yield []
            continue
        if not data:
            break
        lines = data.split(b"\n")
        lines[0] = tail + lines[0]
        tail = lines.pop()
        if lines:
            yield lines
    if tail:
        yield [tail]


class _ReadAhead:
    """A daemon thread that reads a descriptor into a bounded queue; an empty block marks the end."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._blocks: queue.Queue[bytes | OSError] = queue.Queue(maxsize=READ_AHEAD_BLOCKS)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, name="warehouse-input", daemon=True)
        self._thread.start()

    def next_block(self, timeout: float) -> bytes | None:
        """Return the next block read, b"" at the end of the input, or None when nothing arrived in `timeout` seconds."""
        try:
            block = self._blocks.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(block, OSError):
            raise block
        return block

    def stop(self) -> None:
        """Let the thread end once its current read returns; the loop no longer takes blocks."""
        self._stopped.set()

    def _read(self) -> None:
        while not self._stopped.is_set():
            try:
                block: bytes | OSError = os.read(self._descriptor, BLOCK_BYTES)
            except OSError as error:
                block = error
            if not self._put(block) or not block or isinstance(block, OSError):
                return

    def _put(self, block: bytes | OSError) -> bool:
        """Queue a block, waiting while the queue is full; False once the loop has stopped."""
        while not self._stopped.is_set():
            try:
                self._blocks.put(block, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False


def _descriptor(source: t.BinaryIO | Iterable[bytes]) -> int | None:
    """Return the file descriptor to read directly, or None for a stream without one.

    Reading the descriptor bypasses the stream's own buffer, which is empty
    because nothing reads the target's input before the loop does.
    """
    try:
        return source.fileno()  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return None
