"""singer-sdk's standard target tests, run against the real target and a fresh home per test."""

from __future__ import annotations

import base64
import importlib.resources
import io
import secrets
from pathlib import Path

import pytest
from singer_sdk.testing import get_target_test_class, target_test_streams
from singer_sdk.testing.suites import SingerTestSuite, target_tests
from singer_sdk.testing.target_tests import TargetDuplicateRecords

from targets.warehouse import TargetWarehouse
from targets.warehouse.errors import DuplicateKeyError
from .support import query, target_config


@pytest.fixture(autouse=True)
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point each standard test at its own home: the suite's config below has no `home` setting."""
    monkeypatch.setenv("SPENDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())


# The standard "duplicate_records" test expects a target to accept one batch holding
# the same key twice. This target rejects such a batch on purpose (the key must
# include every dimension the source groups by), so the test cannot apply here;
# test_sdk_duplicate_records_rejected below checks the rejection on the same file.
_APPLICABLE_TESTS = [test for test in target_tests.tests if test is not TargetDuplicateRecords]

TestStandardTargetSuite = get_target_test_class(
    TargetWarehouse,
    # The SDK's sample streams carry no mapper-pii marks, so the PII guard is off for them.
    config={"tenant": "sdk-tests", "source": "sdk", "require_pii_mapping": False},
    include_target_tests=False,
    custom_suites=[SingerTestSuite(kind="target", tests=_APPLICABLE_TESTS)],
)


def _sdk_stream_file(name: str) -> str:
    return (importlib.resources.files(target_test_streams) / f"{name}.singer").read_text(encoding="utf-8")


def test_sdk_duplicate_records_rejected(tmp_path: Path) -> None:
    home = tmp_path / "home"
    target = TargetWarehouse(config=target_config(home, tenant="acme", require_pii_mapping=False))
    try:
        with pytest.raises(DuplicateKeyError, match=r"'test_duplicate_records'.*key columns \['id'\]"):
            target.listen(file_input=io.StringIO(_sdk_stream_file("duplicate_records")))
    finally:
        target.close()

    assert query(home, "SELECT count(*) FROM stripe.test_duplicate_records") == [(0,)]


def test_sdk_upsert_files_store_latest_rows(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for name in ("user_location_data", "user_location_upsert_data"):
        target = TargetWarehouse(config=target_config(home, tenant="acme", require_pii_mapping=False))
        target.listen(file_input=io.StringIO(_sdk_stream_file(name)))

    users = query(home, "SELECT id, name FROM stripe.test_users ORDER BY id")
    assert users == [
        (1, "Johny"),
        (2, "George"),
        (3, "Jacob"),
        (4, "Josh"),
        (5, "Jim"),
        (8, "Thomas"),
        (12, "Paul"),
        (13, "Mary"),
    ]
