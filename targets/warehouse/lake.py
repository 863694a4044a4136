"""Location of a tenant's Parquet lake: a local folder, or an S3 bucket (see `lake_s3`).

Paths inside the lake are relative and use '/', for example
`parquet/stripe/charges/part-20261205T080000-<uuid>.parquet`. The DuckDB load
ledger stores the same relative paths, so a file's identity does not depend on
where the lake lives.

Publishing is atomic in both stores: a reader lists and opens only complete
files. Locally a file is written to a hidden name, synced and renamed; on S3
an object becomes visible only when its upload completes.
"""

from __future__ import annotations

import os
import typing as t
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from privacy.keyring import fsync_file, fsync_folder

#: A function that writes a complete file to the pyarrow stream it is given.
FileWriter = Callable[[pa.NativeFile], None]

PARQUET_SUFFIX = ".parquet"


class Lake(t.Protocol):
    """Operations the target and the lake readers need from a store."""

    def describe(self, relative: str = "") -> str:
        """Return a location for messages: a path or an `s3://` URL (never credentials)."""
        ...

    def publish(self, relative: str, write: FileWriter) -> None:
        """Store a new file atomically: it is visible complete or not at all."""
        ...

    def files(self, folder: str) -> list[str]:
        """Return the published Parquet files under `folder` (recursively), sorted, as relative paths."""
        ...

    def open_input(self, relative: str) -> pa.NativeFile:
        """Open a published file for reading (for `pyarrow.parquet`)."""
        ...

    def remove(self, relative: str) -> None:
        """Delete a file; a file that is already gone is not an error."""
        ...


class LocalLake:
    """The lake in a local folder: the tenant's warehouse folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, relative: str = "") -> str:
        """Return the absolute path of `relative`."""
        return str(self.root / relative) if relative else str(self.root)

    def publish(self, relative: str, write: FileWriter) -> None:
        """Write to a hidden temporary name, fsync, rename, then fsync the folder.

        The file is written through pyarrow's own file class. A Python file
        object would make pyarrow take the GIL for every page it writes, and
        the read loop keeps the GIL most of the time.
        """
        final_path = self.root / relative
        folder = final_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        temporary_path = folder / f".{final_path.name}.tmp"
        try:
            temporary_path.touch(mode=0o600, exist_ok=False)
            with pa.OSFile(str(temporary_path), "wb") as handle:
                write(handle)
            fsync_file(temporary_path)
            os.replace(temporary_path, final_path)
        except BaseException:
            temporary_path.unlink(missing_ok=True)
            raise
        fsync_folder(folder)

    def files(self, folder: str) -> list[str]:
        """Return the Parquet files under `folder`, skipping hidden (temporary) names."""
        base = self.root / folder
        if not base.is_dir():
            return []
        found = (
            path
            for path in base.rglob(f"*{PARQUET_SUFFIX}")
            if path.is_file() and not path.name.startswith(".")
        )
        return sorted(path.relative_to(self.root).as_posix() for path in found)

    def open_input(self, relative: str) -> pa.NativeFile:
        """Memory-map the file."""
        return pa.memory_map(str(self.root / relative), "r")

    def remove(self, relative: str) -> None:
        """Unlink the file and sync its folder."""
        path = self.root / relative
        path.unlink(missing_ok=True)
        if path.parent.is_dir():
            fsync_folder(path.parent)

    def remove_temporary_files(self, folder: str) -> int:
        """Delete hidden temporary files that a killed writer left under `folder`; return how many."""
        base = self.root / folder
        if not base.is_dir():
            return 0
        stale = [path for path in base.rglob(f".*{PARQUET_SUFFIX}.tmp") if path.is_file()]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)
