"""A pipe between two pipeline stages is widened to one MiB; other descriptors are left alone."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from spendlake.pipes import PIPE_BYTES, widen_pipe


def test_pipe_grows_to_one_mebibyte() -> None:
    read_end, write_end = os.pipe()
    try:
        assert fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ) < PIPE_BYTES

        assert widen_pipe(read_end) is True

        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) == PIPE_BYTES
    finally:
        os.close(read_end)
        os.close(write_end)


def test_regular_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"{}\n")
    with path.open("rb") as handle:
        assert widen_pipe(handle.fileno()) is False


def test_closed_descriptor_returns_false() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)

    assert widen_pipe(read_end) is False
