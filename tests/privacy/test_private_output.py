"""Output files with personal data: owner-only, atomic, and a clear error where they cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest

from privacy.private_output import PrivateOutputError, write_private_text


def test_output_file_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "export.json"

    write_private_text(path, '{"rows": 1}')

    assert path.read_text() == '{"rows": 1}'
    assert path.stat().st_mode & 0o777 == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == ["export.json"]


def test_unwritable_folder_names_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "export.json"

    with pytest.raises(PrivateOutputError, match=r"Cannot write .*export\.json: No such file or directory\. .*leave out --out"):
        write_private_text(missing, "personal data")

    assert not missing.parent.exists()
