"""`spendlake privacy export` on a loaded Stripe tenant: the subject's rows, decrypted, in a private file."""

from __future__ import annotations

import json
import stat

from privacy.audit import read_audit_events
from tests.privacy.gdpr_support import (
    TENANT,
    LoadedTenant,
    charges_of,
    customer_with_charges,
    loaded_template,  # noqa: F401 - fixture
    loaded_tenant,  # noqa: F401 - fixture
    pseudonyms_of,
)


def test_export_file_holds_decrypted_rows(loaded_tenant: LoadedTenant) -> None:
    home, world = loaded_tenant.home, loaded_tenant.world
    customer = customer_with_charges(world)
    charges = charges_of(world, customer["id"])
    out = home.parent / "export.json"

    result = loaded_tenant.cli("export", "--email", customer["email"], "--out", str(out))

    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    (stored_customer,) = document["tables"]["stripe.customers"]
    assert stored_customer["email"] == customer["email"]
    assert stored_customer["phone"] == customer["phone"]
    assert stored_customer["id"] == pseudonyms_of(home, {"identifier": {customer["id"]}}).pop()
    exported_charges = {row["id"]: row for row in document["tables"]["stripe.charges"]}
    assert {charge["id"] for charge in charges} <= set(exported_charges)
    for charge in charges:
        assert exported_charges[charge["id"]]["billing_email"] == charge["billing_details"]["email"]
        assert exported_charges[charge["id"]]["amount"] == charge["amount"]


def test_export_file_is_private(loaded_tenant: LoadedTenant) -> None:
    customer = customer_with_charges(loaded_tenant.world)
    out = loaded_tenant.home.parent / "export.json"
    out.write_text("an older export\n")
    out.chmod(0o644)

    result = loaded_tenant.cli("export", "--email", customer["email"], "--out", str(out))

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "(mode 0600)" in result.output
    assert [path.name for path in out.parent.iterdir() if path.name.startswith(".export.json")] == []


def test_export_header_names_search(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    customer = customer_with_charges(loaded_tenant.world)
    searched = "  " + customer["email"].upper() + " "

    result = loaded_tenant.cli("export", "--email", searched)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["tenant"] == TENANT
    assert document["format"] == "spendlake-subject-export-v1"
    assert document["searched"] == {
        "class": "email",
        "value": searched,
        "pseudonym": pseudonyms_of(home, {"email": {customer["email"]}}).pop(),
    }
    assert document["link_rounds"] >= 2
    assert pseudonyms_of(home, {"phone": {customer["phone"]}}) <= set(document["linked_pseudonyms"]["phone"])
    assert document["requested_at"].endswith("+00:00")


def test_export_audit_holds_no_value(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    customer = customer_with_charges(loaded_tenant.world)
    charges = charges_of(loaded_tenant.world, customer["id"])

    result = loaded_tenant.cli("export", "--email", customer["email"])

    assert result.exit_code == 0, result.output
    event = read_audit_events(home, TENANT)[-1]
    assert event["action"] == "privacy.export"
    assert event["details"]["rows_by_table"]["stripe.customers"] == 1
    assert event["details"]["rows_by_table"]["stripe.charges"] >= len(charges)
    assert event["details"]["destination"] == "stdout"
    log_text = (home / "privacy" / TENANT / "audit.jsonl").read_text()
    assert customer["email"] not in log_text
    assert customer["phone"] not in log_text


def test_export_unknown_subject_is_empty(loaded_tenant: LoadedTenant) -> None:
    result = loaded_tenant.cli("export", "--phone", "+1 415 555 0199")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["tables"] == {}
    assert document["link_rounds"] == 1


def test_export_changes_no_data(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    customer = customer_with_charges(loaded_tenant.world)
    before = {path: path.read_bytes() for path in (home / "warehouse").rglob("*") if path.is_file() and path.suffix in (".duckdb", ".parquet")}

    result = loaded_tenant.cli("export", "--customer-id", customer["id"])

    assert result.exit_code == 0, result.output
    after = {path: path.read_bytes() for path in (home / "warehouse").rglob("*") if path.is_file() and path.suffix in (".duckdb", ".parquet")}
    assert after == before
    assert json.loads(result.stdout)["tables"]["stripe.customers"][0]["email"] == customer["email"]
