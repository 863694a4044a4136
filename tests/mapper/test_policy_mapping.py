"""mapper-pii with a tenant policy file, on the taps' declared schemas: actions, failing closed, erasure, modes."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from singer_sdk.testing.runners import TargetTestRunner

from mappers.pii.actions import Transforms
from mappers.pii.fast_path import StreamCodec
from mappers.pii.plan import MappingError, build_plan
from privacy.declarations import installed_source_names
from privacy.erasures import add_erased
from privacy.field_crypto import FieldCipher, blind_index, is_field_token
from privacy.keys import load_tenant_keys
from privacy.policy import load_policy
from privacy.pseudonyms import Pseudonymizer
from privacy.redaction import redact_text
from targets.warehouse import TargetWarehouse
from targets.warehouse.duckdb_store import connect_warehouse
from tests.mapper.support import TENANT, declared_schema, error_text, record, run_mapper, write_policy

CUSTOMER = {
    "id": "cus_R2d2C3po",
    "created": "2026-11-01T10:00:00Z",
    "currency": "eur",
    "balance": 0,
    "delinquent": False,
    "livemode": False,
    "preferred_locales": ["de", "en"],
    "email": "Jane.Roe@Example.com",
    "phone": "+1 415 555 0123",
    "name": "Jane Roe",
    "description": "VIP: call Jane at jane.roe@example.com or +1 415 555 0123",
    "address_line1": "1 Canary Street",
    "address_city": "Springfield",
    "address_postal_code": "94107-1234",
    "address_country": "US",
    "shipping_name": "Jane Roe",
    "ip_address": "203.0.113.77",
    "_sdc_deleted_at": None,
    "_sdc_changed_at": "2026-11-01T10:00:00Z",
}
CUSTOMER_RULES = """
streams:
  stripe.customers:
    fields: {email: encrypt, address_postal_code: generalize, ip_address: truncate_ip, description: redact}
