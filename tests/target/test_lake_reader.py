"""Reading a stream of the Parquet lake with each primary key once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from privacy.keys import KeyringError, load_tenant_keys
from spendlake.cli import main
from spendlake.paths import keys_dir, tenant_dir
from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.errors import WarehouseKeyError, WarehouseSchemaError
from targets.warehouse.lake import Lake, LocalLake
from targets.warehouse.lake_location import open_lake
from targets.warehouse.lake_reader import read_stream
from targets.warehouse.lake_s3 import make_s3_client
from targets.warehouse.parquet_crypto import ParquetCrypto
from targets.warehouse.parquet_store import parquet_file_name, stream_folder, write_parquet_batch
from tests.moto_server import REGION, aws_env, moto_endpoint  # noqa: F401

from .support import SOURCE, TENANT, record_message, run_target, schema_message

STREAM = "charges"
UTC_US = pa.timestamp("us", tz="UTC")
BASE = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return BASE + dt.timedelta(minutes=minutes)


def write_file(
    home: Path,
    columns: dict[str, pa.Array],
    *,
    batch: int,
    key_properties: Sequence[str] = ("id",),
    loaded_at: dt.datetime | None = None,
    stream: str = STREAM,
    lake: Lake | None = None,
) -> None:
    """Write one lake file as the target does for batch number `batch`; later batches get later file names."""
    rows = len(next(iter(columns.values())))
    table = pa.table({**columns, "_loaded_at": pa.array([loaded_at or at(batch)] * rows, UTC_US)})
    crypto = ParquetCrypto(load_tenant_keys(home, TENANT).parquet_master_key)
    written_at = BASE + dt.timedelta(seconds=batch)
    store = lake or LocalLake(tenant_dir(home, TENANT))
    write_parquet_batch(table, store, stream_folder(SOURCE, stream), crypto, [], written_at, key_properties)


def write_file_without_key_metadata(home: Path, columns: dict[str, pa.Array], *, batch: int) -> None:
    """Write a lake file whose schema metadata names no key columns, as files written before that metadata existed."""
    rows = len(next(iter(columns.values())))
    table = pa.table({**columns, "_loaded_at": pa.array([at(batch)] * rows, UTC_US)})
    crypto = ParquetCrypto(load_tenant_keys(home, TENANT).parquet_master_key)
    properties = crypto.encryption_properties(table.column_names, [])
    relative = f"{stream_folder(SOURCE, STREAM)}/{parquet_file_name(BASE + dt.timedelta(seconds=batch))}"

    def write(handle: BinaryIO) -> None:
        pq.write_table(table, handle, encryption_properties=properties)

    LocalLake(tenant_dir(home, TENANT)).publish(relative, write)


def read(home: Path, stream: str = STREAM, **options: Any) -> pa.Table:
    keys = load_tenant_keys(home, TENANT, create=False)
    return read_stream(LocalLake(tenant_dir(home, TENANT)), keys, SOURCE, stream, **options)


def ints(*values: int | None) -> pa.Array:
    return pa.array(values, pa.int64())


def texts(*values: str | None) -> pa.Array:
    return pa.array(values, pa.string())


def stamps(*values: dt.datetime | None) -> pa.Array:
    return pa.array(values, UTC_US)


DELETED_1 = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)
DELETED_2 = dt.datetime(2026, 12, 7, 10, 45, tzinfo=dt.UTC)


def test_latest_version_per_key(home: Path) -> None:
    write_file(home, {"id": ints(1, 2), "name": texts("a1", "b1")}, batch=1)
    write_file(home, {"id": ints(2, 3), "name": texts("b2", "c2")}, batch=2)
    write_file(home, {"id": ints(1), "name": texts("a3")}, batch=3)

    table = read(home)

    assert table.column_names == ["id", "name", "_loaded_at"]
    assert table.to_pylist() == [
        {"id": 1, "name": "a3", "_loaded_at": at(3)},
        {"id": 2, "name": "b2", "_loaded_at": at(2)},
        {"id": 3, "name": "c2", "_loaded_at": at(2)},
    ]


def test_all_versions_sorted(home: Path) -> None:
    write_file(home, {"id": ints(2, 1), "name": texts("b1", "a1")}, batch=1)
    write_file(home, {"id": ints(1), "name": texts("a2")}, batch=2)

    table = read(home, all_versions=True)

    assert table.to_pylist() == [
        {"id": 1, "name": "a1", "_loaded_at": at(1)},
        {"id": 1, "name": "a2", "_loaded_at": at(2)},
        {"id": 2, "name": "b1", "_loaded_at": at(1)},
    ]


def test_equal_load_time_later_file_wins(home: Path) -> None:
    write_file(home, {"id": ints(1), "name": texts("first")}, batch=1, loaded_at=at(5))
    write_file(home, {"id": ints(1), "name": texts("second")}, batch=2, loaded_at=at(5))

    assert read(home).column("name").to_pylist() == ["second"]


def test_load_time_beats_file_order(home: Path) -> None:
    write_file(home, {"id": ints(1), "name": texts("newer")}, batch=1, loaded_at=at(9))
    write_file(home, {"id": ints(1), "name": texts("older")}, batch=2, loaded_at=at(4))

    assert read(home).to_pylist() == [{"id": 1, "name": "newer", "_loaded_at": at(9)}]


def test_tombstones_and_resurrection(home: Path) -> None:
    # Key 1: live, then deleted. Key 2: deleted only. Key 3: live, deleted, live again.
    # Key 4: live, deleted, deleted again. Key 5: deleted, then live.
    write_file(
        home,
        {"id": ints(1, 3, 4, 5), "name": texts("one", "three-v1", "four", None), "amount": ints(10, 30, 40, None),
         "_sdc_deleted_at": stamps(None, None, None, DELETED_1)},
        batch=1,
    )
    write_file(
        home,
        {"id": ints(1, 2, 3, 4), "name": texts(None, None, None, None), "amount": ints(None, None, None, None),
         "_sdc_deleted_at": stamps(DELETED_1, DELETED_1, DELETED_1, DELETED_1)},
        batch=2,
    )
    write_file(
        home,
        {"id": ints(3, 4, 5), "name": texts("three-v3", None, "five"), "amount": ints(33, None, 50),
         "_sdc_deleted_at": stamps(None, DELETED_2, None)},
        batch=3,
    )

    table = read(home)

    assert table.to_pylist() == [
        {"id": 1, "name": "one", "amount": 10, "_sdc_deleted_at": DELETED_1, "_loaded_at": at(2)},
        {"id": 2, "name": None, "amount": None, "_sdc_deleted_at": DELETED_1, "_loaded_at": at(2)},
        {"id": 3, "name": "three-v3", "amount": 33, "_sdc_deleted_at": None, "_loaded_at": at(3)},
        {"id": 4, "name": "four", "amount": 40, "_sdc_deleted_at": DELETED_2, "_loaded_at": at(3)},
        {"id": 5, "name": "five", "amount": 50, "_sdc_deleted_at": None, "_loaded_at": at(3)},
    ]


def test_all_versions_keeps_tombstones(home: Path) -> None:
    write_file(home, {"id": ints(1), "name": texts("one"), "_sdc_deleted_at": stamps(None)}, batch=1)
    write_file(home, {"id": ints(1), "name": texts(None), "_sdc_deleted_at": stamps(DELETED_1)}, batch=2)

    table = read(home, all_versions=True)

    assert table.to_pylist() == [
        {"id": 1, "name": "one", "_sdc_deleted_at": None, "_loaded_at": at(1)},
        {"id": 1, "name": None, "_sdc_deleted_at": DELETED_1, "_loaded_at": at(2)},
    ]


def test_composite_key_sorted(home: Path) -> None:
    write_file(
        home,
        {"account": texts("b", "a", "b", "a"), "day": ints(2, 2, 1, 1), "clicks": ints(1, 2, 3, 4)},
        batch=1,
        key_properties=["account", "day"],
    )
    write_file(home, {"account": texts("a"), "day": ints(2), "clicks": ints(20)}, batch=2, key_properties=["account", "day"])

    table = read(home)

    assert table.select(["account", "day", "clicks"]).to_pylist() == [
        {"account": "a", "day": 1, "clicks": 4},
        {"account": "a", "day": 2, "clicks": 20},
        {"account": "b", "day": 1, "clicks": 3},
        {"account": "b", "day": 2, "clicks": 1},
    ]


def test_column_added_later_is_null_before(home: Path) -> None:
    write_file(home, {"id": ints(1, 2), "name": texts("a", "b")}, batch=1)
    write_file(home, {"id": ints(2), "name": texts("b2"), "country": texts("DE")}, batch=2)

    table = read(home)

    assert table.column_names == ["id", "name", "_loaded_at", "country"]
    assert table.to_pylist() == [
        {"id": 1, "name": "a", "_loaded_at": at(1), "country": None},
        {"id": 2, "name": "b2", "_loaded_at": at(2), "country": "DE"},
    ]


def test_integer_widens_to_float(home: Path) -> None:
    write_file(home, {"id": ints(1, 2), "amount": ints(5, 2**53 + 1)}, batch=1)
    write_file(home, {"id": ints(3), "amount": pa.array([2.5], pa.float64())}, batch=2)

    table = read(home)

    assert table.schema.field("amount").type == pa.float64()
    assert table.column("amount").to_pylist() == [5.0, float(2**53), 2.5]


def test_decimal_scale_widens(home: Path) -> None:
    write_file(home, {"id": ints(1), "amount": pa.array([Decimal("1.25")], pa.decimal128(38, 2))}, batch=1)
    write_file(home, {"id": ints(2), "amount": pa.array([Decimal("0.1234")], pa.decimal128(38, 4))}, batch=2)

    table = read(home)

    assert table.schema.field("amount").type == pa.decimal128(38, 4)
    assert table.column("amount").to_pylist() == [Decimal("1.2500"), Decimal("0.1234")]


def test_incompatible_types_rejected(home: Path) -> None:
    write_file(home, {"id": ints(1), "paid": pa.array([True], pa.bool_())}, batch=1)
    write_file(home, {"id": ints(2), "paid": ints(1)}, batch=2)

    with pytest.raises(WarehouseSchemaError) as caught:
        read(home)

    message = str(caught.value)
    assert f"Stream {STREAM!r}, column 'paid'" in message
    assert "stores it as bool" in message
    assert "as int64" in message
    assert message.count("part-") == 2


def test_keyless_stream_returns_every_row(home: Path) -> None:
    write_file(home, {"campaign": texts("x", "y")}, batch=1, key_properties=[])
    write_file(home, {"campaign": texts("x")}, batch=2, key_properties=[])

    assert read(home).to_pylist() == [
        {"campaign": "x", "_loaded_at": at(1)},
        {"campaign": "y", "_loaded_at": at(1)},
        {"campaign": "x", "_loaded_at": at(2)},
    ]


def test_missing_key_metadata_means_keyless(home: Path) -> None:
    write_file_without_key_metadata(home, {"id": ints(1)}, batch=1)
    write_file_without_key_metadata(home, {"id": ints(1)}, batch=2)

    assert read(home).column("id").to_pylist() == [1, 1]


def test_newest_file_names_the_key(home: Path) -> None:
    write_file(home, {"id": ints(1, 2), "day": ints(7, 7)}, batch=1, key_properties=[])
    write_file(home, {"id": ints(3), "day": ints(7)}, batch=2, key_properties=["day"])

    assert read(home).to_pylist() == [{"id": 3, "day": 7, "_loaded_at": at(2)}]


def test_unknown_key_column_rejected(home: Path) -> None:
    write_file(home, {"id": ints(1)}, batch=1, key_properties=["charge_id"])

    with pytest.raises(WarehouseSchemaError, match=r"key columns \['charge_id'\]"):
        read(home)


def test_empty_lake_returns_empty_table(home: Path) -> None:
    load_tenant_keys(home, TENANT)
    write_file(home, {"id": ints(1)}, batch=1, stream="refunds")

    table = read(home)

    assert table.num_columns == 0
    assert table.num_rows == 0


def test_other_tenant_keys_rejected(home: Path) -> None:
    write_file(home, {"id": ints(1)}, batch=1)
    other_keys = load_tenant_keys(home, "other")

    with pytest.raises(WarehouseKeyError, match=r"part-.*\.parquet cannot be decrypted"):
        read_stream(LocalLake(tenant_dir(home, TENANT)), other_keys, SOURCE, STREAM)


def test_stream_name_leaving_folder_rejected(home: Path) -> None:
    keys = load_tenant_keys(home, TENANT)

    with pytest.raises(WarehouseSchemaError, match="cannot be used as a Parquet folder name"):
        read_stream(LocalLake(tenant_dir(home, TENANT)), keys, SOURCE, "../charges")


def run_cli(home: Path, *options: str) -> Any:
    arguments = ["lake", "read", "--tenant", TENANT, "--source", SOURCE, "--stream", STREAM, "--home", str(home), *options]
    return CliRunner().invoke(main, arguments)


@pytest.fixture
def cli_lake(home: Path) -> Path:
    write_file(
        home,
        {"id": ints(2, 1), "name": texts("b\x00🙂", "a"), "amount": pa.array([Decimal("1.50"), None], pa.decimal128(38, 2)),
         "_sdc_deleted_at": stamps(None, None)},
        batch=1,
    )
    write_file(
        home,
        {"id": ints(1), "name": texts(None), "amount": pa.array([None], pa.decimal128(38, 2)),
         "_sdc_deleted_at": stamps(DELETED_1)},
        batch=2,
    )
    return home


def test_cli_prints_jsonl(cli_lake: Path) -> None:
    result = run_cli(cli_lake)

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [
        {"id": 1, "name": "a", "amount": None, "_sdc_deleted_at": "2026-12-06T09:30:00+00:00", "_loaded_at": "2026-12-05T08:02:00+00:00"},
        {"id": 2, "name": "b\x00🙂", "amount": "1.50", "_sdc_deleted_at": None, "_loaded_at": "2026-12-05T08:01:00+00:00"},
    ]


def test_cli_all_versions_and_limit(cli_lake: Path) -> None:
    result = run_cli(cli_lake, "--all-versions", "--limit", "2")

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["id"], row["name"]) for row in rows] == [(1, "a"), (1, None)]


def test_cli_prints_table(cli_lake: Path) -> None:
    result = run_cli(cli_lake, "--format", "table")

    assert result.exit_code == 0, result.output
    assert "_sdc_deleted_at" in result.stdout
    assert "2026-12-06 09:30:00+00:00" in result.stdout
    assert "1.50" in result.stdout


def test_cli_without_files_prints_nothing(home: Path) -> None:
    load_tenant_keys(home, TENANT)

    result = run_cli(home)

    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"no files for stream {STREAM!r}" in result.stderr


def test_cli_never_creates_keys(home: Path) -> None:
    result = run_cli(home)

    assert result.exit_code == 1
    assert f"Tenant {TENANT!r} has no keyring" in result.output
    assert not (keys_dir(home) / f"{TENANT}.keyring").exists()
    with pytest.raises(KeyringError):
        load_tenant_keys(home, TENANT, create=False)


def test_cli_reports_schema_error(home: Path) -> None:
    write_file(home, {"id": ints(1), "paid": pa.array([True], pa.bool_())}, batch=1)
    write_file(home, {"id": ints(2), "paid": ints(1)}, batch=2)

    result = run_cli(home)

    assert result.exit_code == 1
    assert "column 'paid'" in result.output


def test_matches_duckdb_after_target_run(home: Path) -> None:
    properties = {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"], "multipleOf": 0.01},
        "_sdc_deleted_at": {"type": ["null", "string"], "format": "date-time"},
    }
    deleted = "2026-12-06T09:30:00+00:00"
    records = [
        {"id": 1, "name": "one", "amount": 1.5},
        {"id": 2, "name": "two", "amount": 2.25},
        {"id": 1, "name": "one-v2", "amount": 1.75},
        {"id": 2, "_sdc_deleted_at": deleted},
        {"id": 3, "_sdc_deleted_at": deleted},
        {"id": 4, "name": "four", "amount": 4},
    ]
    run_target(
        home,
        [schema_message(STREAM, properties), *(record_message(STREAM, record) for record in records)],
        batch_size_rows=2,
    )

    table = read(home)

    with connect_warehouse(home, TENANT, read_only=True) as connection:
        stored = connection.execute(
            f"SELECT id, name, amount, _sdc_deleted_at, _loaded_at FROM {SOURCE}.{STREAM} ORDER BY id"
        ).to_arrow_table()
    assert table.select(["id", "name", "amount", "_sdc_deleted_at", "_loaded_at"]).to_pylist() == stored.to_pylist()
    assert table.select(["id", "name", "amount"]).to_pylist() == [
        {"id": 1, "name": "one-v2", "amount": Decimal("1.75")},
        {"id": 2, "name": "two", "amount": Decimal("2.25")},
        {"id": 3, "name": None, "amount": None},
        {"id": 4, "name": "four", "amount": Decimal("4.00")},
    ]


def test_cli_reads_s3_lake(home: Path, aws_env: str) -> None:
    client = make_s3_client(aws_env)
    client.create_bucket(Bucket="lake-reader", CreateBucketConfiguration={"LocationConstraint": REGION})
    client.put_bucket_encryption(
        Bucket="lake-reader",
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]},
    )
    lake = open_lake(tenant_dir(home, TENANT), TENANT, "s3://lake-reader/tenants", endpoint_url=aws_env)
    write_file(home, {"id": ints(1, 2), "name": texts("a1", "b1")}, batch=1, lake=lake)
    write_file(home, {"id": ints(1), "name": texts("a2")}, batch=2, lake=lake)

    result = run_cli(home, "--lake-url", "s3://lake-reader/tenants", "--s3-endpoint-url", aws_env)

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["id"], row["name"]) for row in rows] == [(1, "a2"), (2, "b1")]
    assert not (tenant_dir(home, TENANT) / "parquet").exists()


def test_cli_takes_lake_url_from_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_tenant_keys(home, TENANT)
    monkeypatch.setenv("SPENDLAKE_LAKE_URL", "ftp://lake-reader/tenants")

    result = run_cli(home)

    assert result.exit_code == 1
    assert "Invalid `lake_url` 'ftp://lake-reader/tenants'" in result.output
