"""tap-magento parses real public Magento payloads into the expected whitelisted records."""

from __future__ import annotations

import json
import typing as t
from decimal import Decimal
from pathlib import Path

import pytest
import responses

from taps.magento import TapMagento
from tests.singer_run import catalog_selecting_all, records_of, run_tap

API = "http://magento.test/rest/default"
CONFIG = {"access_token": "fixture-token", "api_url": API}
PATHS = {
    "orders": "/V1/orders",
    "invoices": "/V1/invoices",
    "creditmemos": "/V1/creditmemos",
    "products": "/V1/products",
    "customers": "/V1/customers/search",
}


@pytest.fixture
def magento_fixtures(fixtures_dir: Path) -> dict[str, t.Any]:
    folder = fixtures_dir / "magento"
    return {path.stem.removeprefix("adobedocs_"): json.loads(path.read_text()) for path in folder.glob("*.json")}


def search_body(*items: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"items": list(items), "search_criteria": {"filter_groups": []}, "total_count": len(items)}


def sync_with(bodies: dict[str, t.Any], *, all_requested: bool = True) -> list[dict[str, t.Any]]:
    """Run the tap with one response per stream; streams not given return an empty search."""
    with responses.RequestsMock(assert_all_requests_are_fired=all_requested) as mock:
        for stream, path in PATHS.items():
            mock.add(responses.GET, f"{API}{path}", json=bodies.get(stream, search_body()))
        mock.add(responses.GET, f"{API}/V1/store/storeConfigs", json=[])
        return run_tap(TapMagento, CONFIG, catalog=catalog_selecting_all(TapMagento, CONFIG))


