"""Loading Singer messages into the DuckDB warehouse: types, upserts, schema changes, rejected batches."""

from __future__ import annotations

import datetime
import json
import logging
import traceback
from pathlib import Path

import pytest

from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.errors import DuplicateKeyError, RecordTypeError, WarehouseSchemaError, WarehouseWriteError
from .support import (
    TENANT,
    files_under,
    query,
    record_message,
    run_target,
    run_target_expecting_error,
    schema_message,
    tenant_folder,
)

MARKER = "canary-7f3a9c-value"

CHARGE_PROPERTIES = {
    "id": {"type": "string"},
    "amount": {"type": "integer"},
    "fee": {"type": ["null", "number"]},
    "paid": {"type": ["null", "boolean"]},
    "created": {"type": "string", "format": "date-time"},
    "day": {"type": ["null", "string"], "format": "date"},
    "metadata": {"type": ["null", "object"]},
    "tags": {"type": ["null", "array"], "items": {"type": "string"}},
    "email_hash": {"type": ["null", "string"], "x-pii": "email", "x-pii-applied": "keep"},  # free-form test text, so not marked hmac
}
UTC = datetime.UTC


def charges_schema(properties: dict | None = None, key_properties: tuple[str, ...] = ("id",)) -> dict:
    return schema_message("charges", properties or CHARGE_PROPERTIES, key_properties)


def charge(number: int, **fields: object) -> dict:
    record = {
        "id": f"ch_{number}",
        "amount": number * 100,
        "fee": 1.25,
        "paid": True,
        "created": "2024-03-01T10:00:00Z",
        "day": "2024-03-01",
        "metadata": {"order": number, "channel": "web"},
        "tags": ["a", "b"],
        "email_hash": f"hash-{number}",
    }
    record.update(fields)
    return record_message("charges", record)


def test_columns_have_declared_duckdb_types(home: Path) -> None:
    run_target(home, [charges_schema(), charge(1), charge(2)])

    types = query(
        home,
        "SELECT typeof(id), typeof(amount), typeof(fee), typeof(paid), typeof(created), typeof(day), "
        "typeof(metadata), typeof(tags), typeof(email_hash), typeof(_loaded_at) FROM stripe.charges LIMIT 1",
    )
    assert types == [
        (
            "VARCHAR",
            "BIGINT",
            "DOUBLE",
            "BOOLEAN",
            "TIMESTAMP WITH TIME ZONE",
            "DATE",
            "VARCHAR",
            "VARCHAR",
            "VARCHAR",
            "TIMESTAMP WITH TIME ZONE",
        )
    ]
    assert query(home, "SELECT count(*) FROM stripe.charges") == [(2,)]


def test_values_arrive_converted(home: Path) -> None:
    run_target(
        home,
        [
            charges_schema(),
            charge(1, created="2024-03-01T12:00:00+02:00", fee=0.1, metadata={"price": 12.50, "n": [1, 2]}),
            charge(2, created="2024-03-01T10:00:00", day=None, paid=False, tags=None),
        ],
    )

    rows = query(
        home,
        "SELECT id, amount, fee, paid, created, day, json_extract(metadata, '$.price')::DOUBLE, "
        "json_array_length(tags) FROM stripe.charges ORDER BY id",
    )
    assert rows[0][:4] == ("ch_1", 100, 0.1, True)
    assert rows[0][4] == datetime.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert rows[0][5] == datetime.date(2024, 3, 1)
    assert rows[0][6] == 12.5
    assert rows[0][7] == 2
    # A date-time without an offset is UTC by Singer convention.
    assert rows[1][4] == datetime.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert rows[1][2:4] == (1.25, False)
    assert rows[1][5] is None
    assert rows[1][7] is None


