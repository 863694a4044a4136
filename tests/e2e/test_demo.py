"""End to end: the demo loads all five sources, and no personal value reaches the disk in clear.

The demo runs once for the session (the `demo` fixture in conftest.py), as
`make demo` does, but in a temporary project folder and home, so the
repository's own `.spendlake/` is left alone.
"""

from __future__ import annotations

import subprocess
import typing as t
from pathlib import Path

import pytest

from sandbox.ads_data import AdsWorld
from sandbox.ga4_data import GA4World
from sandbox.magento_data import MagentoWorld
from sandbox.stripe_data import StripeWorld
from spendlake.demo import SOURCES
from targets.warehouse.duckdb_store import connect_warehouse

pytestmark = pytest.mark.e2e

#: Shorter values (a two-letter state, a house number) occur by chance in encrypted bytes.
MIN_NEEDLE_LENGTH = 6


@pytest.fixture(autouse=True)
def local_master_key(spendlake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open the demo's keyring with its local master-key file, as the demo itself does."""
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY", raising=False)


def served_personal_values(state: dict[str, t.Any]) -> dict[str, set[str]]:
    """Every personal value the sandbox served in the demo's two runs, per source."""
    seed, anchor, ticks = state["seed"], state["anchor"], state["ticks"]
    assert len(ticks) == 1
    values = {
        "stripe": StripeWorld(seed, anchor, ticks).personal_values(),
        "ads": AdsWorld(seed, anchor, ticks).personal_values(),
        "google_analytics": GA4World(seed, anchor, ticks).personal_values(),
        "magento": MagentoWorld(seed, anchor, ticks).personal_values(),
    }
    return {source: {value for value in found if len(value) >= MIN_NEEDLE_LENGTH} for source, found in values.items()}


def test_demo_loads_every_source(demo: dict[str, t.Any]) -> None:
    loaded = {row.table.split(".")[0]: 0 for row in demo["summary"]}
    for row in demo["summary"]:
        loaded[row.table.split(".")[0]] += row.loaded

    assert len(SOURCES) == 5
    assert set(loaded) == {"stripe", "google_ads", "facebook", "google_analytics", "magento"}
    assert all(count > 0 for count in loaded.values()), loaded


def test_demo_summary_names_every_table(demo: dict[str, t.Any]) -> None:
    tables = {row.table for row in demo["summary"]}

    for table in ("google_analytics.traffic_daily", "magento.orders", "stripe.invoices", "stripe.subscriptions"):
        assert table in tables
        assert table in demo["out"]


def files_containing(folder: Path, needles: list[str], scratch: Path) -> list[Path]:
    """List the files under `folder` whose bytes contain any needle, with grep's multi-pattern search."""
    patterns = scratch / "needles.txt"
    patterns.write_text("\n".join(needles) + "\n", encoding="utf-8")
    found = subprocess.run(
        ["grep", "--recursive", "--files-with-matches", "--fixed-strings", "--text", "--file", str(patterns), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    # grep exits 1 when nothing matched and 2 on an error.
    assert found.returncode in (0, 1), found.stderr
    return [Path(line) for line in found.stdout.splitlines()]


def test_no_served_personal_value_on_disk(demo: dict[str, t.Any], tmp_path: Path) -> None:
    needles_by_source = served_personal_values(demo["state"])
    assert len(needles_by_source["stripe"]) > 500
    assert len(needles_by_source["magento"]) > 500
    assert len(needles_by_source["google_analytics"]) > 0
    assert len(needles_by_source["ads"]) > 0
    needles = sorted({value for found in needles_by_source.values() for value in found})

    files = [path for path in demo["project"].rglob("*") if path.is_file()]
    leaking = files_containing(demo["project"], needles, tmp_path)

    assert any(path.suffix == ".parquet" for path in files)
    assert any(path.name == "warehouse.duckdb" for path in files)
    assert [str(path.relative_to(demo["project"])) for path in leaking] == []


def test_disk_scan_finds_planted_value(demo: dict[str, t.Any], tmp_path: Path) -> None:
    needle = sorted(served_personal_values(demo["state"])["magento"])[0]
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "copy.bin").write_bytes(b"\x00\x01" + needle.encode() + b"\xff")

    assert files_containing(folder, [needle], tmp_path) == [folder / "copy.bin"]


def test_no_served_personal_value_in_the_summary(demo: dict[str, t.Any]) -> None:
    needles = [value for found in served_personal_values(demo["state"]).values() for value in found]

    assert [value for value in needles if value in demo["out"]] == []


def test_warehouse_files_are_under_home(demo: dict[str, t.Any]) -> None:
    home: Path = demo["home"]

    parquet = list((home / "warehouse" / "demo" / "parquet").rglob("*.parquet"))
    sources = {path.relative_to(home / "warehouse" / "demo" / "parquet").parts[0] for path in parquet}

    assert sources == {"stripe", "google_ads", "facebook", "google_analytics", "magento"}


def query(demo: dict[str, t.Any], sql: str) -> list[tuple[t.Any, ...]]:
    connection = connect_warehouse(demo["home"], "demo", read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_second_run_upserts_magento_orders(demo: dict[str, t.Any]) -> None:
    state = demo["state"]
    world = MagentoWorld(state["seed"], state["anchor"], state["ticks"])
    served = {order["entity_id"]: order for order in world.collection("orders")}
    loaded_again = {row.table: row.loaded for row in demo["second_summary"]}["magento.orders"]

    total, distinct = query(demo, "select count(*), count(distinct entity_id) from magento.orders")[0]
    statuses = dict(query(demo, "select entity_id, status from magento.orders"))

    assert loaded_again > 0
    assert total == distinct == len(served)
    assert statuses == {entity_id: order["status"] for entity_id, order in served.items()}


def test_second_run_keeps_one_row_per_key(demo: dict[str, t.Any]) -> None:
    keys = {
        "google_analytics.traffic_daily": "property_id, date, session_source, session_medium, session_campaign_name",
        "google_analytics.landing_pages_daily": "property_id, date, landing_page",
        "stripe.customers": "id",
        "stripe.subscriptions": "id",
    }

    for table, key in keys.items():
        total, distinct = query(demo, f"select count(*), count(distinct ({key})) from {table}")[0]  # noqa: S608
        assert total == distinct, table


def test_customers_deleted_in_the_tick_are_tombstones(demo: dict[str, t.Any]) -> None:
    state = demo["state"]
    deleted = StripeWorld(state["seed"], state["anchor"], state["ticks"]).deleted("customers")

    tombstones = query(demo, "select count(*), count(email) from stripe.customers where _sdc_deleted_at is not null")[0]

    assert len(deleted) > 0
    assert tombstones == (len(deleted), 0)