def test_order_get_payload(magento_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with({"orders": search_body(magento_fixtures["order_get"])})

    [order] = records_of(messages, "orders")
    items = order.pop("items")
    assert order == {
        "entity_id": 3,
        "increment_id": "000000003",
        "state": "new",
        "status": "pending",
        "created_at": "2017-08-21T22:22:19+00:00",
        "updated_at": "2017-08-21T22:22:20+00:00",
        "store_id": 1,
        "base_currency_code": "USD",
        "order_currency_code": "USD",
        "base_to_order_rate": 1,
        "grand_total": 165,
        "base_grand_total": 165,
        "subtotal": 160,
        "base_subtotal": 160,
        "discount_amount": 0,
        "base_discount_amount": 0,
        "shipping_amount": 5,
        "base_shipping_amount": 5,
        "tax_amount": 0,
        "base_tax_amount": 0,
        "total_qty_ordered": 4,
        "shipping_description": "Best Way - Table Rate",
        "payment_method": "banktransfer",
        "billing_country_id": "US",
        "customer_group_id": 1,
        "customer_is_guest": 0,
        "customer_id": 3,
        "customer_email": "jdoe@example.com",
        "customer_firstname": "Jane",
        "customer_lastname": "Doe",
    }
    assert items == [
        {
            "item_id": 3,
            "sku": "WS12-M-Orange",
            "name": "Radiant Tee-M-Orange",
            "product_id": 1553,
            "product_type": "simple",
            "qty_ordered": 1,
            "price": 22,
            "base_price": 22,
            "row_total": 22,
            "base_row_total": 22,
            "discount_amount": 0,
            "base_discount_amount": 0,
        }
    ]


def test_order_secrets_never_leave(magento_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with({"orders": search_body(magento_fixtures["order_get"])})

    output = json.dumps(messages)
    assert "61f76d" not in output  # protect_code
    assert "Bank Transfer Payment" not in output  # payment.additional_information
    assert "123 Oak Ave" not in output  # billing street


def test_invoice_get_payload(magento_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with({"invoices": search_body(magento_fixtures["invoice_get"])})

    [invoice] = records_of(messages, "invoices")
    items = invoice.pop("items")
    assert invoice == {
        "entity_id": 3,
        "increment_id": "000000003",
        "order_id": 3,
        "state": 2,
        "store_id": 1,
        "created_at": "2017-08-21T22:36:02+00:00",
        "updated_at": "2017-08-21T22:36:03+00:00",
        "base_currency_code": "USD",
        "order_currency_code": "USD",
        "base_to_order_rate": 1,
        "grand_total": 165,
        "base_grand_total": 165,
        "subtotal": 160,
        "base_subtotal": 160,
        "discount_amount": 0,
        "base_discount_amount": 0,
        "shipping_amount": 5,
        "base_shipping_amount": 5,
        "tax_amount": 0,
        "base_tax_amount": 0,
        "total_qty": 9,
    }
    assert len(items) == 9
    assert items[2] == {
        "entity_id": 5,
        "order_item_id": 5,
        "sku": "24-WG080-24-WG084-24-WG088-24-WG082-blue-24-WG086",
        "name": "Sprite Yoga Companion Kit",
        "product_id": 51,
        "qty": 1,
        "price": 68,
        "base_price": 68,
    }


def test_product_custom_attributes_picked(magento_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with({"products": search_body(magento_fixtures["product_get"])})

    [product] = records_of(messages, "products")
    assert product == {
        "id": 2079,
        "sku": "MS-Champ-S",
        "name": "Champ Tee Small",
        "type_id": "simple",
        "status": 1,
        "visibility": 1,
        "price": 25,
        "attribute_set_id": 9,
        "created_at": "2017-11-29T20:40:07+00:00",
        "updated_at": "2017-11-29T20:40:07+00:00",
        "url_key": "champ-tee-small",
        "category_ids": ["11", "12", "16"],
        "website_ids": [1],
    }


def test_customers_search_payload(magento_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with({"customers": magento_fixtures["customers_search"]})

    assert records_of(messages, "customers") == [
        {
            "id": 1,
            "email": "test.customer@example.com",
            "firstname": "Test",
            "lastname": "Customer",
            "dob": "1970-01-01",
            "group_id": 1,
            "store_id": 1,
            "website_id": 1,
            "created_in": "Default Store View",
            "created_at": "2017-12-05T09:50:11+00:00",
            "updated_at": "2018-09-22T06:32:50+00:00",
            "disable_auto_group_change": 0,
        }
    ]
    output = json.dumps(messages)
    assert "1 Example Street" not in output
    assert "(555) 229-3326" not in output


def test_projection_without_total_reads_one_page(magento_fixtures: dict[str, t.Any]) -> None:
    """A `fields=` projection without total_count still parses; a short page ends the stream."""
    body = magento_fixtures["orders_search_fields_projection"]
    items = [dict(item, updated_at="2026-01-02 03:04:05") for item in body["items"]]
    messages = sync_with({"orders": {"items": items}})

    assert records_of(messages, "orders") == [
        {"entity_id": 3003, "increment_id": "WA0003003", "updated_at": "2026-01-02T03:04:05+00:00"},
        {"entity_id": 3140, "increment_id": "WA0003140", "updated_at": "2026-01-02T03:04:05+00:00"},
        {"entity_id": 9435, "increment_id": "WA0009435", "updated_at": "2026-01-02T03:04:05+00:00"},
    ]


def test_projection_without_bookmark_field_fails(magento_fixtures: dict[str, t.Any]) -> None:
    with pytest.raises(Exception, match=r"a record has no 'updated_at', the replication key"):
        sync_with({"orders": magento_fixtures["orders_search_fields_projection"]}, all_requested=False)


def test_error_400_shows_template_only(magento_fixtures: dict[str, t.Any]) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{API}/V1/orders", json=magento_fixtures["error_400"], status=400)
        for stream, path in PATHS.items():
            if stream != "orders":
                mock.add(responses.GET, f"{API}{path}", json=search_body())
        mock.add(responses.GET, f"{API}/V1/store/storeConfigs", json=[])
        with pytest.raises(Exception, match=r"message=Invalid product data: %1") as raised:
            run_tap(TapMagento, CONFIG)

    assert "Invalid attribute set entity type" not in str(raised.value)
    assert "lower the page_size setting" in str(raised.value)


def test_money_parsed_as_exact_decimals(magento_fixtures: dict[str, t.Any]) -> None:
    """Values that are inexact as binary floats arrive as the decimal the API wrote."""
    order = dict(magento_fixtures["order_get"], grand_total=165.1, base_grand_total=0.30000000000000004, subtotal=19.99)
    messages = sync_with({"orders": search_body(order)})

    [record] = records_of(messages, "orders")
    assert Decimal(str(record["grand_total"])) == Decimal("165.1")
    assert Decimal(str(record["subtotal"])) == Decimal("19.99")
    assert Decimal(str(record["base_grand_total"])) == Decimal("0.30000000000000004")
