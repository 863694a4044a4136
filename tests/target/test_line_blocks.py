"""Input lines arrive in blocks, whole, in order, from a pipe or from an iterable of lines."""

from __future__ import annotations

import os
import threading

from targets.warehouse.line_blocks import BLOCK_LINES, line_blocks


def test_file_lines_split_whole(tmp_path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"".join(f'{{"n":{number}}}\n'.encode() for number in range(50_000)) + b'{"last":true}')

    with path.open("rb") as source:
        blocks = list(line_blocks(source))

    lines = [line for block in blocks for line in block]
    assert lines == [f'{{"n":{number}}}'.encode() for number in range(50_000)] + [b'{"last":true}']
    assert len(blocks) > 1


def test_idle_pipe_yields_empty_block() -> None:
    read_end, write_end = os.pipe()
    reader = os.fdopen(read_end, "rb")
    writer = os.fdopen(write_end, "wb")

    blocks = line_blocks(reader, idle_seconds=0.05)
    idle = next(blocks)
    writer.write(b'{"type":"STATE","value":{}}\n')
    writer.close()

    assert idle == []
    assert [block for block in blocks if block] == [[b'{"type":"STATE","value":{}}']]
    reader.close()


def test_pipe_yields_what_has_arrived_without_waiting_for_more() -> None:
    read_end, write_end = os.pipe()
    reader = os.fdopen(read_end, "rb")
    writer = os.fdopen(write_end, "wb")
    writer.write(b'{"type":"STATE","value":{}}\n{"partial"')
    writer.flush()

    blocks = line_blocks(reader)
    first = next(blocks)

    # The STATE line comes out while the writer still holds the pipe open.
    assert first == [b'{"type":"STATE","value":{}}']
    finisher = threading.Thread(target=lambda: (writer.write(b':1}\n'), writer.close()))
    finisher.start()
    assert list(blocks) == [[b'{"partial":1}']]
    finisher.join()
    reader.close()


def test_iterable_of_lines_is_chunked() -> None:
    lines = [f"{number}\n".encode() for number in range(BLOCK_LINES * 2 + 5)]

    blocks = list(line_blocks(iter(lines)))

    assert [len(block) for block in blocks] == [BLOCK_LINES, BLOCK_LINES, 5]
    assert [line for block in blocks for line in block] == lines
