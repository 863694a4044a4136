"""Tests of the deterministic fake Stripe account."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from sandbox.stripe_data import (
    DAY_SECONDS,
    HISTORY_DAYS,
    UTM_CAMPAIGNS,
    StripeWorld,
    stripe_id,
)

SEED = 7
ANCHOR = 1_780_000_000
TICKS = (ANCHOR + 3_600, ANCHOR + 86_400, ANCHOR + 86_401)

FIXTURES_DIR = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

CHARGE_KEYS = {
    "id", "object", "amount", "amount_captured", "amount_refunded", "balance_transaction",
    "billing_details", "calculated_statement_descriptor", "captured", "created", "currency",
    "customer", "description", "disputed", "failure_code", "failure_message", "livemode",
    "metadata", "outcome", "paid", "payment_intent", "payment_method", "payment_method_details",
    "receipt_email", "receipt_number", "receipt_url", "refunded", "status", "statement_descriptor",
}
CUSTOMER_KEYS = {
    "id", "object", "address", "balance", "created", "currency", "delinquent", "description",
    "email", "invoice_prefix", "livemode", "metadata", "name", "phone", "preferred_locales",
    "shipping", "tax_exempt", "tax",
}
REFUND_KEYS = {
    "id", "object", "amount", "balance_transaction", "charge", "created", "currency", "metadata",
    "payment_intent", "reason", "receipt_number", "status",
}
ADDRESS_KEYS = {"city", "country", "line1", "line2", "postal_code", "state"}


@pytest.fixture(scope="module")
def world() -> StripeWorld:
    return StripeWorld(SEED, ANCHOR)


@pytest.fixture(scope="module")
def ticked_world() -> StripeWorld:
    return StripeWorld(SEED, ANCHOR, TICKS)


def all_objects(world: StripeWorld) -> list[dict[str, Any]]:
    return world.charges + world.customers + world.refunds


def changed_after(world: StripeWorld, moment: int) -> set[str]:
    """Return the ids of objects that events after `moment` changed or deleted (not created)."""
    return {
        event["data"]["object"]["id"]
        for event in world.listing("events").objects
        if event["created"] > moment and not event["type"].endswith((".created", ".succeeded", ".failed"))
    }


def world_digest(world: StripeWorld) -> str:
    payload = json.dumps([world.charges, world.customers, world.refunds], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def string_leaves(value: Any) -> list[str]:
    """Return every string value nested in `value`."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [leaf for item in value for leaf in string_leaves(item)]
    return []


def load_fixture(relative: str) -> Any:
    path = FIXTURES_DIR / relative
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Fixture {path} is missing, and CI=true requires it.")
        pytest.skip(f"Fixture {path} is not available on this machine.")
    return json.loads(path.read_text(encoding="utf-8"))


# Determinism and ids


def test_world_same_inputs_equal(world: StripeWorld) -> None:
    again = StripeWorld(SEED, ANCHOR)

    assert again.charges == world.charges
    assert again.customers == world.customers
    assert again.refunds == world.refunds


