"""Write the dashboard file privately (mode 0600, new folders 0700) and atomically.

Every OSError becomes a one-line `DashboardError` that names the path.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from spendlake import paths
from spendlake.dashboard.errors import DashboardError

#: Characters of the page's name kept in its temporary file's name, so that name stays under the 255-byte limit.
TEMPORARY_NAME_CHARACTERS = 64
#: Names of the kinds of file the dashboard does not replace, each with the `stat.S_IS*` test that detects it.
NOT_REGULAR_KINDS = (
    (stat.S_ISDIR, "folder"),
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def make_dashboard_folder(folder: Path) -> None:
    """Create `folder` and its missing parents with mode 0700, and set 0700 on `folder` itself."""
    make_missing_folders(folder)
    try:
        folder.chmod(0o700)
    except OSError as error:
        msg = f"Setting mode 0700 on the folder {folder} failed: {error.strerror or error}. Check its owner."
        raise DashboardError(msg) from None


def make_missing_folders(folder: Path) -> None:
    """Create `folder` and each missing parent with mode 0700; raise `DashboardError` naming the one that failed."""
    try:
        paths.make_private_folder(folder)
    except FileExistsError as error:
        raise _folder_error(Path(error.filename or folder), "it exists and is not a folder") from None
    except OSError as error:
        raise _folder_error(Path(error.filename or folder), error.strerror or str(error)) from None


def check_replaceable(path: Path) -> None:
    """Raise `DashboardError` when `path` exists but is not a regular file, which the dashboard must not replace."""
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        # Nothing is there. A file in place of a parent folder fails later, when the folders are made.
        return
    except OSError as error:
        raise _write_error(path, error) from None

    for is_kind, kind in NOT_REGULAR_KINDS:
        if is_kind(mode):
            msg = (
                f"The output path {path} is a {kind}, not a regular file, so the dashboard does not replace it. "
                "Pass a file path to --output."
            )
            raise DashboardError(msg)


def write_private_file(path: Path, text: str) -> None:
    """Replace the regular file `path` with `text` in one step: readers see the old file or the new one, never a part.

    The text goes to a temporary file (mode 0600) in the same folder, which
    is flushed to disk and then renamed over `path`. A `path` that exists as
    anything but a regular file (folder, symbolic link, FIFO, socket, device)
    raises `DashboardError` and is left as it is.
    """
    # NOTE: Another process could put something else at `path` between this check and the rename.
    check_replaceable(path)

    temporary: str | None = None
    try:
        prefix = f".{path.name[:TEMPORARY_NAME_CHARACTERS]}."
        descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as error:
        _remove_quietly(temporary)
        raise _write_error(path, error) from None
    except BaseException:
        _remove_quietly(temporary)
        raise


def _remove_quietly(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _folder_error(folder: Path, reason: str) -> DashboardError:
    msg = (
        f"Creating the folder {folder} for the dashboard failed: {reason}. "
        "Check the path and its permissions, or pass another --output path."
    )
    return DashboardError(msg)


def _write_error(path: Path, error: OSError) -> DashboardError:
    msg = (
        f"Writing the dashboard to {path} failed: {error.strerror or error}. "
        "Check the folder's permissions and free space, or pass another --output path."
    )
    return DashboardError(msg)
