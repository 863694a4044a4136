"""End to end: `meltano run tap-stripe mapper-pii target-warehouse` against the sandbox.

The ad platforms have their own end-to-end module, so this one runs Stripe alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import typing as t
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from sandbox.server import start_server
from sandbox.stripe_api import DEMO_API_KEY
from sandbox.stripe_data import StripeWorld
from spendlake.paths import duckdb_path, tenant_dir
from targets.warehouse.duckdb_store import connect_warehouse
from tests.e2e.project import BIN, MeltanoProject

SEED = 20261204
ANCHOR = 1_790_000_000  # 2026-09-21, fixed so every run gets the same objects
LATER = ANCHOR + 6 * 3_600
MASTER_KEY = "dGhpcyBpcyBhIHRlc3QgbWFzdGVyIGtleSBvZiAzMiE="
PIPELINE = ("tap-stripe", "mapper-pii", "target-warehouse")


@pytest.fixture(autouse=True)
def spendlake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the module's master key for every test: the warehouse is shared across them."""
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", MASTER_KEY)


class Pipeline(MeltanoProject):
    """The project wired to the Stripe sandbox."""

    def run(self, world: StripeWorld) -> subprocess.CompletedProcess[str]:
        with start_server(world) as server:
            return self.meltano_run(PIPELINE, {"TAP_STRIPE_API_URL": server.url, "TAP_STRIPE_API_KEY": DEMO_API_KEY}, timeout=600)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    """Run the pipeline twice: on the first world, then after a tick added new objects."""
    base = tmp_path_factory.mktemp("e2e")
    home = base / "project" / ".spendlake"
    patcher = pytest.MonkeyPatch()
    patcher.setenv("SPENDLAKE_HOME", str(home))
    patcher.setenv("SPENDLAKE_MASTER_KEY", MASTER_KEY)
    patcher.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", raising=False)

    pipeline = Pipeline(base / "project", home)
    first_world = StripeWorld(SEED, ANCHOR)
    first = pipeline.run(first_world)
    assert first.returncode == 0, first.stderr[-4000:]
    counts_after_first = {
        stream: pipeline.query(f"select count(*) from stripe.{stream}")[0][0]  # noqa: S608
        for stream in ("charges", "customers", "refunds")
    }
    second_started = datetime.now(UTC)

    second_world = StripeWorld(SEED, ANCHOR, [LATER])
    second = pipeline.run(second_world)
    assert second.returncode == 0, second.stderr[-4000:]

    yield {
        "pipeline": pipeline,
        "first_world": first_world,
        "second_world": second_world,
        "counts_after_first": counts_after_first,
        "second_started": second_started,
        "logs": first.stderr + second.stderr + first.stdout + second.stdout,
    }
    patcher.undo()


def test_first_run_loads_every_served_object(synced: dict[str, t.Any]) -> None:
    world = synced["first_world"]

    assert synced["counts_after_first"] == {
        "charges": world.count("charges"),
        "customers": world.count("customers"),
        "refunds": world.count("refunds"),
    }
    assert synced["counts_after_first"]["charges"] > 1_000


def test_second_run_adds_only_new_objects(synced: dict[str, t.Any]) -> None:
    pipeline: Pipeline = synced["pipeline"]
    world = synced["second_world"]

    for stream in ("charges", "customers", "refunds"):
        live, total, distinct = pipeline.query(
            f"select count(*) filter (where _sdc_deleted_at is null), count(*), count(distinct id) from stripe.{stream}"  # noqa: S608
        )[0]
        assert live == world.count(stream), stream
        assert distinct == total, stream
    assert world.count("charges") > synced["first_world"].count("charges")


def test_customers_deleted_in_the_tick_become_tombstones(synced: dict[str, t.Any]) -> None:
    pipeline: Pipeline = synced["pipeline"]
    deleted = synced["second_world"].deleted("customers")

    tombstones = pipeline.query(
        "select count(*), count(email), count(created) from stripe.customers where _sdc_deleted_at is not null"
    )[0]

    # A tombstone keeps the customer's history (when it was created) but not its personal data.
    assert len(deleted) > 0
    assert tombstones == (len(deleted), 0, len(deleted))