def test_second_run_upserts_by_key(home: Path) -> None:
    run_target(home, [charges_schema(), charge(1), charge(2), charge(3)])
    run_target(home, [charges_schema(), charge(2, amount=222), charge(3, amount=333), charge(4)])

    rows = query(home, "SELECT id, amount FROM stripe.charges ORDER BY id")
    assert rows == [("ch_1", 100), ("ch_2", 222), ("ch_3", 333), ("ch_4", 400)]
    assert query(home, "SELECT stream, rows FROM _spendlake.loads ORDER BY loaded_at") == [
        ("charges", 3),
        ("charges", 3),
    ]


def test_batches_of_one_run_upsert(home: Path) -> None:
    run_target(home, [charges_schema(), charge(1), charge(2), charge(1, amount=111)], batch_size_rows=2)

    assert query(home, "SELECT id, amount FROM stripe.charges ORDER BY id") == [("ch_1", 111), ("ch_2", 200)]
    assert query(home, "SELECT rows FROM _spendlake.loads ORDER BY loaded_at") == [(2,), (1,)]


def test_stream_without_key_appends(home: Path) -> None:
    messages = [charges_schema(key_properties=()), charge(1), charge(1)]
    run_target(home, messages)
    run_target(home, messages)

    assert query(home, "SELECT count(*), count(DISTINCT id) FROM stripe.charges") == [(4, 1)]
    constraints = query(
        home,
        "SELECT count(*) FROM duckdb_constraints() WHERE database_name = 'wh' AND table_name = 'charges' "
        "AND constraint_type = 'PRIMARY KEY'",
    )
    assert constraints == [(0,)]


def test_primary_key_comes_from_key_properties(home: Path) -> None:
    run_target(home, [charges_schema(key_properties=("id", "day")), charge(1)])

    keys = query(home, "SELECT source, stream, key_properties FROM _spendlake.table_keys")
    assert keys == [("stripe", "charges", ["id", "day"])]
    # The target enforces the key itself: DuckDB keeps no index that would slow deletes down.
    constraints = query(home, "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'charges' AND constraint_type = 'PRIMARY KEY'")
    assert constraints == [(0,)]


def test_later_schema_adds_columns(home: Path) -> None:
    wider = {**CHARGE_PROPERTIES, "currency": {"type": ["null", "string"]}, "refunds": {"type": ["null", "integer"]}}
    run_target(
        home,
        [
            charges_schema(),
            charge(1),
            charges_schema(wider),
            charge(2, currency="eur", refunds=3),
        ],
    )

    rows = query(home, "SELECT id, currency, refunds, typeof(refunds) FROM stripe.charges ORDER BY id")
    assert rows == [("ch_1", None, None, "BIGINT"), ("ch_2", "eur", 3, "BIGINT")]


def test_schema_dropping_required_field_relaxes_not_null(home: Path) -> None:
    first = schema_message("charges", CHARGE_PROPERTIES, ("id",), required=("amount",))
    second_properties = {name: prop for name, prop in CHARGE_PROPERTIES.items() if name != "amount"}
    run_target(home, [first, charge(1)])
    run_target(home, [schema_message("charges", second_properties), charge(2, amount=None)])

    assert query(home, "SELECT id, amount FROM stripe.charges ORDER BY id") == [("ch_1", 100), ("ch_2", None)]


