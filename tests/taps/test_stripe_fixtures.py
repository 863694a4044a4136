"""tap-stripe parses real public Stripe payloads into the expected whitelisted records."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
import responses

from taps.stripe import TapStripe
from tests.singer_run import records_of, run_tap, schema_of

API = "http://stripe.test"
CONFIG = {"api_key": "sk_test_fixture", "api_url": API}


def envelope(url: str, objects: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return {"object": "list", "url": url, "has_more": False, "data": objects}


LIST_PATHS = (
    "/v1/charges", "/v1/customers", "/v1/refunds", "/v1/invoices", "/v1/subscriptions", "/v1/payment_intents",
    "/v1/balance_transactions", "/v1/products", "/v1/prices",
)


def sync_with(pages: dict[str, dict[str, t.Any]], state: dict[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    """Run the tap with the given list bodies; every other list path returns an empty list."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for path in LIST_PATHS:
            mock.add(responses.GET, f"{API}{path}", json=pages.get(path) or envelope(path, []))
        if "/v1/events" in pages:
            mock.add(responses.GET, f"{API}/v1/events", json=pages["/v1/events"])
        messages = run_tap(TapStripe, CONFIG, state=state)
        asked = {call.request.path_url.partition("?")[0] for call in mock.calls}
    assert set(pages) <= asked
    return messages


def without_change_columns(record: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: value for key, value in record.items() if key not in ("_sdc_changed_at", "_sdc_deleted_at")}


@pytest.fixture
def stripe_fixtures(fixtures_dir: Path) -> dict[str, t.Any]:
    folder = fixtures_dir / "stripe"
    return {
        "charges": json.loads((folder / "airbyte_list_charges.json").read_text()),
        "customers": json.loads((folder / "airbyte_list_customers.json").read_text()),
        "invoices": json.loads((folder / "airbyte_list_invoices.json").read_text()),
        "events": json.loads((folder / "airbyte_list_events.json").read_text()),
        "openapi": json.loads((folder / "openapi_fixtures3_marketing_subset.json").read_text())["resources"],
    }


