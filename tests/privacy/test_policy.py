"""The per-tenant policy file: validation of every section, rule order, retention and the effective view."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from privacy.policy import (
    DEFAULT_ACTIONS,
    Duration,
    PolicyError,
    Retention,
    action_problem,
    build_policy,
    load_policy,
)

VALID = """
version: 1
tenant: demo
unclassified: detect
phone_region: gb
classes:
  email: encrypt
  ip: truncate_ip
  date_of_birth: generalize
  free_text: redact
streams:
  stripe.customers:
    classes: {phone: drop}
    fields: {email: hmac, address_postal_code: generalize, ip_address: keep}
  acme_crm.leads:
    fields: {notes: redact}
retention:
  default: 25 months
  streams:
    stripe.charges: 10 years
    magento.orders: {keep: 6 months, date_field: created_at}
processing:
  controller: {name: Demo Shop Ltd, contact: privacy@demo-shop.example}
  processor: {name: Agency}
  purposes: [Measure ad spend against revenue]
  recipients: [Client marketing team]
  transfers: None outside the EEA
  security_measures: [Staff training]
"""


def write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path: Path, text: str, tenant: str = "demo") -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path, tenant)
    return [problem.removeprefix(f"{path}: ") for problem in raised.value.problems]


def test_valid_policy_loads(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, VALID), "demo")

    assert policy.tenant == "demo"
    assert policy.unclassified == "detect"
    assert policy.phone_region == "GB"
    assert policy.classes["email"] == "encrypt"
    assert policy.classes["name"] == DEFAULT_ACTIONS["name"]
    assert policy.processing["controller"]["name"] == "Demo Shop Ltd"


def test_action_order_field_stream_tenant_builtin(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, VALID), "demo")

    assert policy.action_for("stripe", "customers", "email", "email") == "hmac"
    assert policy.action_for("stripe", "customers", "phone", "phone") == "drop"
    assert policy.action_for("stripe", "charges", "billing_email", "email") == "encrypt"
    assert policy.action_for("stripe", "charges", "customer", "identifier") == "hmac"
    assert policy.action_for("magento", "customers", "email", "email") == "encrypt"


def test_stream_rules_listed_by_source(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, VALID), "demo")

    assert [rules.key for rules in policy.stream_rules("stripe")] == ["stripe.customers"]
    assert [rules.key for rules in policy.stream_rules("acme_crm")] == ["acme_crm.leads"]
    assert policy.stream_rules("magento") == []


def test_retention_per_stream_and_default(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, VALID), "demo")

    assert policy.retention_for("stripe", "charges") == Retention(Duration(10, "year"))
    assert policy.retention_for("magento", "orders") == Retention(Duration(6, "month"), "created_at")
    assert policy.retention_for("facebook", "ads") == Retention(Duration(25, "month"))


def test_retention_absent_keeps_rows(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "version: 1\ntenant: demo\n"), "demo")

    assert policy.retention_for("stripe", "charges") is None


@pytest.mark.parametrize(
    ("keep", "now", "cutoff"),
    [
        pytest.param(Duration(30, "day"), datetime(2026, 3, 31, 12, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC), id="days"),
        pytest.param(Duration(2, "week"), datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), id="weeks"),
        pytest.param(Duration(1, "month"), datetime(2026, 3, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC), id="month-end-clamped"),
        pytest.param(Duration(25, "month"), datetime(2026, 1, 15, tzinfo=UTC), datetime(2023, 12, 15, tzinfo=UTC), id="months-over-years"),
        pytest.param(Duration(1, "year"), datetime(2028, 2, 29, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC), id="leap-day"),
    ],
)
def test_retention_cutoff(keep: Duration, now: datetime, cutoff: datetime) -> None:
    assert Retention(keep).cutoff(now) == cutoff


def test_retention_cutoff_keeps_time_zone() -> None:
    zone = timezone(timedelta(hours=2))

    assert Retention(Duration(1, "month")).cutoff(datetime(2026, 5, 1, 8, tzinfo=zone)) == datetime(2026, 4, 1, 8, tzinfo=zone)


def test_retention_cutoff_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="time-zone-aware"):
        Retention(Duration(1, "day")).cutoff(datetime(2026, 1, 1))


def test_effective_policy_is_json(tmp_path: Path) -> None:
    effective = load_policy(write(tmp_path, VALID), "demo").effective()

    assert json.loads(json.dumps(effective)) == effective
    assert effective["streams"]["stripe.customers"] == {
        "classes": {"phone": "drop"},
        "fields": {"email": "hmac", "address_postal_code": "generalize", "ip_address": "keep"},
    }
    assert effective["retention"]["streams"]["magento.orders"] == {"keep": "6 months", "date_field": "created_at"}
    assert effective["retention"]["default"] == {"keep": "25 months", "date_field": None}
    assert effective["classes"]["secret"] == "drop"


def test_no_file_gives_builtin_defaults() -> None:
    policy = load_policy(None, "demo")

    assert policy.origin == "built-in defaults"
    assert policy.classes == DEFAULT_ACTIONS
    assert policy.unclassified == "strict"
    assert policy.streams == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("version: 1\ntenant: demo\nbogus: 1\n", "bogus: unknown key", id="unknown-top-level-key"),
        pytest.param("tenant: demo\n", "version: missing", id="missing-version"),
        pytest.param("version: 2\ntenant: demo\n", "version: unsupported version 2", id="newer-version"),
        pytest.param("version: 1\n", "tenant: missing", id="missing-tenant"),
        pytest.param("version: 1\ntenant: acme\n", "tenant: the file is for tenant 'acme' but the run is for tenant 'demo'", id="tenant-mismatch"),
        pytest.param("version: 1\ntenant: demo\nunclassified: guess\n", "unclassified: unknown mode 'guess'; use one of: detect, strict, fail", id="bad-mode"),
        pytest.param("version: 1\ntenant: demo\nphone_region: XX\n", "phone_region: 'XX' is not a region phonenumbers knows", id="bad-region"),
        pytest.param("version: 1\ntenant: demo\nphone_region: NO\n", "phone_region: YAML read the region as false; write it in quotes", id="yaml-boolean-region"),
        pytest.param("version: 1\ntenant: demo\nclasses: {emial: hmac}\n", "classes.emial: unknown PII class (did you mean 'email'?)", id="unknown-class"),
        pytest.param("version: 1\ntenant: demo\nclasses: {email: hash}\n", "classes.email: unknown action 'hash'; use one of: keep, drop, hmac, encrypt", id="unknown-action"),
        pytest.param("version: 1\ntenant: demo\nclasses: {email: off}\n", "classes.email: YAML read the action as false", id="yaml-boolean-action"),
        pytest.param("version: 1\ntenant: demo\nclasses: {secret: keep}\n", "classes.secret: 'secret' values may only be dropped, never 'keep'", id="secret-kept"),
        pytest.param("version: 1\ntenant: demo\nclasses: {secret: encrypt}\n", "classes.secret: 'secret' values may only be dropped, never 'encrypt'", id="secret-encrypted"),
        pytest.param("version: 1\ntenant: demo\nclasses: {email: truncate_ip}\n", "classes.email: action 'truncate_ip' does not apply to class 'email'", id="truncate-non-ip"),
        pytest.param("version: 1\ntenant: demo\nclasses: {address: generalize}\n", "classes.address: 'generalize' applies to an address only as a field rule on a postcode field", id="address-class-generalize"),
        pytest.param("version: 1\ntenant: demo\nclasses: {name: generalize}\n", "classes.name: action 'generalize' does not apply to class 'name'", id="generalize-name"),
        pytest.param("version: 1\ntenant: demo\nclasses: {email: redact}\n", "classes.email: action 'redact' does not apply to class 'email'", id="redact-email"),
        pytest.param("version: 1\ntenant: demo\nclasses: [email]\n", "classes: expected a mapping, got a list", id="classes-not-mapping"),
        pytest.param("version: 1\ntenant: demo\nstreams: {customers: {}}\n", "streams.customers: expected '<source>.<stream>'", id="stream-key-without-source"),
        pytest.param("version: 1\ntenant: demo\nstreams: {acme_crm.leads: {field: {a: drop}}}\n", "streams.acme_crm.leads.field: unknown key (did you mean 'fields'?)", id="stream-unknown-key"),
        pytest.param("version: 1\ntenant: demo\nstreams: {acme_crm.leads: {fields: {a: hash}}}\n", "streams.acme_crm.leads.fields.a: unknown action 'hash'", id="field-unknown-action"),
        pytest.param("version: 1\ntenant: demo\nstreams: {acme_crm.leads: [a]}\n", "streams.acme_crm.leads: expected a mapping with 'classes' and/or 'fields', got a list", id="stream-not-mapping"),
        pytest.param("version: 1\ntenant: demo\nretention: {default: 3 fortnights}\n", "retention.default: invalid duration '3 fortnights'", id="bad-unit"),
        pytest.param("version: 1\ntenant: demo\nretention: {default: 36}\n", "retention.default: invalid duration 36", id="number-without-unit"),
        pytest.param("version: 1\ntenant: demo\nretention: {default: 0 days}\n", "retention.default: invalid duration '0 days'; keep rows for at least 1 day", id="zero-duration"),
        pytest.param("version: 1\ntenant: demo\nretention: {streams: {acme_crm.leads: {date_field: created}}}\n", "retention.streams.acme_crm.leads.keep: missing", id="retention-without-keep"),
        pytest.param("version: 1\ntenant: demo\nretention: {streams: {acme_crm.leads: {keep: 1 year, date: x}}}\n", "retention.streams.acme_crm.leads.date: unknown key", id="retention-unknown-key"),
        pytest.param("version: 1\ntenant: demo\nretention: {keep: 1 year}\n", "retention.keep: unknown key", id="retention-section-unknown-key"),
        pytest.param("version: 1\ntenant: demo\nprocessing: {controller: Demo Shop}\n", "processing.controller: expected a mapping such as {name: ..., contact: ...}, got a text", id="controller-text"),
        pytest.param("version: 1\ntenant: demo\nprocessing: {processor: {contact: x}}\n", "processing.processor: 'name' is missing", id="processor-without-name"),
        pytest.param("version: 1\ntenant: demo\nprocessing: {purposes: Reporting}\n", "processing.purposes: expected a list of texts, got a text", id="purposes-text"),
        pytest.param("version: 1\ntenant: demo\nprocessing: {transfers: 3}\n", "processing.transfers: expected a text or a list of texts, got a number", id="transfers-number"),
        pytest.param("version: 1\ntenant: demo\nprocessing: {purpose: [x]}\n", "processing.purpose: unknown key (did you mean 'purposes'?)", id="processing-unknown-key"),
    ],
)
def test_invalid_policy_names_place(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(tmp_path, text)

    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = "version: 1\ntenant: demo\nclasses: {email: hash, secret: keep}\nretention: {default: soon}\nbogus: 1\n"

    problems = problems_of(tmp_path, text)

    places = sorted(problem.split(":")[0] for problem in problems)
    assert places == ["bogus", "classes.email", "classes.secret", "retention.default"]


def test_error_message_names_file_and_count(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ntenant: demo\nclasses: {email: hash}\n")

    with pytest.raises(PolicyError) as raised:
        load_policy(path, "demo")

    assert str(raised.value).startswith(f"Invalid PII policy {path} (1 problem(s)):\n  - {path}: classes.email:")


def test_processing_text_never_quoted(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "version: 1\ntenant: demo\nprocessing: {controller: {name: Jane Roe, phone: 12345}}\n")

    assert problems == ["processing.controller: expected text values, but phone is not text"]
    assert "Jane" not in problems[0]


def test_duplicate_key_rejected(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "version: 1\ntenant: demo\nclasses:\n  email: hmac\n  email: keep\n")

    assert problems == ["line 5, column 3: the key 'email' appears twice in one mapping; keep one"]


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "version: 1\ntenant: demo\nclasses: {email: hmac\n")

    assert len(problems) == 1
    assert problems[0].startswith("line 4, column 1:")


def test_top_level_not_mapping(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "- email\n") == ["(top level): expected a mapping of policy sections, got a list"]


def test_missing_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(PolicyError, match=r"absent\.yaml: file not found; create it or set policy_file"):
        load_policy(path, "demo")


def test_invalid_tenant_rejected() -> None:
    with pytest.raises(ValueError, match="Invalid tenant id"):
        load_policy(None, "Demo Tenant")


# Rules checked against the declarations of the built-in taps.


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            "streams: {stripe.custmers: {fields: {email: hmac}}}",
            "streams.stripe.custmers: source 'stripe' has no stream 'custmers' (did you mean 'customers'?); its streams are: balance_transactions,",
            id="unknown-stream",
        ),
        pytest.param(
            "streams: {stripe.customers: {fields: {emial: hmac}}}",
            "streams.stripe.customers.fields.emial: the stream has no field 'emial' (did you mean 'email'?)",
            id="unknown-field",
        ),
        pytest.param(
            "streams: {stripe.customers: {fields: {address_line1: generalize}}}",
            "streams.stripe.customers.fields.address_line1: field 'address_line1' is classed 'address': 'generalize' "
            "applies to an address only on a postcode field, and 'address_line1' is not one",
            id="generalize-street",
        ),
        pytest.param(
            "streams: {stripe.charges: {fields: {billing_email: truncate_ip}}}",
            "streams.stripe.charges.fields.billing_email: field 'billing_email' is classed 'email': action 'truncate_ip' does not apply",
            id="action-against-declared-class",
        ),
        pytest.param(
            "streams: {stripe.invoices: {fields: {hosted_invoice_url: keep}}}",
            "streams.stripe.invoices.fields.hosted_invoice_url: field 'hosted_invoice_url' is classed 'secret': 'secret' values may only be dropped",
            id="declared-secret-kept",
        ),
        pytest.param(
            "retention: {streams: {stripe.charges: {keep: 1 year, date_field: craeted}}}",
            "retention.streams.stripe.charges.date_field: the stream has no field 'craeted' (did you mean 'created'?)",
            id="unknown-date-field",
        ),
        pytest.param(
            "retention: {streams: {magento.order: 1 year}}",
            "retention.streams.magento.order: source 'magento' has no stream 'order' (did you mean 'orders'?)",
            id="unknown-retention-stream",
        ),
    ],
)
def test_rules_checked_against_declaration(tmp_path: Path, rule: str, expected: str) -> None:
    problems = problems_of(tmp_path, f"version: 1\ntenant: demo\n{rule}\n")

    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_declared_postcode_may_generalize(tmp_path: Path) -> None:
    text = "version: 1\ntenant: demo\nstreams: {stripe.customers: {fields: {address_postal_code: generalize}}}\n"

    policy = load_policy(write(tmp_path, text), "demo")

    assert policy.action_for("stripe", "customers", "address_postal_code", "address") == "generalize"


def test_config_defined_streams_accepted(tmp_path: Path) -> None:
    text = "version: 1\ntenant: demo\nstreams: {google_analytics.custom_pages: {fields: {page_title: drop}}}\n"

    assert load_policy(write(tmp_path, text), "demo").stream_rules("google_analytics")


def test_declaration_check_can_be_skipped(tmp_path: Path) -> None:
    text = "version: 1\ntenant: demo\nstreams: {stripe.custmers: {fields: {email: hmac}}}\n"

    policy = load_policy(write(tmp_path, text), "demo", check_declarations=False)

    assert [rules.key for rules in policy.stream_rules("stripe")] == ["stripe.custmers"]


def test_repository_demo_policy_valid() -> None:
    path = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"

    policy = load_policy(path, "demo")

    assert policy.action_for("stripe", "customers", "email", "email") == "encrypt"


# Inline settings folded into a policy.


def test_overrides_replace_classes_and_mode() -> None:
    policy = load_policy(None, "demo").with_overrides({"address": "keep"}, "detect", "de")

    assert (policy.classes["address"], policy.unclassified, policy.phone_region) == ("keep", "detect", "DE")


def test_overrides_report_every_problem() -> None:
    with pytest.raises(PolicyError) as raised:
        load_policy(None, "demo").with_overrides({"secret": "keep", "mail": "hmac"}, "guess", "XX")

    assert raised.value.problems == [
        "config: policy.secret: 'secret' values may only be dropped, never 'keep'",
        (
            "config: policy.mail: unknown PII class (did you mean 'email'?); use one of: none, email, phone, name, "
            "address, ip, free_text, identifier, date_of_birth, secret"
        ),
        "config: unclassified: unknown mode 'guess'; use one of: detect, strict, fail",
        "config: default_phone_region: 'XX' is not a region phonenumbers knows; use an ISO 3166-1 alpha-2 code such as US, GB or DE",
    ]


def test_build_policy_keeps_old_call() -> None:
    assert build_policy({"identifier": "drop"}).classes["identifier"] == "drop"


@pytest.mark.parametrize(
    ("pii_class", "action", "field", "allowed"),
    [
        ("ip", "truncate_ip", None, True),
        ("date_of_birth", "generalize", None, True),
        ("address", "generalize", "billing_address_postal_code", True),
        ("address", "generalize", "zip", True),
        ("address", "generalize", "city", False),
        ("free_text", "redact", None, True),
        ("none", "hmac", None, True),
        ("secret", "drop", None, True),
        ("identifier", "encrypt", None, True),
        ("phone", "generalize", None, False),
    ],
)
def test_action_problem_table(pii_class: str, action: str, field: str | None, allowed: bool) -> None:
    assert (action_problem(pii_class, action, field) is None) is allowed


def test_plugin_source_rules_checked(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "version: 1\ntenant: demo\nstreams: {toy.leads: {fields: {fullname: drop}}}\n")

    assert problems == ["streams.toy.leads.fields.fullname: the stream has no field 'fullname' (did you mean 'full_name'?); "
                        "check the spelling or remove the rule"]


def test_invalid_plugin_declaration_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "broken_source_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "source.yaml").write_text("name: brokensrc\nstreams: 3\n")
    info = tmp_path / "site" / "broken_source_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-source-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[spendlake.sources]\nbrokensrc = broken_source_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    problems = problems_of(tmp_path, "version: 1\ntenant: demo\nstreams: {brokensrc.leads: {fields: {email: hmac}}}\n")

    assert len(problems) == 1
    assert problems[0].startswith("the rules of source 'brokensrc' cannot be checked, because its declaration is invalid (")
