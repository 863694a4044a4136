"""`spendlake privacy erase` on a loaded Stripe tenant: rows, Parquet files, keys, erasure list and audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privacy import duckdb_rekey
from privacy.audit import read_audit_events
from privacy.compaction import marker_path
from privacy.erasures import load_erased
from privacy.keys import load_tenant_keys
from spendlake.tenant_lock import tenant_lock
from tests.privacy.gdpr_support import (
    TENANT,
    LoadedTenant,
    charges_of,
    customer_with_charges,
    duckdb_pseudonyms,
    file_contents,
    linked_values,
    load_messages,
    loaded_template,  # noqa: F401 - fixture
    loaded_tenant,  # noqa: F401 - fixture
    parquet_folder,
    parquet_pseudonyms,
    pseudonyms_of,
    query,
    read_lake,
    sync_stripe,
)


def charge_ids(home: Path) -> set[str]:
    return {row[0] for row in query(home, "SELECT id FROM stripe.charges")}


def test_erase_by_email_deletes_linked_rows(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    charges = charges_of(world, customer["id"])
    subject = pseudonyms_of(home, linked_values(customer, charges))
    customers_before = query(home, "SELECT count(*) FROM stripe.customers")[0][0]
    charges_before = charge_ids(home)
    assert subject & duckdb_pseudonyms(home, "customers")
    assert subject & parquet_pseudonyms(home, "charges")

    result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert result.exit_code == 0, result.output
    assert "stripe.customers: 1 row\n" in result.output
    erased_charges = charges_before - charge_ids(home)
    assert {charge["id"] for charge in charges} <= erased_charges
    assert f"stripe.charges: {len(erased_charges)} rows" in result.output
    assert query(home, "SELECT count(*) FROM stripe.customers")[0][0] == customers_before - 1
    for stream in ("customers", "charges", "invoices"):
        assert subject.isdisjoint(duckdb_pseudonyms(home, stream)), stream
        assert subject.isdisjoint(parquet_pseudonyms(home, stream)), stream


def test_erase_leaves_other_subjects(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    others = [item for item in world.customers if item["id"] != customer["id"]]
    other_ids = pseudonyms_of(home, {"identifier": {item["id"] for item in others}})
    lake_rows_before = read_lake(home, "customers").num_rows

    result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert result.exit_code == 0, result.output
    stored_ids = {row[0] for row in query(home, "SELECT id FROM stripe.customers")}
    assert stored_ids == other_ids
    assert read_lake(home, "customers").num_rows == lake_rows_before - 1


def test_erase_adds_pseudonyms_to_erasure_list(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    found = pseudonyms_of(home, {"email": {customer["email"]}, "identifier": {customer["id"]}, "phone": {customer["phone"]}})

    result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert result.exit_code == 0, result.output
    assert found <= load_erased(home, TENANT)
    assert "Erasure list: " in result.output


def test_erase_rewrites_parquet_and_rekeys_database(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    lake_before = file_contents(parquet_folder(home, "charges"))
    duckdb_key_before = load_tenant_keys(home, TENANT).duckdb_key

    result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert result.exit_code == 0, result.output
    lake_after = file_contents(parquet_folder(home, "charges"))
    changed = [name for name in lake_before if lake_after.get(name) != lake_before[name]]
    assert changed
    assert "Parquet files rewritten with new keys: " in result.output
    assert load_tenant_keys(home, TENANT).duckdb_key != duckdb_key_before
    assert "copied under a new key" in result.output


def test_erase_by_customer_id_follows_links(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    email = pseudonyms_of(home, {"email": {customer["email"]}})

    result = loaded_tenant.cli("erase", "--customer-id", customer["id"], "--yes")

    assert result.exit_code == 0, result.output
    assert email <= load_erased(home, TENANT)
    assert email.isdisjoint(duckdb_pseudonyms(home, "charges"))
    assert email.isdisjoint(parquet_pseudonyms(home, "customers"))


def test_erase_by_phone_in_national_format(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = next(item for item in world.customers if item["phone"] and item["phone"].startswith("+1"))
    national = f"({customer['phone'][2:5]}) {customer['phone'][5:8]}-{customer['phone'][8:]}"
    identifier = pseudonyms_of(home, {"identifier": {customer["id"]}})

    result = loaded_tenant.cli("erase", "--phone", national, "--yes")

    assert result.exit_code == 0, result.output
    assert identifier.isdisjoint(duckdb_pseudonyms(home, "customers"))


def test_erase_dry_run_changes_nothing(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    before = file_contents(home / "warehouse")
    keyring_before = (home / "keys" / f"{TENANT}.json").read_bytes()

    result = loaded_tenant.cli("erase", "--email", customer["email"], "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Would erase the subject")
    assert "stripe.customers: 1 row\n" in result.output
    assert file_contents(home / "warehouse") == before
    assert (home / "keys" / f"{TENANT}.json").read_bytes() == keyring_before
    assert load_erased(home, TENANT) == frozenset()


def test_erase_without_yes_needs_terminal(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    customers_before = query(home, "SELECT count(*) FROM stripe.customers")[0][0]

    result = loaded_tenant.cli("erase", "--email", customer["email"])

    assert result.exit_code == 1
    assert "pass --yes" in result.output
    assert query(home, "SELECT count(*) FROM stripe.customers")[0][0] == customers_before
    assert load_erased(home, TENANT) == frozenset()


def test_erase_stops_when_links_keep_growing(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    customers_before = query(home, "SELECT count(*) FROM stripe.customers")[0][0]

    result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes", "--max-link-rounds", "1")

    assert result.exit_code == 1
    assert "round limit (1) was reached" in result.output
    assert "--max-link-rounds" in result.output
    assert query(home, "SELECT count(*) FROM stripe.customers")[0][0] == customers_before
    assert load_erased(home, TENANT) == frozenset()


def test_erase_unknown_subject_still_listed(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    unknown = pseudonyms_of(home, {"email": {"nobody.stored@example.net"}})

    result = loaded_tenant.cli("erase", "--email", "nobody.stored@example.net", "--yes")

    assert result.exit_code == 0, result.output
    assert "No stored row matched" in result.output
    assert load_erased(home, TENANT) == unknown


def test_erase_audit_event_holds_no_value(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    searched = pseudonyms_of(home, {"email": {customer["email"]}}).pop()

    result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert result.exit_code == 0, result.output
    event = read_audit_events(home, TENANT)[-1]
    assert event["action"] == "privacy.erase"
    assert event["details"]["searched_pseudonym"] == searched
    assert event["details"]["rows_by_table"]["stripe.customers"] == 1
    assert event["details"]["dry_run"] is False
    log_text = (home / "privacy" / TENANT / "audit.jsonl").read_text()
    for value in (customer["email"], customer["phone"], customer["id"], customer["name"]):
        assert value not in log_text
    assert customer["email"] not in result.output


def test_reload_does_not_bring_subject_back(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    subject = pseudonyms_of(home, {"identifier": {customer["id"]}, "email": {customer["email"]}})
    result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")
    assert result.exit_code == 0, result.output
    customers_after_erase = query(home, "SELECT count(*) FROM stripe.customers")[0][0]

    load_messages(home, sync_stripe(world), loaded_tenant.policy)

    assert query(home, "SELECT count(*) FROM stripe.customers")[0][0] == customers_after_erase
    for stream in ("customers", "charges"):
        assert subject.isdisjoint(duckdb_pseudonyms(home, stream)), stream
        assert subject.isdisjoint(parquet_pseudonyms(home, stream)), stream


def test_erase_waits_for_tenant_lock(loaded_tenant: LoadedTenant) -> None:
    customer = customer_with_charges(loaded_tenant.world)

    with tenant_lock(loaded_tenant.home, TENANT, "a test load"):
        result = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert result.exit_code == 1
    assert "is busy" in result.output
    assert load_erased(loaded_tenant.home, TENANT) == frozenset()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param(["--email", "a@example.com", "--phone", "+14155550100"], "exactly one of", id="two-subjects"),
        pytest.param([], "exactly one of", id="no-subject"),
        pytest.param(["--email", "   "], "is empty", id="blank-email"),
    ],
)
def test_erase_subject_options_checked(loaded_tenant: LoadedTenant, arguments: list[str], expected: str) -> None:
    result = loaded_tenant.cli("erase", *arguments, "--yes")

    assert result.exit_code != 0
    assert expected in result.output
    assert load_erased(loaded_tenant.home, TENANT) == frozenset()


def test_erase_missing_warehouse_named(tmp_path: Path, loaded_tenant: LoadedTenant) -> None:
    empty = tmp_path / "empty-home"
    result = LoadedTenant(empty, loaded_tenant.policy, loaded_tenant.world, loaded_tenant.master_key).cli(
        "erase", "--email", "a@example.com", "--yes"
    )

    assert result.exit_code == 1
    assert "has no warehouse" in result.output
    assert json.dumps(str(empty / "warehouse" / TENANT / "warehouse.duckdb"))[1:-1] in result.output


def test_failed_rekey_finished_by_next_run(loaded_tenant: LoadedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    subject = pseudonyms_of(home, {"identifier": {customer["id"]}})
    key_before = load_tenant_keys(home, TENANT).duckdb_key

    def fail_rekey(home: Path, tenant: str) -> None:
        raise duckdb_rekey.RekeyError("the copy failed in this test")

    with monkeypatch.context() as patch:
        patch.setattr(duckdb_rekey, "rekey_database", fail_rekey)
        first = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert first.exit_code == 1
    assert "copying it under a new key failed (RekeyError: the copy failed in this test)" in first.output
    assert subject.isdisjoint(duckdb_pseudonyms(home, "customers"))
    assert subject <= parquet_pseudonyms(home, "customers")
    assert subject <= load_erased(home, TENANT)
    assert marker_path(home, TENANT).exists()
    assert read_audit_events(home, TENANT)[-1]["details"]["failed"] == "CompactionError"

    second = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")

    assert second.exit_code == 0, second.output
    assert "copied under a new key" in second.output
    assert not marker_path(home, TENANT).exists()
    assert load_tenant_keys(home, TENANT).duckdb_key != key_before
    assert subject.isdisjoint(parquet_pseudonyms(home, "customers"))