def test_second_run_reads_incrementally(synced: dict[str, t.Any]) -> None:
    pipeline: Pipeline = synced["pipeline"]
    first_world = synced["first_world"]
    second_world = synced["second_world"]

    connection = connect_warehouse(pipeline.home, "demo", read_only=True)
    try:
        rows = connection.execute(
            "select sum(rows) from _spendlake.loads where stream = 'charges' and loaded_at >= ?",
            [synced["second_started"]],
        ).fetchone()[0]
    finally:
        connection.close()
    new_charges = second_world.count("charges") - first_world.count("charges")
    # The boundary second is re-read inclusively, so a few old rows come again.
    assert new_charges <= rows <= new_charges + 5


def test_query_cli_counts_charges(synced: dict[str, t.Any]) -> None:
    pipeline: Pipeline = synced["pipeline"]

    result = subprocess.run(
        [str(BIN / "spendlake"), "query", "select count(*) from stripe.charges", "--tenant", "demo", "--format", "csv"],
        env={**os.environ, "SPENDLAKE_HOME": str(pipeline.home)},
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.splitlines() == ["count_star()", str(synced["second_world"].count("charges"))]


def test_no_personal_value_on_disk(synced: dict[str, t.Any]) -> None:
    pipeline: Pipeline = synced["pipeline"]
    needles = [value.encode() for value in synced["second_world"].personal_values() if len(value) >= 6]
    assert len(needles) > 500

    leaks = []
    for path in pipeline.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks.extend(f"{path.name}: {needle[:4]!r}…" for needle in needles if needle in data)
    assert leaks == []


def test_no_personal_value_in_logs(synced: dict[str, t.Any]) -> None:
    logs = synced["logs"]

    leaked = [value for value in synced["second_world"].personal_values() if len(value) >= 6 and value in logs]
    assert leaked == []
    assert DEMO_API_KEY not in logs


def test_pseudonymised_columns_are_hashes(synced: dict[str, t.Any]) -> None:
    pipeline: Pipeline = synced["pipeline"]

    columns = {name for (name,) in pipeline.query("select column_name from duckdb_columns() where table_name = 'charges'")}
    assert {"billing_name", "billing_address_line1", "description"}.isdisjoint(columns)
    emails = pipeline.query("select billing_email from stripe.charges where billing_email is not null limit 50")
    assert emails
    assert all(len(email) == 64 and "@" not in email for (email,) in emails)


def test_duckdb_file_needs_key(synced: dict[str, t.Any]) -> None:
    path = duckdb_path(synced["pipeline"].home, "demo")

    with pytest.raises(duckdb.Error, match="without a key|encrypt"):
        duckdb.connect(str(path), read_only=True).execute("select 1").fetchall()


def test_parquet_files_need_keys(synced: dict[str, t.Any]) -> None:
    files = sorted((tenant_dir(synced["pipeline"].home, "demo") / "parquet" / "stripe" / "charges").glob("*.parquet"))
    assert files

    with pytest.raises(Exception, match="(?i)encrypt|decrypt|key"):
        pq.read_table(files[0])
    assert files[0].read_bytes()[:4] == b"PARE"


def test_replaced_warehouse_with_old_bookmarks_stops(tmp_path: Path) -> None:
    """Deleting the warehouse but not the state must not resume from the old bookmarks."""
    home = tmp_path / "project" / ".spendlake"
    pipeline = Pipeline(tmp_path / "project", home)
    world = StripeWorld(SEED, ANCHOR)
    first = pipeline.run(world)
    assert first.returncode == 0, first.stderr[-4000:]

    shutil.rmtree(home / "warehouse")
    second = pipeline.run(world)

    assert second.returncode != 0
    assert "were saved for warehouse" in second.stderr
    assert "Clear the pipeline state" in second.stderr

    shutil.rmtree(home / "state")
    third = pipeline.run(world)
    assert third.returncode == 0, third.stderr[-4000:]
    assert pipeline.query("select count(*) from stripe.charges")[0][0] == world.count("charges")