def test_incompatible_type_change_rejected(home: Path) -> None:
    run_target(home, [charges_schema(), charge(1)])
    changed = {**CHARGE_PROPERTIES, "amount": {"type": "boolean"}, "note": {"type": ["string", "null"]}}

    error = run_target_expecting_error(home, [charges_schema(changed), charge(2, amount=True)])

    assert isinstance(error, WarehouseSchemaError)
    expected = (
        "Stream 'charges', column 'amount': the new SCHEMA declares boolean (BOOLEAN), but stripe.charges "
        "stores BIGINT, and neither type holds the other's values exactly. Nothing was changed."
    )
    assert expected in str(error)
    assert query(home, "SELECT id, amount FROM stripe.charges") == [("ch_1", 100)]
    # The column the same SCHEMA would have added was rolled back with the rest.
    assert "note" not in [row[0] for row in query(home, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'charges'")]


def test_key_change_rejected(home: Path) -> None:
    run_target(home, [charges_schema(), charge(1)])

    error = run_target_expecting_error(home, [charges_schema(key_properties=("id", "day")), charge(2)])

    assert isinstance(error, WarehouseSchemaError)
    assert "key properties changed from ['id'] to ['id', 'day']" in str(error)


def test_duplicate_key_in_batch_rejected(home: Path) -> None:
    error = run_target_expecting_error(
        home,
        [charges_schema(), charge(1, email_hash=MARKER), charge(2), charge(1, email_hash=MARKER)],
    )

    assert isinstance(error, DuplicateKeyError)
    assert "Stream 'charges'" in str(error)
    assert "key columns ['id']" in str(error)
    assert MARKER not in str(error)
    assert "ch_1" not in str(error)
    assert query(home, "SELECT count(*) FROM stripe.charges") == [(0,)]
    assert list((tenant_folder(home) / "parquet").rglob("*.parquet")) == []


def test_wrong_type_names_field_not_value(home: Path) -> None:
    error = run_target_expecting_error(home, [charges_schema(), charge(1), charge(2, amount=MARKER)])

    expected = "Line 3, stream 'charges', field 'amount': expected an integer, found str"
    with pytest.raises(RecordTypeError, match=expected):
        raise error
    # The printed traceback, chained exceptions included, must not quote the value either.
    assert MARKER not in "".join(traceback.format_exception(error))


def test_fractional_number_for_integer_rejected(home: Path) -> None:
    error = run_target_expecting_error(home, [charges_schema(), charge(1, amount=12.5)])

    assert isinstance(error, RecordTypeError)
    assert "field 'amount'" in str(error)
    assert "fractional part" in str(error)


def test_missing_required_field_rejected(home: Path) -> None:
    schema = schema_message("charges", CHARGE_PROPERTIES, ("id",), required=("amount",))
    error = run_target_expecting_error(home, [schema, charge(1, amount=None)])

    assert isinstance(error, RecordTypeError)
    assert "Line 2, stream 'charges', field 'amount': the value is missing or null" in str(error)
    assert "missing or null" in str(error)


def test_failed_batch_keeps_earlier_batches(home: Path) -> None:
    messages = [charges_schema(), charge(1), charge(2), charge(3), charge(4, created=MARKER)]

    error = run_target_expecting_error(home, messages, batch_size_rows=2)

    assert isinstance(error, RecordTypeError)
    assert "Line 5, stream 'charges', field 'created'" in str(error)
    assert MARKER not in str(error)
    assert query(home, "SELECT id FROM stripe.charges ORDER BY id") == [("ch_1",), ("ch_2",)]
    assert query(home, "SELECT rows FROM _spendlake.loads") == [(2,)]
    assert len(list((tenant_folder(home) / "parquet").rglob("*.parquet"))) == 1


def test_ledger_lists_every_committed_file(home: Path) -> None:
    run_target(home, [charges_schema(), *(charge(number) for number in range(1, 6))], batch_size_rows=2)

    ledger = query(home, "SELECT source, stream, rows, parquet_file FROM _spendlake.loads ORDER BY loaded_at")
    assert [row[:3] for row in ledger] == [("stripe", "charges", 2), ("stripe", "charges", 2), ("stripe", "charges", 1)]
    listed = sorted(tenant_folder(home) / row[3] for row in ledger)
    on_disk = sorted(path for path in files_under(tenant_folder(home) / "parquet"))
    assert listed == on_disk
    for path in on_disk:
        assert path.parent == tenant_folder(home) / "parquet" / "stripe" / "charges"
        assert path.name.startswith("part-")


def test_undeclared_fields_dropped_and_logged(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    record = charge(1)
    record["record"]["surprise"] = MARKER

    run_target(home, [charges_schema(), record])

    columns = query(home, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'charges'")
    assert ("surprise",) not in columns
    assert "dropped 1 values of field 'surprise'" in caplog.text
    assert MARKER not in caplog.text


def test_text_edge_cases_stored(home: Path) -> None:
    run_target(
        home,
        [
            charges_schema(),
            charge(1, email_hash="nul\x00inside", metadata={"note": "emoji \U0001f600"}),
            charge(2, email_hash="lone \ud800 surrogate", metadata={"k\udfff": "v"}),
        ],
    )

    rows = query(home, "SELECT email_hash, metadata FROM stripe.charges ORDER BY id")
    assert rows[0][0] == "nul\x00inside"
    assert json.loads(rows[0][1]) == {"note": "emoji \U0001f600"}
    assert rows[1][0] == "lone \ufffd surrogate"
    assert json.loads(rows[1][1]) == {"k\ufffd": "v"}


def test_tables_live_in_source_schema(home: Path) -> None:
    run_target(home, [charges_schema(), charge(1)], source="google-ads")

    tables = query(
        home,
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'wh' ORDER BY schema_name, table_name",
    )
    assert tables == [
        ("_spendlake", "columns"),
        ("_spendlake", "loads"),
        ("_spendlake", "table_keys"),
        ("_spendlake", "warehouse"),
        ("google-ads", "charges"),
    ]
    assert (tenant_folder(home) / "parquet" / "google-ads" / "charges").is_dir()


def test_optional_validation_hides_value(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    error = run_target_expecting_error(home, [charges_schema(), charge(1, paid=MARKER)], validate_records=True)

    assert isinstance(error, RecordTypeError)
    assert "Line 2, stream 'charges': field 'paid' fails the JSON Schema rule 'type'" in str(error)
    assert MARKER not in "".join(traceback.format_exception(error))
    assert MARKER not in caplog.text


def test_streams_drain_in_parallel(home: Path) -> None:
    refunds = {"id": {"type": "string"}, "charge": {"type": "string"}, "amount": {"type": "integer"}}
    messages = [charges_schema(), schema_message("refunds", refunds)]
    for number in range(1, 41):
        messages.append(charge(number))
        messages.append(record_message("refunds", {"id": f"re_{number}", "charge": f"ch_{number}", "amount": number}))

    run_target(home, messages)

    assert query(home, "SELECT count(*) FROM stripe.charges") == [(40,)]
    assert query(home, "SELECT count(*), sum(amount) FROM stripe.refunds") == [(40, 820)]
    ledger = query(home, "SELECT stream, rows FROM _spendlake.loads ORDER BY stream")
    assert ledger == [("charges", 40), ("refunds", 40)]


def test_rejected_transaction_removes_parquet_file(home: Path) -> None:
    properties = {"id": {"type": "string"}, "amount": {"type": "integer"}}
    run_target(home, [schema_message("payouts", properties), record_message("payouts", {"id": "po_1", "amount": 5})])
    with connect_warehouse(home, TENANT, read_only=False) as connection:
        # A table changed outside the target: a CHECK constraint DuckDB enforces at insert time.
        connection.execute("DROP TABLE stripe.payouts")
        connection.execute(
            "CREATE TABLE stripe.payouts (id VARCHAR PRIMARY KEY, amount BIGINT CHECK (amount > 0), "
            "_loaded_at TIMESTAMPTZ NOT NULL)"
        )

    error = run_target_expecting_error(
        home,
        [schema_message("payouts", properties), record_message("payouts", {"id": "po_2", "amount": -987654})],
    )

    assert isinstance(error, WarehouseWriteError)
    assert "Stream 'payouts': DuckDB rejected a batch of 1 records (ConstraintException)" in str(error)
    assert "-987654" not in "".join(traceback.format_exception(error))
    assert query(home, "SELECT count(*) FROM stripe.payouts") == [(0,)]
    assert len(list((tenant_folder(home) / "parquet" / "stripe" / "payouts").glob("*.parquet"))) == 1
    assert query(home, "SELECT count(*) FROM _spendlake.loads") == [(1,)]
