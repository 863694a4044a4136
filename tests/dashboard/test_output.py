"""Writing the page: private modes, new folders 0700, no replaced FIFO or folder, one-line errors for OSError."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from spendlake.dashboard.errors import DashboardError
from spendlake.dashboard.output import (
    make_dashboard_folder,
    make_missing_folders,
    write_private_file,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_replaces_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("old page")
    path.chmod(0o644)

    write_private_file(path, "new page")

    assert path.read_text() == "new page"
    assert mode(path) == 0o600
    assert [item.name for item in tmp_path.iterdir()] == ["page.html"]


def test_write_rejects_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    with pytest.raises(DashboardError, match=f"The output path {fifo} is a FIFO, not a regular file"):
        write_private_file(fifo, "page")

    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [item.name for item in tmp_path.iterdir()] == ["pipe"]


def test_write_rejects_socket(tmp_path: Path) -> None:
    path = tmp_path / "page.sock"
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(path))

        with pytest.raises(DashboardError, match="is a socket, not a regular file"):
            write_private_file(path, "page")
    finally:
        listener.close()

    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_write_rejects_symlink(tmp_path: Path) -> None:
    # The CLI resolves --output first, so only the default path or a path swapped in later can be a link here.
    target = tmp_path / "target.html"
    target.write_text("target")
    link = tmp_path / "page.html"
    link.symlink_to(target)

    with pytest.raises(DashboardError, match="is a symbolic link, not a regular file"):
        write_private_file(link, "page")

    assert link.is_symlink()
    assert target.read_text() == "target"


def test_write_rejects_folder(tmp_path: Path) -> None:
    folder = tmp_path / "page.html"
    folder.mkdir()

    with pytest.raises(DashboardError, match="is a folder, not a regular file"):
        write_private_file(folder, "page")

    assert list(folder.iterdir()) == []


def test_write_parent_is_file(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    path = blocker / "out.html"

    with pytest.raises(DashboardError) as caught:
        write_private_file(path, "page")

    assert str(caught.value) == (
        f"Writing the dashboard to {path} failed: Not a directory. "
        "Check the folder's permissions and free space, or pass another --output path."
    )
    assert blocker.read_text() == "keep me"


def test_write_long_file_name(tmp_path: Path) -> None:
    # The temporary file's name adds a dot, a random part and ".tmp" to the page's name.
    path = tmp_path / ("p" * 250 + ".html")

    write_private_file(path, "page")

    assert path.read_text() == "page"
    assert [item.name for item in tmp_path.iterdir()] == [path.name]


def test_missing_folders_all_0700(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    folder = tmp_path / "a" / "b" / "c"

    make_missing_folders(folder)

    assert [mode(tmp_path / part) for part in ("a", "a/b", "a/b/c")] == [0o700, 0o700, 0o700]
    assert mode(tmp_path) == 0o755


def test_missing_folders_despite_umask(tmp_path: Path) -> None:
    previous = os.umask(0o277)
    try:
        make_missing_folders(tmp_path / "a" / "b")
    finally:
        os.umask(previous)

    assert mode(tmp_path / "a") == 0o700
    assert mode(tmp_path / "a" / "b") == 0o700


def test_existing_folder_keeps_mode(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    folder.chmod(0o751)

    make_missing_folders(folder)

    assert mode(folder) == 0o751


def test_private_folder_sets_0700(tmp_path: Path) -> None:
    folder = tmp_path / "dashboard"
    folder.mkdir()
    folder.chmod(0o755)

    make_dashboard_folder(folder)

    assert mode(folder) == 0o700


def test_missing_folders_under_file(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")

    with pytest.raises(DashboardError) as caught:
        make_missing_folders(blocker / "sub")

    assert str(caught.value) == (
        f"Creating the folder {blocker} for the dashboard failed: it exists and is not a folder. "
        "Check the path and its permissions, or pass another --output path."
    )
    assert blocker.read_text() == "keep me"
