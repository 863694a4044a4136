"""`spendlake privacy record`: the record of processing (Art. 30) from the declarations and the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from privacy.audit import read_audit_events
from privacy.declarations import installed_source_names, load_source_declaration
from taps.engine.declaration import DeclarationError, parse_declaration
from tests.privacy.gdpr_support import (
    POLICY_YAML,
    TENANT,
    LoadedTenant,
    loaded_template,  # noqa: F401 - fixture
    loaded_tenant,  # noqa: F401 - fixture
    write_policy,
)

BUILT_IN_SOURCES = ("facebook", "google_ads", "google_analytics", "magento", "stripe")


def record_json(tenant: LoadedTenant) -> dict:
    result = tenant.cli("record", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fields_by_class(record: dict, source: str, stream: str) -> dict[str, dict[str, str]]:
    (entry,) = [item for item in record["sources"] if item["name"] == source]
    (stream_entry,) = [item for item in entry["streams"] if item["name"] == stream]
    return {
        pii_class: {item["field"]: item["action"] for item in items}
        for pii_class, items in stream_entry["personal_data"].items()
    }


def test_record_lists_stored_sources_only(loaded_tenant: LoadedTenant) -> None:
    record = record_json(loaded_tenant)

    assert record["tenant"] == TENANT
    assert [source["name"] for source in record["sources"]] == ["stripe"]
    assert record["scope"] == "sources with tables in the warehouse"


def test_record_classes_and_actions_per_stream(loaded_tenant: LoadedTenant) -> None:
    record = record_json(loaded_tenant)

    customers = fields_by_class(record, "stripe", "customers")
    assert customers["email"] == {"email": "encrypt"}
    assert customers["phone"] == {"phone": "encrypt", "shipping_phone": "hmac"}
    assert customers["identifier"] == {"id": "hmac"}
    assert customers["ip"] == {"ip_address": "drop"}
    assert set(customers) == {"email", "phone", "identifier", "name", "address", "free_text", "ip"}
    charges = fields_by_class(record, "stripe", "charges")
    assert charges["email"] == {"receipt_email": "hmac", "billing_email": "encrypt"}


def test_record_processing_facts_from_policy(loaded_tenant: LoadedTenant) -> None:
    record = record_json(loaded_tenant)

    assert record["controller"] == {"name": "Acme Shop Ltd", "contact": "privacy@acme.example"}
    assert record["processor"]["name"] == "Example Agency"
    assert record["purposes"] == ["Measure revenue per advertising campaign"]
    assert record["recipients"] == ["Acme's marketing team"]
    assert record["transfers"] == "none outside the EEA"
    assert record["data_subjects"] == sorted(load_source_declaration("stripe").data_subjects)
    assert "customers of the client's shop" in record["data_subjects"]


def test_record_retention_per_stream(loaded_tenant: LoadedTenant) -> None:
    record = record_json(loaded_tenant)

    (stripe,) = record["sources"]
    retention = {stream["name"]: stream["retention"] for stream in stripe["streams"]}
    assert retention["charges"] == {"keep": "30 days", "date_field": "created"}
    assert retention["customers"] is None


def test_record_security_measures(loaded_tenant: LoadedTenant) -> None:
    measures = record_json(loaded_tenant)["security_measures"]
    text = "\n".join(measures)

    assert "Parquet modular encryption (AES-256-GCM)" in text
    assert "DuckDB database encrypted with AES-256-GCM" in text
    assert "HMAC-SHA256 under a per-tenant key" in text
    assert "Fields the policy marks `encrypt` are encrypted" in text
    assert "a 32-byte master key kept outside the keyring" in text
    assert "Erasure list" in text
    assert "hash-chained" in text
    assert measures[-1] == "Access to the warehouse host limited to two named staff"


def test_record_markdown_matches_json(loaded_tenant: LoadedTenant) -> None:
    result = loaded_tenant.cli("record")

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith(f"# Record of processing activities: tenant `{TENANT}`\n")
    for heading in ("Controller and processor", "Purposes of the processing", "Categories of data subjects",
                    "Categories of personal data", "Recipients", "Transfers to third countries", "Retention",
                    "Technical and organisational security measures"):
        assert f"\n## {heading}\n" in text
    assert "| charges | email | `billing_email` | encrypt: encrypted (AES-256-GCM), reversible by key holders |" in text
    assert "| stripe.charges | 30 days | created |" in text
    assert "- Controller: name: Acme Shop Ltd, contact: privacy@acme.example" in text


def test_record_without_warehouse_lists_installed(tmp_path: Path, loaded_tenant: LoadedTenant) -> None:
    fresh = LoadedTenant(tmp_path / "fresh-home", loaded_tenant.policy, loaded_tenant.world, loaded_tenant.master_key)

    record = record_json(fresh)

    names = [source["name"] for source in record["sources"]]
    assert names == installed_source_names()
    assert set(BUILT_IN_SOURCES) <= set(names)
    assert fields_by_class(record, "magento", "customers")["date_of_birth"] == {"dob": "drop"}
    assert "no tables yet" in record["scope"]


def test_record_notes_stored_action_change(loaded_tenant: LoadedTenant) -> None:
    changed = POLICY_YAML.replace("fields: {email: encrypt, phone: encrypt}", "fields: {email: hmac, phone: encrypt}")
    policy = write_policy(loaded_tenant.home.parent / "policies", changed)

    record = record_json(LoadedTenant(loaded_tenant.home, policy, loaded_tenant.world, loaded_tenant.master_key))

    (stripe,) = record["sources"]
    (customers,) = [stream for stream in stripe["streams"] if stream["name"] == "customers"]
    assert customers["personal_data"]["email"] == [{"field": "email", "action": "hmac", "stored_action": "encrypt"}]


def test_record_out_file_audited(loaded_tenant: LoadedTenant) -> None:
    out = loaded_tenant.home.parent / "record.md"

    result = loaded_tenant.cli("record", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Record of processing activities")
    event = read_audit_events(loaded_tenant.home, TENANT)[-1]
    assert event["action"] == "privacy.record"
    assert event["details"]["sources"] == ["stripe"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("data_subjects", "customers", "data_subjects", id="subjects-not-a-list"),
        pytest.param("data_subjects", ["customers", "customers"], "data_subjects", id="subjects-repeated"),
        pytest.param("purpose", "", "purpose", id="purpose-empty"),
    ],
)
def test_declaration_processing_keys_validated(key: str, value: object, expected: str) -> None:
    from importlib import resources

    document = yaml.safe_load(resources.files("taps.stripe").joinpath("stripe.yaml").read_text())
    document[key] = value

    with pytest.raises(DeclarationError) as raised:
        parse_declaration(document, label="stripe.yaml")

    assert any(problem.startswith(expected) for problem in raised.value.problems), raised.value.problems


def test_every_builtin_source_declares_subjects() -> None:
    for name in BUILT_IN_SOURCES:
        declaration = load_source_declaration(name)
        assert declaration is not None, name
        assert declaration.data_subjects, name
        assert declaration.purpose, name
