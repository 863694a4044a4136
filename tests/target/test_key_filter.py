"""The stored-key filter lets a batch of new keys skip its delete, and never lets a key appear twice."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from targets.warehouse import key_filter
from targets.warehouse.arrow_schema import StreamLayout, layout_from_schema
from targets.warehouse.duckdb_store import open_encrypted_database
from targets.warehouse.duckdb_tables import WarehouseWriter
from targets.warehouse.errors import WarehouseWriteError

LOADED_AT = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
SCHEMA = {"properties": {"id": {"type": "string"}, "amount": {"type": "integer"}}}


def open_writer(path: Path) -> tuple[duckdb.DuckDBPyConnection, WarehouseWriter]:
    connection = open_encrypted_database(path / "w.duckdb", b"k" * 32, read_only=False, temp_directory=path / "spill")
    connection.execute("USE wh")
    writer = WarehouseWriter(connection, "stripe")
    writer.ensure_ledger()
    return connection, writer


def charges(ids: list[str | None], amount: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "amount": pa.array([amount] * len(ids), pa.int64()),
            "_loaded_at": pa.array([LOADED_AT] * len(ids), pa.timestamp("us", tz="UTC")),
        }
    )


def write(writer: WarehouseWriter, layout: StreamLayout, table: pa.Table, number: int) -> None:
    writer.write_batch(layout, table, f"parquet/stripe/charges/part-{number}.parquet", LOADED_AT)


def stored(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = connection.execute("SELECT id, amount FROM stripe.charges").fetchall()
    assert len(rows) == len({key for key, _ in rows}), "a key is stored twice"
    return dict(rows)


def test_new_keys_skip_delete_repeats_replace(tmp_path: Path) -> None:
    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("charges", SCHEMA, ["id"]))

    write(writer, layout, charges([f"ch_{n}" for n in range(0, 1000)], 1), 1)
    write(writer, layout, charges([f"ch_{n}" for n in range(1000, 2000)], 2), 2)
    write(writer, layout, charges(["ch_5", "ch_1500", "ch_new"], 3), 3)

    assert writer.deletes_skipped == 2
    rows = stored(connection)
    assert len(rows) == 2001
    assert (rows["ch_5"], rows["ch_1500"], rows["ch_new"], rows["ch_6"], rows["ch_1501"]) == (3, 3, 3, 1, 2)
    connection.close()


def test_filter_includes_earlier_sessions(tmp_path: Path) -> None:
    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("charges", SCHEMA, ["id"]))
    write(writer, layout, charges([f"ch_{n}" for n in range(500)], 1), 1)
    connection.close()

    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("charges", SCHEMA, ["id"]))
    write(writer, layout, charges(["ch_499", "ch_500"], 2), 2)
    write(writer, layout, charges(["ch_501"], 3), 3)

    assert writer.deletes_skipped == 1
    rows = stored(connection)
    assert len(rows) == 502
    assert (rows["ch_0"], rows["ch_499"], rows["ch_500"], rows["ch_501"]) == (1, 2, 2, 3)
    connection.close()


def test_composite_keys_of_mixed_types(tmp_path: Path) -> None:
    schema = {
        "properties": {
            "campaign_id": {"type": "integer"},
            "day": {"type": "string", "format": "date"},
            "country": {"type": "string"},
            "clicks": {"type": "integer"},
        }
    }
    keys = ["campaign_id", "day", "country"]
    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("stats", schema, keys))

    def stats(clicks: int) -> pa.Table:
        return pa.table(
            {
                "campaign_id": pa.array([7, 7, 8], pa.int64()),
                "day": pa.array([datetime.date(2026, 12, 1)] * 3, pa.date32()),
                "country": pa.array(["DE", "FR", "DE"], pa.string()),
                "clicks": pa.array([clicks] * 3, pa.int64()),
                "_loaded_at": pa.array([LOADED_AT] * 3, pa.timestamp("us", tz="UTC")),
            }
        )

    writer.write_batch(layout, stats(1), "parquet/stripe/stats/part-1.parquet", LOADED_AT)
    writer.write_batch(layout, stats(2), "parquet/stripe/stats/part-2.parquet", LOADED_AT)

    assert writer.deletes_skipped == 1
    rows = connection.execute("SELECT campaign_id, country, clicks FROM stripe.stats ORDER BY 1, 2").fetchall()
    assert rows == [(7, "DE", 2), (7, "FR", 2), (8, "DE", 2)]
    connection.close()


def test_rolled_back_batch_leaves_no_hashes(tmp_path: Path) -> None:
    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("charges", SCHEMA, ["id"]))
    write(writer, layout, charges(["ch_1"], 1), 1)
    with pytest.raises(WarehouseWriteError):
        write(writer, layout, charges(["ch_2", None], 2), 2)  # a null key breaks NOT NULL after the hashes went in

    write(writer, layout, charges(["ch_2"], 3), 3)

    # Had ch_2's hash stayed from the failed batch, this batch would have run its delete.
    assert writer.deletes_skipped == 2
    assert stored(connection) == {"ch_1": 1, "ch_2": 3}
    connection.close()


def test_large_table_always_deletes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_filter, "MAX_KEYS", 100)
    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("charges", SCHEMA, ["id"]))

    write(writer, layout, charges([f"ch_{n}" for n in range(80)], 1), 1)
    write(writer, layout, charges([f"ch_{n}" for n in range(80, 160)], 1), 2)
    write(writer, layout, charges(["ch_1", "ch_159", "ch_200"], 2), 3)
    write(writer, layout, charges(["ch_300"], 3), 4)

    # The first two batches fit a filter; the table then holds 160 keys, beyond the limit of 100.
    assert writer.deletes_skipped == 2
    rows = stored(connection)
    assert len(rows) == 162
    assert (rows["ch_1"], rows["ch_159"], rows["ch_200"], rows["ch_300"], rows["ch_2"]) == (2, 2, 2, 3, 1)
    connection.close()


def test_keyless_stream_appends(tmp_path: Path) -> None:
    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("events", SCHEMA, []))
    table = charges(["e_1", "e_1"], 1)

    writer.write_batch(layout, table, "parquet/stripe/events/part-1.parquet", LOADED_AT)
    writer.write_batch(layout, table, "parquet/stripe/events/part-2.parquet", LOADED_AT)

    assert writer.deletes_skipped == 0
    assert connection.execute("SELECT count(*) FROM stripe.events").fetchone() == (4,)
    connection.close()


def test_many_small_batches_keep_filter_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_filter, "MAX_PARTS", 3)
    connection, writer = open_writer(tmp_path)
    layout = writer.ensure_table(layout_from_schema("charges", SCHEMA, ["id"]))

    for number in range(8):
        write(writer, layout, charges([f"ch_{number}"], 1), number)
    write(writer, layout, charges(["ch_2", "ch_9"], 2), 8)

    assert writer.deletes_skipped == 8
    assert connection.execute("SELECT id, amount FROM stripe.charges WHERE id IN ('ch_2', 'ch_9') ORDER BY id").fetchall() == [("ch_2", 2), ("ch_9", 2)]
    assert connection.execute("SELECT count(*), count(DISTINCT id) FROM stripe.charges").fetchone() == (9, 9)
