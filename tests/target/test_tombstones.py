"""Tombstones (`_sdc_deleted_at` set) mark a key deleted and keep its last values, in DuckDB and in the lake view."""

from __future__ import annotations

import datetime
from pathlib import Path

from privacy.keys import load_tenant_keys
from targets.warehouse.errors import DuplicateKeyError
from targets.warehouse.lake import LocalLake
from targets.warehouse.lake_reader import read_stream

from .support import SOURCE, TENANT, query, record_message, run_target, run_target_expecting_error, schema_message, tenant_folder

UTC = datetime.UTC
DELETED = "2024-05-02T08:00:00Z"
DELETED_AT = datetime.datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
PROPERTIES = {
    "id": {"type": "string"},
    # Marked personal, so a tombstone clears it while keeping the marketing columns.
    "email_hash": {"type": "string", "x-pii": "email"},
    "country": {"type": ["null", "string"]},
    "_sdc_deleted_at": {"type": ["null", "string"], "format": "date-time"},
}
SCHEMA = schema_message("customers", PROPERTIES, required=("email_hash",))


def _live(key: str, country: str = "DE") -> dict:
    return record_message("customers", {"id": key, "email_hash": f"h-{key}", "country": country})


def _tombstone(key: str) -> dict:
    return record_message("customers", {"id": key, "_sdc_deleted_at": DELETED})


def _stored(home: Path) -> list[tuple]:
    return query(home, "SELECT id, email_hash, country, _sdc_deleted_at FROM stripe.customers ORDER BY id")


def _lake(home: Path) -> list[tuple]:
    keys = load_tenant_keys(home, TENANT, create=False)
    table = read_stream(LocalLake(tenant_folder(home)), keys, SOURCE, "customers")
    return [tuple(row.values()) for row in table.select(["id", "email_hash", "country", "_sdc_deleted_at"]).to_pylist()]


def test_tombstone_keeps_history_but_not_personal_data(home: Path) -> None:
    run_target(home, [SCHEMA, _live("c1"), _live("c2", "FR")])

    run_target(home, [SCHEMA, _tombstone("c1")])

    expected = [("c1", None, "DE", DELETED_AT), ("c2", "h-c2", "FR", None)]
    assert _stored(home) == expected
    assert _lake(home) == expected


def test_tombstone_for_unknown_key_is_a_bare_row(home: Path) -> None:
    run_target(home, [SCHEMA, _tombstone("c9")])

    expected = [("c9", None, None, DELETED_AT)]
    assert _stored(home) == expected
    assert _lake(home) == expected


def test_tombstone_next_to_known_keys_in_one_batch(home: Path) -> None:
    run_target(home, [SCHEMA, _live("c1")])

    run_target(home, [SCHEMA, _live("c1", "AT"), _tombstone("c2"), _live("c3")])

    expected = [("c1", "h-c1", "AT", None), ("c2", None, None, DELETED_AT), ("c3", "h-c3", "DE", None)]
    assert _stored(home) == expected
    assert _lake(home) == expected


def test_live_record_after_tombstone_restores_key(home: Path) -> None:
    run_target(home, [SCHEMA, _live("c1")])
    run_target(home, [SCHEMA, _tombstone("c1")])

    run_target(home, [SCHEMA, _live("c1", "PL")])

    expected = [("c1", "h-c1", "PL", None)]
    assert _stored(home) == expected
    assert _lake(home) == expected


def test_tombstone_and_live_record_of_one_key_in_one_batch_rejected(home: Path) -> None:
    error = run_target_expecting_error(home, [SCHEMA, _live("c1"), _tombstone("c1")])

    assert isinstance(error, DuplicateKeyError)
    assert "lines 2 and 3 carry the same primary key" in str(error)


def test_required_field_still_required_for_live_records(home: Path) -> None:
    missing = record_message("customers", {"id": "c1", "country": "DE"})

    error = run_target_expecting_error(home, [SCHEMA, missing])

    assert "Line 2, stream 'customers', field 'email_hash': the value is missing or null" in str(error)