"""


def pseudonymizer(home: Path) -> Pseudonymizer:
    return Pseudonymizer(load_tenant_keys(home, TENANT).hmac_key)


def cipher(home: Path) -> FieldCipher:
    keys = load_tenant_keys(home, TENANT)
    return FieldCipher(keys.field_key, TENANT, Pseudonymizer(keys.hmac_key))


def stripe_config(tmp_path: Path, rules: str = CUSTOMER_RULES, **extra: object) -> dict[str, object]:
    return {"source": "stripe", "policy_file": str(write_policy(tmp_path, rules)), **extra}


# Actions on the declared Stripe and Magento schemas.


def test_customer_fields_mapped_per_policy(tmp_path: Path, spendlake_env: Path) -> None:
    run = run_mapper([declared_schema("stripe", "customers"), record("customers", CUSTOMER)], stripe_config(tmp_path))

    assert run.error is None
    [mapped] = run.records("customers")
    pseudonym = pseudonymizer(spendlake_env).pseudonym
    assert mapped["id"] == pseudonym("identifier", "cus_R2d2C3po")
    assert mapped["phone"] == pseudonym("phone", "+14155550123")
    assert is_field_token(mapped["email"])
    assert mapped["address_postal_code"] == "941"
    assert mapped["ip_address"] == "203.0.113.0"
    assert mapped["description"] == redact_text(CUSTOMER["description"])
    assert mapped["description"] == "VIP: call Jane at [email] or [phone]"
    assert (mapped["preferred_locales"], mapped["address_country"], mapped["balance"]) == (["de", "en"], "US", 0)
    assert not {"name", "address_line1", "address_city", "shipping_name"} & mapped.keys()


def test_customer_schema_describes_output(tmp_path: Path) -> None:
    run = run_mapper([declared_schema("stripe", "customers")], stripe_config(tmp_path))

    properties = run.schema("customers")["properties"]
    applied = {name: prop["x-pii-applied"] for name, prop in properties.items()}
    assert applied["email"] == "encrypt"
    assert applied["phone"] == "hmac"
    assert applied["address_postal_code"] == "generalize"
    assert applied["ip_address"] == "truncate_ip"
    assert applied["description"] == "redact"
    assert applied["currency"] == "keep"
    assert "name" not in properties
    assert properties["email"] == {"type": ["string", "null"], "x-pii": "email", "x-pii-applied": "encrypt"}
    assert properties["id"] == {"type": "string", "x-pii": "identifier", "x-pii-applied": "hmac"}
    assert all(prop["x-pii"] for prop in properties.values())


def test_encrypted_value_decrypts(tmp_path: Path, spendlake_env: Path) -> None:
    run = run_mapper([declared_schema("stripe", "customers"), record("customers", CUSTOMER)], stripe_config(tmp_path))

    token = run.records("customers")[0]["email"]
    assert cipher(spendlake_env).decrypt("stripe", "customers", "email", token) == "Jane.Roe@Example.com"
    assert blind_index(token) == pseudonymizer(spendlake_env).pseudonym("email", "jane.roe@example.com")
    assert "Jane.Roe" not in token


def test_encrypted_value_bound_to_source(tmp_path: Path, spendlake_env: Path) -> None:
    run = run_mapper([declared_schema("stripe", "customers"), record("customers", CUSTOMER)], stripe_config(tmp_path))

    token = run.records("customers")[0]["email"]
    with pytest.raises(ValueError, match="failed authentication"):
        cipher(spendlake_env).decrypt("magento", "customers", "email", token)


def test_date_of_birth_generalized_to_year(tmp_path: Path) -> None:
    config = {"source": "magento", "policy_file": str(write_policy(tmp_path, "streams:\n  magento.customers:\n    fields: {dob: generalize}\n"))}
    values = {"id": 17, "email": "max@example.de", "firstname": "Max", "dob": "1984-07-12", "group_id": 1, "updated_at": "2026-11-01T10:00:00Z"}

    run = run_mapper([declared_schema("magento", "customers"), record("customers", values)], config)

    [mapped] = run.records("customers")
    assert mapped["dob"] == 1984
    assert run.schema("customers")["properties"]["dob"] == {"type": ["integer", "null"], "x-pii": "date_of_birth", "x-pii-applied": "generalize"}
    assert "firstname" not in mapped
    assert len(mapped["id"]) == 64


def test_unreadable_values_become_null(tmp_path: Path) -> None:
    values = {**CUSTOMER, "ip_address": "not an address", "address_postal_code": "??"}

    run = run_mapper([declared_schema("stripe", "customers"), record("customers", values)], stripe_config(tmp_path))

    [mapped] = run.records("customers")
    assert (mapped["ip_address"], mapped["address_postal_code"]) == (None, None)


def test_mapped_output_loads_into_warehouse(tmp_path: Path, spendlake_env: Path) -> None:
    second = {**CUSTOMER, "id": "cus_Other", "email": None, "ip_address": "2001:db8:abcd:12::1"}
    run = run_mapper(
        [declared_schema("stripe", "customers"), record("customers", CUSTOMER), record("customers", second)],
        stripe_config(tmp_path),
    )

    config = {"tenant": TENANT, "source": "stripe", "home": str(spendlake_env)}
    TargetTestRunner(TargetWarehouse, config=config, input_io=io.StringIO(run.text)).sync_all()

    with connect_warehouse(spendlake_env, TENANT, read_only=True) as connection:
        rows = connection.execute("select ip_address, address_postal_code, email from stripe.customers order by ip_address").fetchall()
    assert [row[:2] for row in rows] == [("2001:db8:abcd::", "941"), ("203.0.113.0", "941")]
    assert rows[0][2] is None
    assert cipher(spendlake_env).decrypt("stripe", "customers", "email", rows[1][2]) == "Jane.Roe@Example.com"


# Failing closed: each stops the run with no RECORD of the stream written.


def test_rule_for_undeclared_field_stops_at_start(tmp_path: Path) -> None:
    config = stripe_config(tmp_path, "streams:\n  stripe.customers:\n    fields: {emial: encrypt}\n")

    run = run_mapper([declared_schema("stripe", "customers"), record("customers", CUSTOMER)], config)

    assert "streams.stripe.customers.fields.emial: the stream has no field 'emial' (did you mean 'email'?)" in error_text(run.error)
    assert run.messages == []


def test_unknown_field_rule_stops_at_schema(tmp_path: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "streams:\n  acme_crm.leads:\n    fields: {emial: encrypt}\n"))}
    schema = {"type": "SCHEMA", "stream": "leads", "key_properties": ["id"], "schema": {"properties": {
        "id": {"type": "string", "x-pii": "none"}, "email": {"type": "string", "x-pii": "email"}}}}

    run = run_mapper([schema, record("leads", {"id": "1", "email": "lead@example.com"})], config)

    assert isinstance(run.error, MappingError)
    assert "rule(s) streams.acme_crm.leads.fields.emial for field(s) the SCHEMA does not have" in str(run.error)
    assert run.records() == []


def test_rule_action_wrong_for_schema_class_stops(tmp_path: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "streams:\n  acme_crm.leads:\n    fields: {email: truncate_ip}\n"))}
    schema = {"type": "SCHEMA", "stream": "leads", "key_properties": ["id"], "schema": {"properties": {
        "id": {"type": "string", "x-pii": "none"}, "email": {"type": "string", "x-pii": "email"}}}}

    run = run_mapper([schema, record("leads", {"id": "1", "email": "lead@example.com"})], config)

    assert "field 'email' (class email) cannot be mapped under the policy" in error_text(run.error)
    assert "action 'truncate_ip' does not apply to class 'email'" in error_text(run.error)
    assert run.records() == []


def test_rule_never_matched_stops_at_end(tmp_path: Path) -> None:
    rules = CUSTOMER_RULES + "  stripe.charges:\n    fields: {description: redact}\n"
    charge = {"id": "ch_1", "amount": 100, "currency": "usd", "customer": "cus_1", "billing_email": "a@example.com"}

    run = run_mapper([declared_schema("stripe", "charges"), record("charges", charge)], stripe_config(tmp_path, rules))

    assert "has rules for stream(s) stripe.customers, but no SCHEMA of such a stream arrived" in error_text(run.error)
    assert "Remove the rule(s), or select the stream(s) in the tap" in error_text(run.error)
    assert run.records("customers") == []


def test_encrypted_key_property_rejected(tmp_path: Path) -> None:
    run = run_mapper([declared_schema("stripe", "customers"), record("customers", CUSTOMER)], stripe_config(tmp_path, "streams:\n  stripe.customers:\n    fields: {id: encrypt}\n"))

    assert "key property id (encrypt) would no longer identify a row one to one" in error_text(run.error)
    assert run.records() == []


def test_stream_rules_need_source(tmp_path: Path) -> None:
    run = run_mapper([], {"policy_file": str(write_policy(tmp_path, CUSTOMER_RULES))})

    assert "has stream rules, so set source to the source name of the input" in error_text(run.error)


def test_policy_errors_listed_at_start(tmp_path: Path) -> None:
    rules = "classes: {email: hash}\nstreams:\n  stripe.custmers:\n    fields: {email: encrypt}\n"

    run = run_mapper([declared_schema("stripe", "customers")], stripe_config(tmp_path, rules))

    problems = error_text(run.error).splitlines()
    assert len(problems) == 2
    assert problems[0].endswith("classes.email: unknown action 'hash'; use one of: keep, drop, hmac, encrypt, truncate_ip, generalize, redact")
    assert "streams.stripe.custmers: source 'stripe' has no stream 'custmers'" in problems[1]
    assert run.messages == []


def codec_for(policy_text: str, tmp_path: Path, spendlake_env: Path) -> StreamCodec:
    policy = load_policy(write_policy(tmp_path, policy_text), TENANT)
    schema = declared_schema("stripe", "customers")
    plan = build_plan("customers", schema["schema"], schema["key_properties"], policy, "stripe")
    keys = load_tenant_keys(spendlake_env, TENANT)
    names = Pseudonymizer(keys.hmac_key)
    transforms = Transforms(names, phone_region="US", cipher_factory=lambda: FieldCipher(keys.field_key, TENANT, names))
    return StreamCodec(plan, transforms, erased=frozenset(), fail_on_unknown=False)


def test_verify_rejects_input_value_in_hmac_field(tmp_path: Path, spendlake_env: Path) -> None:
    codec = codec_for(CUSTOMER_RULES, tmp_path, spendlake_env)
    mapped = codec.record_from_values({"phone": "+1 415 555 0123"})

    with pytest.raises(MappingError, match=r"contains a value that is not a pseudonym in an hmac field \(phone\)"):
        codec.verify(mapped)


def test_verify_rejects_dropped_field(tmp_path: Path, spendlake_env: Path) -> None:
    codec = codec_for(CUSTOMER_RULES, tmp_path, spendlake_env)
    mapped = codec.record_from_values({"name": "Jane Roe"})

    with pytest.raises(MappingError, match=r"still contains a field the policy drops \(name\)") as raised:
        codec.verify(mapped)
    assert "Jane" not in str(raised.value)


def test_verify_rejects_raw_token_field(tmp_path: Path, spendlake_env: Path) -> None:
    codec = codec_for(CUSTOMER_RULES, tmp_path, spendlake_env)
    mapped = codec.record_from_values({})
    mapped.__setattr__(codec.attribute_of["email"], "jane.roe@example.com")

    with pytest.raises(MappingError, match=r"not a field token in an encrypt field \(email\)"):
        codec.verify(mapped)


def test_verify_accepts_mapped_record(tmp_path: Path, spendlake_env: Path) -> None:
    codec = codec_for(CUSTOMER_RULES, tmp_path, spendlake_env)
    mapped = codec.record_from_values(CUSTOMER)

    assert codec.map(mapped) is True
    codec.verify(mapped)


# The erasure list.


def test_erased_subject_records_dropped(tmp_path: Path, spendlake_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    pseudonym = pseudonymizer(spendlake_env).pseudonym
    add_erased(spendlake_env, TENANT, [pseudonym("phone", "+14155550123")], "request-1")
    other = {**CUSTOMER, "id": "cus_Other", "email": "max@example.org", "phone": "+1 415 555 0199"}

    with caplog.at_level(logging.INFO):
        run = run_mapper(
            [declared_schema("stripe", "customers"), record("customers", CUSTOMER), record("customers", other)],
            stripe_config(tmp_path),
        )

    assert [mapped["id"] for mapped in run.records("customers")] == [pseudonym("identifier", "cus_Other")]
    assert "Stream customers: dropped 1 record(s) of erased data subjects" in caplog.text


def test_erased_subject_found_by_blind_index(tmp_path: Path, spendlake_env: Path) -> None:
    add_erased(spendlake_env, TENANT, [pseudonymizer(spendlake_env).pseudonym("email", "jane.roe@example.com")], "request-2")
    other = {**CUSTOMER, "id": "cus_Other", "email": "max@example.org", "phone": None}

    run = run_mapper(
        [declared_schema("stripe", "customers"), record("customers", CUSTOMER), record("customers", other)],
        stripe_config(tmp_path),
    )

    emails = [cipher(spendlake_env).decrypt("stripe", "customers", "email", mapped["email"]) for mapped in run.records("customers")]
    assert emails == ["max@example.org"]


# Fields without an x-pii class.

UNCLASSIFIED_SCHEMA = {
    "type": "SCHEMA",
    "stream": "leads",
    "key_properties": ["lead_key"],
    "schema": {"properties": {
        "lead_key": {"type": "string", "x-pii": "none"},
        "contact_email": {"type": ["string", "null"]},
        "summary": {"type": ["string", "null"]},
        "notes": {"type": ["string", "null"]},
        "visits": {"type": ["integer", "null"]},
        "payload": {"type": ["object", "null"]},
    }},
}
LEAD = {
    "lead_key": "L-1",
    "contact_email": "lead@example.com",
    "summary": "Asked for a demo, reach her at lead@example.com",
    "notes": "Met at the fair",
    "visits": 3,
    "payload": {"email": "lead@example.com"},
}


def test_detect_mode_classifies_and_redacts(tmp_path: Path, spendlake_env: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "unclassified: detect\n"))}

    run = run_mapper([UNCLASSIFIED_SCHEMA, record("leads", LEAD)], config)

    [mapped] = run.records("leads")
    assert mapped == {
        "lead_key": "L-1",
        "contact_email": pseudonymizer(spendlake_env).pseudonym("email", "lead@example.com"),
        "summary": "Asked for a demo, reach her at [email]",
        "visits": 3,
    }
    properties = run.schema("leads")["properties"]
    assert properties["contact_email"]["x-pii"] == "email"
    assert properties["contact_email"]["x-pii-detected"] is True
    assert properties["summary"]["x-pii-applied"] == "redact"
    assert "notes" not in properties  # classed free_text by its name, which the default policy drops


def test_strict_mode_drops_unclassified(tmp_path: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "unclassified: strict\n"))}

    run = run_mapper([UNCLASSIFIED_SCHEMA, record("leads", LEAD)], config)

    assert run.records("leads") == [{"lead_key": "L-1"}]


def test_fail_mode_stops_at_schema(tmp_path: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "unclassified: fail\n"))}

    run = run_mapper([UNCLASSIFIED_SCHEMA, record("leads", LEAD)], config)

    assert "field 'contact_email' has no x-pii class and the policy rejects unclassified fields" in error_text(run.error)
    assert run.messages == []


def test_legacy_drop_setting_means_strict(tmp_path: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "unclassified: detect\n")), "unclassified": "drop"}

    run = run_mapper([UNCLASSIFIED_SCHEMA, record("leads", LEAD)], config)

    assert run.records("leads") == [{"lead_key": "L-1"}]


# Where the policy comes from.


def test_default_policy_file_in_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "policies").mkdir()
    write_policy(tmp_path / "policies", "classes: {email: drop}\n")
    monkeypatch.chdir(tmp_path)

    run = run_mapper([declared_schema("stripe", "customers"), record("customers", CUSTOMER)], {"source": "stripe"})

    [mapped] = run.records("customers")
    assert "email" not in mapped
    assert len(mapped["phone"]) == 64


def test_missing_policy_file_warns_with_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)

    with caplog.at_level(logging.INFO):
        run = run_mapper([declared_schema("stripe", "customers")], {"source": "stripe"})

    assert run.error is None
    assert f"No policy file for tenant 'acme' at {tmp_path / 'policies' / 'acme.yaml'}; using the built-in defaults" in caplog.text


def test_configured_policy_file_must_exist(tmp_path: Path) -> None:
    run = run_mapper([], {"source": "stripe", "policy_file": str(tmp_path / "nowhere.yaml")})

    assert "nowhere.yaml: file not found; create it or set policy_file" in error_text(run.error)


def test_effective_policy_logged_without_processing_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = CUSTOMER_RULES + "processing:\n  controller: {name: Jane Roe Consulting, contact: jane@roe.example}\n"

    with caplog.at_level(logging.INFO):
        run_mapper([], stripe_config(tmp_path, rules))

    line = next(message for message in caplog.messages if message.startswith("Effective PII policy: "))
    assert '"stripe.customers": {"classes": {}, "fields": {"address_postal_code": "generalize"' in line
    assert '"processing": ["controller"]' in line
    assert "Jane" not in caplog.text


def test_encrypted_number_keeps_every_digit(tmp_path: Path, spendlake_env: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "classes: {identifier: encrypt}\n"))}
    schema = {"type": "SCHEMA", "stream": "leads", "key_properties": ["id"], "schema": {"properties": {
        "id": {"type": "string", "x-pii": "none"}, "account": {"type": ["number", "null"], "x-pii": "identifier"}}}}
    line = '{"type": "RECORD", "stream": "leads", "record": {"id": "1", "account": 12345678901234567890.125}}\n'

    run = run_mapper([schema, line], config)

    token = run.records("leads")[0]["account"]
    keys = load_tenant_keys(spendlake_env, TENANT)
    decrypted = FieldCipher(keys.field_key, TENANT, Pseudonymizer(keys.hmac_key)).decrypt("acme_crm", "leads", "account", token)
    assert str(decrypted) == "12345678901234567890.125"


def test_stream_maps_setting_rejected() -> None:
    run = run_mapper([], {"stream_maps": {"customers": {"email": "md5(email)"}}, "flattening_enabled": True})

    problems = error_text(run.error).splitlines()
    assert problems == [
        "Setting stream_maps cannot be used with mapper-pii, because it would reshape records outside the policy; remove it.",
        "Setting flattening_enabled cannot be used with mapper-pii, because it would reshape records outside the policy; remove it.",
    ]


# Value types that hmac and the blind index cannot match to an erasure request.

LEADS = {"type": "SCHEMA", "stream": "leads", "key_properties": ["id"], "schema": {"properties": {
    "id": {"type": "string", "x-pii": "none"}, "email": {"type": ["string", "null"], "x-pii": "email"}}}}


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('{"type": "RECORD", "stream": "leads", "record": {"id": "1", "email": {"x": "jane@example.com"}}}\n', "a JSON object"),
        ('{"type": "RECORD", "stream": "leads", "record": {"id": "1", "email": ["jane@example.com"]}}\n', "a JSON array"),
        ('{"type": "RECORD", "stream": "leads", "record": {"id": "1", "email": true}}\n', "true/false"),
        ('{"type": "RECORD", "stream": "leads", "record": {"id": "1", "email": 1.5}}\n', "a number with a fraction or exponent"),
    ],
)
def test_hmac_rejects_other_value_types(line: str, kind: str) -> None:
    run = run_mapper([LEADS, line], {"source": "acme_crm"})

    text = error_text(run.error)
    assert f"Stream 'leads': the value of hmac field 'email' is {kind}, but hmac takes only text or whole numbers" in text
    assert "jane@example.com" not in text
    assert "1.5" not in text
    assert run.records() == []
    assert "jane@example.com" not in run.text


def test_hmac_accepts_text_and_integers() -> None:
    lines = [record("leads", {"id": "1", "email": "jane@example.com"}), record("leads", {"id": "2", "email": 4155550123}), record("leads", {"id": "3", "email": None})]

    run = run_mapper([LEADS, *lines], {"source": "acme_crm"})

    assert run.error is None
    emails = [values["email"] for values in run.records("leads")]
    assert [len(email) for email in emails[:2]] == [64, 64]
    assert emails[2] is None


def test_encrypt_blind_index_rejects_object(tmp_path: Path, spendlake_env: Path) -> None:
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, "classes: {email: encrypt}\n"))}
    line = '{"type": "RECORD", "stream": "leads", "record": {"id": "1", "email": {"x": "jane@example.com"}}}\n'

    run = run_mapper([LEADS, line], config)

    text = error_text(run.error)
    assert "Stream 'leads': the value of encrypt field 'email' (class email) is not text or a number" in text
    assert "jane@example.com" not in text
    assert run.records() == []


# Rules whose source is neither installed nor this run's source.


def test_rule_for_misspelled_source_stops_at_start(tmp_path: Path) -> None:
    rules = "streams:\n  strpie.customers:\n    fields: {email: encrypt}\nretention:\n  streams:\n    strpie.charges: 2 years\n"

    run = run_mapper([declared_schema("stripe", "customers"), record("customers", CUSTOMER)], stripe_config(tmp_path, rules))

    problems = error_text(run.error).splitlines()
    assert len(problems) == 2
    assert problems[0].startswith(f"{tmp_path / 'acme.yaml'}: streams.strpie.customers: unknown source 'strpie' (did you mean 'stripe'?)")
    assert problems[1].startswith(f"{tmp_path / 'acme.yaml'}: retention.streams.strpie.charges: unknown source 'strpie'")
    assert f"Known sources: {', '.join(installed_source_names())}." in problems[0]
    assert "stripe, " in problems[0]
    assert run.messages == []


def test_rule_for_run_source_accepted(tmp_path: Path) -> None:
    rules = "streams:\n  acme_crm.leads:\n    fields: {email: encrypt}\n"
    config = {"source": "acme_crm", "policy_file": str(write_policy(tmp_path, rules))}

    run = run_mapper([LEADS], config)

    assert run.error is None
    assert run.schema("leads")["properties"]["email"]["x-pii-applied"] == "encrypt"
