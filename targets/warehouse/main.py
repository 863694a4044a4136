"""The `target-warehouse` command."""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc `mallopt` parameters and the values the target sets.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 32 << 20
_TRIM_THRESHOLD_BYTES = 64 << 20

#: How long a thread waits for the GIL before the holder must release it (Python's default: 5 ms).
#: The committer thread takes the GIL back about 40 times per batch, after DuckDB statements,
#: pyarrow calls and file operations, while the read loop keeps it almost all the time. At 5 ms
#: per wait, a profile showed the committer waiting for the GIL for about half of its time.
SWITCH_INTERVAL_SECONDS = 0.0002


def main() -> None:
    """Run the target's command line with pyarrow on the system allocator, fewer page faults and short GIL waits."""
    # pyarrow's default allocator (mimalloc) keeps freed batch memory for reuse, which added about
    # 55 MB to the target's peak RSS in a load of one million records. The setting is read when
    # pyarrow first allocates, so it is made before anything imports pyarrow.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    keep_freed_blocks_mapped()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    from targets.warehouse.target import TargetWarehouse

    TargetWarehouse.cli()


def keep_freed_blocks_mapped() -> None:
    """Let glibc reuse freed blocks of up to 32 MiB instead of returning them to the kernel.

    The read loop allocates and frees blocks of about a megabyte all the time
    (input blocks, joined lines, Arrow buffers). With glibc's defaults many of
    them were fresh mappings, and the page faults cost about 0.5 s of system
    time in a load of one million records, with no gain in peak memory.
    Elsewhere than glibc this does nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
