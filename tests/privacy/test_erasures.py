"""The erasure list stores pseudonyms only, durably, once each."""

from __future__ import annotations

from pathlib import Path

import pytest

from privacy.erasures import ErasureListError, add_erased, erasure_list_path, load_erased

ERASED = "b" * 64


def test_erasure_list_empty_without_file(tmp_path: Path) -> None:
    assert load_erased(tmp_path, "acme") == frozenset()


def test_added_pseudonyms_listed_once(tmp_path: Path) -> None:
    assert add_erased(tmp_path, "acme", [ERASED, ERASED], "req-1") == 1
    assert add_erased(tmp_path, "acme", [ERASED, "c" * 64], "req-2") == 1

    assert load_erased(tmp_path, "acme") == {ERASED, "c" * 64}
    assert len(erasure_list_path(tmp_path, "acme").read_text().splitlines()) == 2


def test_erasure_list_file_private(tmp_path: Path) -> None:
    add_erased(tmp_path, "acme", [ERASED], "req-1")

    assert erasure_list_path(tmp_path, "acme").stat().st_mode & 0o777 == 0o600


def test_raw_value_not_accepted(tmp_path: Path) -> None:
    with pytest.raises(ErasureListError, match="Only 64-character hex pseudonyms"):
        add_erased(tmp_path, "acme", ["ada@example.com"], "req-1")

    assert not erasure_list_path(tmp_path, "acme").exists()


def test_damaged_line_reported_by_number(tmp_path: Path) -> None:
    add_erased(tmp_path, "acme", [ERASED], "req-1")
    with erasure_list_path(tmp_path, "acme").open("a") as handle:
        handle.write("not json\n")

    with pytest.raises(ErasureListError, match="Line 2 of the erasure list"):
        load_erased(tmp_path, "acme")