def test_list_payloads_parse(stripe_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with(
        {
            "/v1/charges": stripe_fixtures["charges"],
            "/v1/customers": stripe_fixtures["customers"],
            "/v1/refunds": envelope("/v1/refunds", []),
        }
    )

    assert [without_change_columns(record) for record in records_of(messages, "charges")] == [
        {
            "id": "ch_1NirD82eZvKYlo2CIvbtLWuY",
            "created": "2023-08-25T05:45:18+00:00",
            "amount": 2000,
            "amount_captured": 2000,
            "amount_refunded": 0,
            "currency": "usd",
            "status": "succeeded",
            "paid": True,
            "captured": True,
            "disputed": False,
            "livemode": False,
            "payment_intent": None,
            "customer": None,
            "description": "My First Test Charge",
        }
    ]
    assert [without_change_columns(record) for record in records_of(messages, "customers")] == [
        {
            "id": "cus_NffrFeUfNV2Hib",
            "created": "2023-04-07T18:59:53+00:00",
            "currency": None,
            "balance": 0,
            "delinquent": False,
            "livemode": False,
            "email": "jennyrosen@example.com",
            "name": "Jenny Rosen",
            "description": None,
            "address_line1": None,
            "address_line2": None,
            "address_city": None,
            "address_postal_code": None,
            "address_country": None,
        }
    ]


def test_openapi_objects_parse(stripe_fixtures: dict[str, t.Any]) -> None:
    resources = stripe_fixtures["openapi"]
    messages = sync_with(
        {
            "/v1/charges": envelope("/v1/charges", [resources["charge"]]),
            "/v1/customers": envelope("/v1/customers", [resources["customer"]]),
            "/v1/refunds": envelope("/v1/refunds", [resources["refund"]]),
        }
    )

    charge = records_of(messages, "charges")[0]
    assert charge["billing_name"] == "Jenny Rosen"
    assert charge["card_fingerprint"] == "AOB934RVNwzk6xtn"
    assert charge["card_brand"] == "visa"
    assert charge["card_country"] == "US"
    assert charge["payment_method"] == "card_1PgaftB7WZ01zgkWm3waTcFp"
    assert charge["created"] == "2009-02-13T23:31:30+00:00"
    assert "receipt_url" not in charge
    assert "refunds" not in charge

    refund = without_change_columns(records_of(messages, "refunds")[0])
    assert refund == {
        "id": "re_1Pgc72B7WZ01zgkWqPvrRrPE",
        "created": "2009-02-13T23:31:30+00:00",
        "amount": 100,
        "currency": "usd",
        "charge": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        "payment_intent": None,
        "reason": None,
        "status": "succeeded",
        "customer": None,
    }

    customer = records_of(messages, "customers")[0]
    assert customer["preferred_locales"] == []
    assert "address_line1" in customer
    assert customer["address_line1"] is None


def test_every_field_has_pii_class(stripe_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with(
        {
            "/v1/charges": stripe_fixtures["charges"],
            "/v1/customers": stripe_fixtures["customers"],
            "/v1/refunds": envelope("/v1/refunds", []),
        }
    )

    for stream in ("charges", "customers", "refunds"):
        properties = schema_of(messages, stream)["properties"]
        assert properties, stream
        assert all(prop.get("x-pii") for prop in properties.values()), stream

    charges = schema_of(messages, "charges")["properties"]
    assert charges["billing_email"]["x-pii"] == "email"
    assert charges["billing_phone"]["x-pii"] == "phone"
    assert charges["billing_name"]["x-pii"] == "name"
    assert charges["billing_address_line1"]["x-pii"] == "address"
    assert charges["card_fingerprint"]["x-pii"] == "identifier"
    assert charges["description"]["x-pii"] == "free_text"
    assert schema_of(messages, "customers")["properties"]["ip_address"]["x-pii"] == "ip"


def test_requests_pin_stripe_version(stripe_fixtures: dict[str, t.Any]) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{API}/v1/charges", json=stripe_fixtures["charges"])
        for path in LIST_PATHS[1:]:
            mock.add(responses.GET, f"{API}{path}", json=envelope(path, []))
        run_tap(TapStripe, CONFIG)
        request = mock.calls[0].request

    assert request.headers["Stripe-Version"] == "2026-08-26.dahlia"
    assert request.headers["Authorization"] == "Bearer sk_test_fixture"
    assert "limit=100" in request.url


def test_invoice_list_parses(stripe_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with({"/v1/invoices": stripe_fixtures["invoices"]})

    invoice = records_of(messages, "invoices")[0]
    assert invoice["id"] == "in_1Msy8y2eZvKYlo2C7o4NfI2a"
    assert invoice["status"] == "paid"
    assert invoice["amount_paid"] == 1000
    assert invoice["currency"] == "usd"
    assert invoice["customer"] == "cus_NffrFeUfNV2Hib"
    assert invoice["created"] == "2023-04-07T18:59:53+00:00"
    assert invoice["_sdc_deleted_at"] is None


def test_new_openapi_objects_parse(stripe_fixtures: dict[str, t.Any]) -> None:
    resources = stripe_fixtures["openapi"]
    messages = sync_with(
        {
            "/v1/invoices": envelope("/v1/invoices", [resources["invoice"]]),
            "/v1/subscriptions": envelope("/v1/subscriptions", [resources["subscription"]]),
            "/v1/payment_intents": envelope("/v1/payment_intents", [resources["payment_intent"]]),
            "/v1/balance_transactions": envelope("/v1/balance_transactions", [resources["balance_transaction"]]),
            "/v1/products": envelope("/v1/products", [resources["product"]]),
            "/v1/prices": envelope("/v1/prices", [resources["price"]]),
        }
    )

    invoice = records_of(messages, "invoices")[0]
    assert invoice["status"] == "draft"
    assert invoice["total"] == 1000
    assert invoice["subscription"] == "subscription"  # basil+: parent.subscription_details.subscription
    assert "lines" not in invoice

    subscription = records_of(messages, "subscriptions")[0]
    assert subscription["price"] == "price_1PgafmB7WZ01zgkW6dKueIc5"
    assert subscription["current_period_start"] == "2030-02-06T01:08:38+00:00"  # 1896570518, read from the first item
    assert subscription["status"] == "active"

    intent = records_of(messages, "payment_intents")[0]
    assert intent["amount"] == 1099
    assert intent["status"] == "requires_payment_method"
    assert "client_secret" not in intent
    assert all("_secret_" not in str(value) for value in intent.values())

    transaction = records_of(messages, "balance_transactions")[0]
    assert transaction == {
        "id": "txn_1PgaxNB7WZ01zgkWEV3TLf40",
        "created": "2009-02-13T23:31:30+00:00",
        "available_on": "2009-02-13T23:31:30+00:00",
        "type": "charge",
        "reporting_category": "charge",
        "status": "available",
        "source": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        "currency": "usd",
        "amount": 100,
        "fee": 0,
        "net": 100,
        "exchange_rate": None,
        "description": "My First Test Charge (created for API docs)",
    }

    assert records_of(messages, "products")[0]["name"] == "T-shirt"
    price = records_of(messages, "prices")[0]
    assert (price["unit_amount"], price["unit_amount_decimal"], price["recurring_interval"]) == (2000, "2000", "month")


def test_new_streams_classify_personal_fields(stripe_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with({})

    invoices = schema_of(messages, "invoices")["properties"]
    assert invoices["customer_email"]["x-pii"] == "email"
    assert invoices["customer_name"]["x-pii"] == "name"
    assert invoices["customer_phone"]["x-pii"] == "phone"
    assert invoices["customer_address_line1"]["x-pii"] == "address"
    assert invoices["hosted_invoice_url"]["x-pii"] == "secret"
    assert invoices["invoice_pdf"]["x-pii"] == "secret"
    assert schema_of(messages, "payment_intents")["properties"]["receipt_email"]["x-pii"] == "email"
    for stream in ("invoices", "subscriptions", "payment_intents", "products", "prices", "customers"):
        properties = schema_of(messages, stream)["properties"]
        assert properties["_sdc_changed_at"]["x-pii"] == "none", stream
        assert properties["_sdc_deleted_at"]["x-pii"] == "none", stream


def test_events_fixture_other_objects_skipped(stripe_fixtures: dict[str, t.Any]) -> None:
    """The real events page contains a `balance` object, which no stream takes."""
    bookmark = {"replication_key": "_sdc_changed_at", "replication_key_value": "2023-11-20T00:00:00+00:00"}
    state = {"bookmarks": {name: dict(bookmark) for name in ("charges", "customers", "products")}}
    events = stripe_fixtures["events"]
    assert events["data"][0]["data"]["object"]["object"] == "balance"

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for path in LIST_PATHS:
            mock.add(responses.GET, f"{API}{path}", json=envelope(path, []))
        mock.add(responses.GET, f"{API}/v1/events", json=events, headers={"Date": "Tue, 21 Nov 2023 01:00:00 GMT"})
        messages = run_tap(
            TapStripe, CONFIG, state=state, catalog=selecting(["charges", "customers", "products"])
        )
        event_calls = [call for call in mock.calls if call.request.path_url.startswith("/v1/events")]

    assert len(event_calls) == 3
    assert records_of(messages, "charges") == records_of(messages, "customers") == []
    assert "types%5B%5D=customer.deleted" in event_calls[1].request.path_url
    assert "created%5Bgte%5D=1700438400" in event_calls[0].request.path_url


def selecting(names: list[str]) -> dict[str, t.Any]:
    catalog = TapStripe(config=CONFIG, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in names
    return catalog