def test_world_same_in_other_process(ticked_world: StripeWorld) -> None:
    script = (
        "import hashlib, json, sys\n"
        "from sandbox.stripe_data import StripeWorld\n"
        f"world = StripeWorld({SEED}, {ANCHOR}, {TICKS!r})\n"
        "payload = json.dumps([world.charges, world.customers, world.refunds], sort_keys=True)\n"
        "print(hashlib.sha256(payload.encode()).hexdigest())\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert result.stdout.strip() == world_digest(ticked_world)


def test_world_other_seed_differs(world: StripeWorld) -> None:
    other = StripeWorld(SEED + 1, ANCHOR)

    assert {c["id"] for c in other.charges}.isdisjoint({c["id"] for c in world.charges})


def test_stripe_id_derivation_pinned(world: StripeWorld) -> None:
    # A change here changes every id of every existing sandbox world.
    assert stripe_id(SEED, "charge", 0, 24) == "atMWtML68O6TUCNso8R17Yy5"
    assert "ch_atMWtML68O6TUCNso8R17Yy5" in {charge["id"] for charge in world.charges}


def test_ids_stripe_shaped_and_unique(ticked_world: StripeWorld) -> None:
    patterns = {
        "charge": re.compile(r"^ch_[0-9A-Za-z]{24}$"),
        "customer": re.compile(r"^cus_[0-9A-Za-z]{14}$"),
        "refund": re.compile(r"^re_[0-9A-Za-z]{24}$"),
    }
    objects = all_objects(ticked_world)

    for item in objects:
        assert patterns[item["object"]].match(item["id"]), item["id"]
    assert len({item["id"] for item in objects}) == len(objects)


# History and ticks


def test_history_sizes(world: StripeWorld) -> None:
    assert 2_900 <= len(world.charges) <= 3_100
    assert 570 <= len(world.customers) <= 630
    assert len(world.refunds) == round(len(world.charges) * 0.05)


def test_history_inside_90_days(world: StripeWorld) -> None:
    start = ANCHOR - HISTORY_DAYS * DAY_SECONDS

    for item in all_objects(world):
        assert start < item["created"] <= ANCHOR
    assert world.now == ANCHOR


def test_ticks_keep_unchanged_objects(world: StripeWorld, ticked_world: StripeWorld) -> None:
    by_id = {item["id"]: item for item in all_objects(ticked_world) + ticked_world.deleted("customers")}
    changed = changed_after(ticked_world, ANCHOR)

    assert changed
    for item in all_objects(world):
        if item["id"] in changed:
            assert by_id[item["id"]]["created"] == item["created"]
        else:
            assert by_id[item["id"]] == item


def test_ticks_add_objects_in_window(world: StripeWorld, ticked_world: StripeWorld) -> None:
    old_ids = {item["id"] for item in all_objects(world)}
    windows = list(zip((ANCHOR, *TICKS[:-1]), TICKS))

    new_objects = [item for item in all_objects(ticked_world) if item["id"] not in old_ids]
    for item in new_objects:
        assert ANCHOR < item["created"] <= TICKS[-1]

    for start, end in windows:
        def in_window(item: dict[str, Any]) -> bool:
            return start < item["created"] <= end

        new_charges = sum(map(in_window, ticked_world.charges)) - sum(map(in_window, world.charges))
        assert 20 <= new_charges <= 40
        assert 2 <= sum(map(in_window, ticked_world.customers)) <= 6
        assert sum(map(in_window, ticked_world.refunds)) <= 3


def test_ticks_refund_in_wide_window(ticked_world: StripeWorld) -> None:
    # The one-second window has no charge older than its end, so only wider windows refund.
    for start, end in ((ANCHOR, TICKS[0]), (TICKS[0], TICKS[1])):
        refunds = [r for r in ticked_world.refunds if start < r["created"] <= end]
        assert 1 <= len(refunds) <= 3


def test_nothing_after_now(ticked_world: StripeWorld) -> None:
    assert ticked_world.now == TICKS[-1]
    assert max(item["created"] for item in all_objects(ticked_world)) == ticked_world.now


def test_window_end_has_tied_charges(ticked_world: StripeWorld) -> None:
    for end in (ANCHOR, *TICKS):
        assert ticked_world.count("charges", gte=end, lte=end) >= 2


def test_later_ticks_keep_first_batch() -> None:
    one_tick = StripeWorld(SEED, ANCHOR, TICKS[:1])
    three_ticks = StripeWorld(SEED, ANCHOR, TICKS)

    assert one_tick.charges == [c for c in three_ticks.charges if c["created"] <= TICKS[0]]


@pytest.mark.parametrize(
    ("ticks", "message"),
    [
        ((ANCHOR,), r"ticks\[0\] = 1780000000: each tick must be later than the anchor"),
        ((ANCHOR + 10, ANCHOR + 10), r"ticks\[1\] = 1780000010.*previous value 1780000010"),
        ((ANCHOR + 10, ANCHOR + 5), r"ticks\[1\] = 1780000005"),
    ],
)
def test_ticks_not_increasing_rejected(ticks: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StripeWorld(SEED, ANCHOR, ticks)


@pytest.mark.parametrize(
    ("seed", "anchor", "ticks", "message"),
    [
        (True, ANCHOR, (), "Invalid seed True"),
        (SEED, float(ANCHOR), (), "Invalid anchor 1780000000.0"),
        (SEED, ANCHOR, (ANCHOR + 1.5,), r"Invalid ticks\[0\] 1780000001.5"),
    ],
)
def test_non_integer_inputs_rejected(seed: Any, anchor: Any, ticks: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        StripeWorld(seed, anchor, ticks)


# List order, ties and counts


def test_lists_in_stripe_order(ticked_world: StripeWorld) -> None:
    for objects in (ticked_world.charges, ticked_world.customers, ticked_world.refunds):
        keys = [(item["created"], item["id"]) for item in objects]
        assert keys == sorted(keys, reverse=True)


def test_ties_exist_and_break_by_id(world: StripeWorld) -> None:
    tied_seconds = [s for s, n in Counter(c["created"] for c in world.charges).items() if n > 1]

    assert len(tied_seconds) >= 20
    tied = [c["id"] for c in world.charges if c["created"] == tied_seconds[0]]
    assert tied == sorted(tied, reverse=True)


def test_count_matches_brute_force(ticked_world: StripeWorld) -> None:
    tie = Counter(c["created"] for c in ticked_world.charges).most_common(1)[0][0]
    ranges = [
        (None, None),
        (tie, tie),
        (tie, None),
        (None, tie),
        (tie - DAY_SECONDS, tie),
        (ANCHOR + 1, None),
        (TICKS[-1] + 1, None),
        (tie, tie - 1),
    ]

    for kind in ("charges", "customers", "refunds"):
        objects = getattr(ticked_world, kind)
        for gte, lte in ranges:
            expected = sum(
                1
                for item in objects
                if (gte is None or item["created"] >= gte)
                and (lte is None or item["created"] <= lte)
            )
            assert ticked_world.count(kind, gte=gte, lte=lte) == expected, (kind, gte, lte)


def test_count_unknown_kind_rejected(world: StripeWorld) -> None:
    with pytest.raises(ValueError, match="Unknown object kind 'disputes': use one of charges"):
        world.count("disputes")


# Object shapes


def test_object_keys_as_declared(world: StripeWorld) -> None:
    for charge in world.charges:
        assert set(charge) == CHARGE_KEYS
        assert set(charge["billing_details"]["address"]) == ADDRESS_KEYS
    for customer in world.customers:
        assert set(customer) == CUSTOMER_KEYS
        assert set(customer["address"]) == ADDRESS_KEYS
    for refund in world.refunds:
        assert set(refund) == REFUND_KEYS


def test_keys_exist_in_stripe_fixture() -> None:
    resources = load_fixture("stripe/openapi_fixtures3_marketing_subset.json")["resources"]

    assert CHARGE_KEYS <= set(resources["charge"])
    assert CUSTOMER_KEYS - {"tax"} <= set(resources["customer"])
    assert REFUND_KEYS <= set(resources["refund"])
    card_keys = {"brand", "country", "exp_month", "exp_year", "fingerprint", "funding", "last4"}
    assert card_keys <= set(resources["charge"]["payment_method_details"]["card"])


def test_currencies_and_jpy_whole_yen(world: StripeWorld) -> None:
    by_currency = Counter(charge["currency"] for charge in world.charges)
    yen_amounts = [c["amount"] for c in world.charges if c["currency"] == "jpy"]
    cent_amounts = [c["amount"] for c in world.charges if c["currency"] != "jpy"]

    assert set(by_currency) == {"usd", "eur", "gbp", "jpy"}
    assert min(by_currency.values()) >= 100
    assert all(500 <= amount <= 30_000 and amount % 100 == 0 for amount in yen_amounts)
    assert all(amount % 100 == 99 for amount in cent_amounts)


def test_failed_charges_shaped(world: StripeWorld) -> None:
    failed = [c for c in world.charges if c["status"] == "failed"]
    succeeded = [c for c in world.charges if c["status"] == "succeeded"]

    assert len(failed) + len(succeeded) == len(world.charges)
    assert 0.03 * len(world.charges) < len(failed) < 0.12 * len(world.charges)
    for charge in failed:
        assert charge["failure_code"] is not None
        assert charge["failure_message"] is not None
        assert charge["paid"] is False
        assert charge["amount_captured"] == 0
        assert charge["balance_transaction"] is None
        assert charge["outcome"]["type"] == "issuer_declined"
    for charge in succeeded:
        assert charge["failure_code"] is None
        assert charge["amount_captured"] == charge["amount"]
        assert charge["outcome"]["seller_message"] == "Payment complete."


def test_charge_metadata_campaigns(world: StripeWorld) -> None:
    order_ids = [charge["metadata"]["order_id"] for charge in world.charges]
    attributed = [c["metadata"] for c in world.charges if "utm_source" in c["metadata"]]

    assert len(set(order_ids)) == len(order_ids)
    assert 0.75 * len(world.charges) < len(attributed) < 0.95 * len(world.charges)
    campaigns = {(m["utm_source"], m["utm_medium"], m["utm_campaign"]) for m in attributed}
    assert campaigns == set(UTM_CAMPAIGNS)


def test_customer_created_before_charges(ticked_world: StripeWorld) -> None:
    # Charges keep the id of a customer deleted later, as in Stripe.
    customers = {customer["id"]: customer for customer in ticked_world.customers + ticked_world.deleted("customers")}
    guests = [charge for charge in ticked_world.charges if charge["customer"] is None]

    assert 0.1 * len(ticked_world.charges) < len(guests) < 0.3 * len(ticked_world.charges)
    for charge in ticked_world.charges:
        if charge["customer"] is None:
            continue
        customer = customers[charge["customer"]]
        assert customer["created"] <= charge["created"]
        assert charge["billing_details"]["name"] == customer["name"]
        assert charge["currency"] == customer["currency"]


def test_refunds_follow_their_charge(ticked_world: StripeWorld) -> None:
    charges = {charge["id"]: charge for charge in ticked_world.charges}
    refunded_ids = Counter(refund["charge"] for refund in ticked_world.refunds)

    for refund in ticked_world.refunds:
        charge = charges[refund["charge"]]
        assert charge["created"] < refund["created"] <= ticked_world.now
        assert charge["status"] == "succeeded"
        assert refund["currency"] == charge["currency"]
        assert refund["payment_intent"] == charge["payment_intent"]
        assert charge["amount_refunded"] == refund["amount"]
        assert charge["refunded"] is (refund["amount"] == charge["amount"])
    assert max(refunded_ids.values()) == 1
    for charge in ticked_world.charges:
        if charge["id"] not in refunded_ids:
            assert charge["amount_refunded"] == 0
            assert charge["refunded"] is False


# Personal data


def test_personal_emails_on_example_domains(ticked_world: StripeWorld) -> None:
    emails = {value for value in ticked_world.personal_values() if "@" in value}

    assert len(emails) > 1_000
    for email in emails:
        # A changed address keeps the person's part and adds +<time of the change>.
        assert re.fullmatch(r"[a-z]+\.[a-z]+\.\d{5}(\+\d{10})?@example\.(com|org|net)", email), email


def test_personal_values_cover_people(ticked_world: StripeWorld) -> None:
    values = ticked_world.personal_values()

    for customer in ticked_world.customers:
        assert customer["email"] in values
        assert customer["name"] in values
        assert customer["address"]["line1"] in values
        if customer["phone"] is not None:
            assert customer["phone"] in values
        if customer["shipping"] is not None:
            assert customer["shipping"]["address"]["line1"] in values
    for charge in ticked_world.charges:
        details = charge["billing_details"]
        assert {details["email"], details["name"], details["address"]["line1"]} <= values


def test_personal_values_all_present(ticked_world: StripeWorld) -> None:
    served = [list(ticked_world.listing(kind).objects) for kind in ("invoices", "payment_intents", "events")]
    field_values = set(string_leaves([all_objects(ticked_world), ticked_world.deleted("customers"), *served]))

    assert ticked_world.personal_values() <= field_values


def test_personal_values_distinctive(ticked_world: StripeWorld) -> None:
    emails = [customer["email"] for customer in ticked_world.customers]
    names = [customer["name"] for customer in ticked_world.customers]
    lines = [customer["address"]["line1"] for customer in ticked_world.customers]

    assert len(set(emails)) == len(emails)
    assert len(set(names)) == len(names)
    assert len(set(lines)) == len(lines)
    for name in names:
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][A-Za-z]+ \d{5}", name), name
    for line in lines:
        assert re.fullmatch(r"1\d{4} [A-Z][a-z]+ Street", line), line


def test_phones_in_fictional_ranges(ticked_world: StripeWorld) -> None:
    phones = [value for value in ticked_world.personal_values() if value.startswith("+")]
    customer_phones = [c["phone"] for c in ticked_world.customers if c["phone"] is not None]

    assert len(set(customer_phones)) == len(customer_phones)
    assert any(phone.startswith("+44") for phone in phones)
    for phone in phones:
        assert re.fullmatch(r"\+1[2-9]\d{2}55501\d{2}|\+447700900\d{3}", phone), phone
        assert phonenumbers.is_possible_number(phonenumbers.parse(phone)), phone


def test_descriptions_carry_personal_data(world: StripeWorld) -> None:
    def mentions_payer(charge: dict[str, Any]) -> bool:
        details = charge["billing_details"]
        description = charge["description"] or ""
        return details["name"] in description or details["email"] in description

    with_person = [charge for charge in world.charges if mentions_payer(charge)]

    assert 0.1 * len(world.charges) < len(with_person) < 0.35 * len(world.charges)
