"""Write the dashboard file privately (mode 0600, folders 0700) and atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from spendlake.dashboard.errors import DashboardError


def make_private_folder(folder: Path) -> None:
    """Create `folder` and its missing parents with mode 0700, and set 0700 on `folder` itself."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)


def write_private_file(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: readers see the old file or the new one, never a part.

    The text goes to a temporary file (mode 0600) in the same folder, which
    is flushed to disk and then renamed over `path`.
    """
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        msg = f"Writing the dashboard to {path} failed: {error.strerror or error}. Check the folder and free space."
        raise DashboardError(msg) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
