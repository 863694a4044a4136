"""`spendlake privacy retention`: rows past the policy's retention leave DuckDB and the Parquet lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from privacy.audit import read_audit_events
from privacy.catalog import open_warehouse
from privacy.compaction import mark_rows_deleted, marker_path
from privacy.keys import load_tenant_keys
from privacy.policy import load_policy
from privacy.retention import RetentionError, apply_retention, date_field_for, plan_retention
from tests.privacy.gdpr_support import (
    ANCHOR,
    POLICY_YAML,
    TENANT,
    LoadedTenant,
    file_contents,
    loaded_template,  # noqa: F401 - fixture
    loaded_tenant,  # noqa: F401 - fixture
    parquet_folder,
    query,
    read_lake,
    write_policy,
)

#: The world's "now"; the template policy keeps charges 30 days by `created`.
NOW = dt.datetime.fromtimestamp(ANCHOR, dt.UTC)
CUTOFF = NOW - dt.timedelta(days=30)


def policy_with(tmp_path: Path, retention: str) -> Path:
    """Write the template policy with its retention section replaced."""
    head, _, tail = POLICY_YAML.partition("retention:\n")
    _, _, processing = tail.partition("processing:\n")
    folder = tmp_path / "other-policies"
    folder.mkdir(exist_ok=True)
    return write_policy(folder, f"{head}retention:\n{retention}processing:\n{processing}")


def test_retention_deletes_old_charges(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    expired = {charge["id"] for charge in world.charges if dt.datetime.fromtimestamp(charge["created"], dt.UTC) < CUTOFF}
    total = len(world.charges)
    assert 0 < len(expired) < total

    report = apply_retention(home, TENANT, load_policy(loaded_tenant.policy, TENANT), now=NOW)

    (outcome,) = report.streams
    assert outcome.plan.table == "stripe.charges"
    assert outcome.plan.date_field == "created"
    assert outcome.rows_deleted == len(expired)
    assert outcome.parquet_rows_removed == len(expired)
    stored = {row[0] for row in query(home, "SELECT id FROM stripe.charges")}
    assert stored == {charge["id"] for charge in world.charges} - expired
    assert query(home, "SELECT min(created) >= ? FROM stripe.charges", [CUTOFF])[0][0] is True
    lake = read_lake(home, "charges")
    assert set(lake.column("id").to_pylist()) == stored
    assert min(lake.column("created").to_pylist()) >= CUTOFF


def test_retention_leaves_streams_without_rule(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    customers_before = query(home, "SELECT count(*) FROM stripe.customers")[0][0]
    lake_before = file_contents(parquet_folder(home, "customers"))

    apply_retention(home, TENANT, load_policy(loaded_tenant.policy, TENANT), now=NOW)

    assert query(home, "SELECT count(*) FROM stripe.customers")[0][0] == customers_before
    assert file_contents(parquet_folder(home, "customers")) == lake_before


def test_retention_rekeys_database(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    key_before = load_tenant_keys(home, TENANT).duckdb_key

    report = apply_retention(home, TENANT, load_policy(loaded_tenant.policy, TENANT), now=NOW)

    assert report.database_rekeyed is True
    assert load_tenant_keys(home, TENANT).duckdb_key != key_before


def test_retention_removes_emptied_files(loaded_tenant: LoadedTenant, tmp_path: Path) -> None:
    home = loaded_tenant.home
    policy = policy_with(tmp_path, "  streams:\n    stripe.charges: {keep: 1 day, date_field: created}\n")
    files_before = sorted(parquet_folder(home, "charges").glob("*.parquet"))
    assert files_before

    report = apply_retention(home, TENANT, load_policy(policy, TENANT), now=NOW + dt.timedelta(days=100))

    (outcome,) = report.streams
    assert {change.removed for change in outcome.files} == {True}
    assert sorted(parquet_folder(home, "charges").glob("*.parquet")) == []
    assert query(home, "SELECT count(*) FROM stripe.charges")[0][0] == 0


def test_retention_dry_run_changes_nothing(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    before = file_contents(home / "warehouse")

    report = apply_retention(home, TENANT, load_policy(loaded_tenant.policy, TENANT), dry_run=True, now=NOW)

    (outcome,) = report.streams
    assert outcome.rows_deleted > 0
    assert outcome.files == []
    assert file_contents(home / "warehouse") == before
    event = read_audit_events(home, TENANT)[-1]
    assert event["action"] == "privacy.retention"
    assert event["details"]["dry_run"] is True
    assert event["details"]["streams"]["stripe.charges"]["rows_deleted"] == outcome.rows_deleted


def test_retention_cli_reports_per_stream(loaded_tenant: LoadedTenant, tmp_path: Path) -> None:
    policy = policy_with(tmp_path, "  default: 100 years\n")
    loaded_tenant = LoadedTenant(loaded_tenant.home, policy, loaded_tenant.world, loaded_tenant.master_key)

    result = loaded_tenant.cli("retention", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Would delete rows past retention for tenant {TENANT!r}:\n")
    assert "  stripe.charges: keep 100 years by _sdc_changed_at (before " in result.output
    assert "  stripe.customers: keep 100 years by _sdc_changed_at" in result.output
    assert ": 0 table rows, 0 Parquet rows" in result.output


def test_retention_defaults_to_loaded_at() -> None:
    types = {"id": "VARCHAR", "created": "TIMESTAMP WITH TIME ZONE", "_loaded_at": "TIMESTAMP WITH TIME ZONE"}

    assert date_field_for("stripe", "charges", None, types) == ("_loaded_at", None)
    assert date_field_for("stripe", "charges", None, {**types, "_sdc_changed_at": "TIMESTAMP WITH TIME ZONE"})[0] == "_sdc_changed_at"
    assert date_field_for("stripe", "charges", None, {**types, "_sdc_changed_at": "VARCHAR"})[0] == "_loaded_at"
    assert date_field_for("other", "things", None, types)[0] == "_loaded_at"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            "{keep: 1 year, date_field: purchased_on}",
            "retention.streams.stripe.charges.date_field: table stripe.charges has no column 'purchased_on'",
            id="missing-column",
        ),
        pytest.param(
            "{keep: 1 year, date_field: currency}",
            "retention.streams.stripe.charges.date_field: column 'currency' of stripe.charges is VARCHAR, not a date",
            id="not-a-date",
        ),
    ],
)
def test_retention_bad_date_field_named(loaded_tenant: LoadedTenant, tmp_path: Path, rule: str, expected: str) -> None:
    home = loaded_tenant.home
    path = policy_with(tmp_path, f"  streams:\n    stripe.charges: {rule}\n")
    # Unchecked against the declaration, as for a source without one, so the warehouse check itself runs.
    policy = load_policy(path, TENANT, check_declarations=False)
    rows_before = query(home, "SELECT count(*) FROM stripe.charges")[0][0]

    with open_warehouse(home, TENANT, read_only=True) as connection, pytest.raises(RetentionError, match=expected) as raised:
        plan_retention(connection, policy, NOW)
    cli = LoadedTenant(home, path, loaded_tenant.world, loaded_tenant.master_key).cli("retention")

    assert "nothing was deleted" in str(raised.value)
    assert cli.exit_code == 1
    assert "retention.streams.stripe.charges.date_field: " in cli.output
    assert query(home, "SELECT count(*) FROM stripe.charges")[0][0] == rows_before


def test_retention_finishes_pending_compaction(loaded_tenant: LoadedTenant, tmp_path: Path) -> None:
    home = loaded_tenant.home
    mark_rows_deleted(home, TENANT)
    key_before = load_tenant_keys(home, TENANT).duckdb_key
    policy = policy_with(tmp_path, "  default: 100 years\n")

    report = apply_retention(home, TENANT, load_policy(policy, TENANT), now=NOW)

    assert [outcome.rows_deleted for outcome in report.streams] == [0, 0, 0]
    assert report.database_rekeyed is True
    assert not marker_path(home, TENANT).exists()
    assert load_tenant_keys(home, TENANT).duckdb_key != key_before
