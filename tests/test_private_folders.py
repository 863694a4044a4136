"""`make_private_folder`: every folder it creates is 0700 whatever the umask, and existing folders keep their mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from privacy.audit import append_audit_event
from spendlake.paths import make_private_folder, privacy_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_parents_private_under_open_umask(tmp_path: Path) -> None:
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    previous = os.umask(0o022)
    try:
        folder = make_private_folder(existing / "a" / "b" / "c")
    finally:
        os.umask(previous)

    assert folder.is_dir()
    assert [mode(path) for path in (existing / "a", existing / "a" / "b", folder)] == [0o700, 0o700, 0o700]
    assert mode(existing) == 0o755


def test_audit_log_folders_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    previous = os.umask(0o022)
    try:
        append_audit_event(home, "acme", "test.event", {"count": 1})
    finally:
        os.umask(previous)

    folder = privacy_dir(home, "acme")
    assert mode(folder.parent) == 0o700
    assert mode(folder) == 0o700
