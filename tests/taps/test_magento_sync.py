"""tap-magento against the sandbox: paging, incremental reads across a tick, errors and exact money."""

from __future__ import annotations

import json
import math
import re
import sys
import typing as t
from collections import Counter
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from singer_sdk.exceptions import ConfigValidationError

from sandbox.magento_api import DEMO_TOKEN, MagentoSession, responses_callback, search
from sandbox.magento_data import DAY_SECONDS, MagentoWorld, sql_time
from taps.engine.stream import DeclarativeStream
from taps.engine.tap import StreamsStoppedError
from taps.engine.transforms import FieldTransformError
from taps.magento import TapMagento
from tests.singer_run import captured_stdout, final_state, parse_messages, records_of, run_tap

API = "http://magento.test/rest/default"
ANCHOR = 1_790_000_000
WORLD = MagentoWorld(seed=11, anchor=ANCHOR)
FILTER_VALUE = "searchCriteria[filter_groups][0][filters][0][value]"


def config(**overrides: t.Any) -> dict[str, t.Any]:
    return {"access_token": DEMO_TOKEN, "api_url": API, **overrides}


def catalog_for(*streams: str) -> dict[str, t.Any]:
    """Return the discovered catalog with only `streams` selected."""
    catalog = TapMagento(config=config(), parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def sync(
    world: MagentoWorld,
    settings: dict[str, t.Any],
    *streams: str,
    state: dict[str, t.Any] | None = None,
    session: MagentoSession | None = None,
) -> tuple[list[dict[str, t.Any]], list[dict[str, list[str]]]]:
    """Run the tap against `world` and return its messages and the query of every request."""
    session = session or MagentoSession(input_limits=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/V1/.*"), callback=responses_callback(world, session))
        messages = run_tap(TapMagento, settings, state=state, catalog=catalog_for(*streams))
        queries = [parse_qs(urlparse(call.request.url).query) for call in mock.calls]
    return messages, queries


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(DeclarativeStream, "retry_sleep", staticmethod(waits.append))
    return waits


def test_small_pages_load_each_order_once() -> None:
    messages, queries = sync(WORLD, config(page_size=50), "orders")

    ids = [record["entity_id"] for record in records_of(messages, "orders")]
    assert len(ids) == len(set(ids))
    assert set(ids) == {order["entity_id"] for order in WORLD.collection("orders")}
    assert len(queries) == math.ceil(len(ids) / 50)
    assert [query["searchCriteria[currentPage]"] for query in queries[:3]] == [["1"], ["2"], ["3"]]


def test_same_second_cluster_crosses_page_edge() -> None:
    """The world puts many orders into one updated_at second; one such run spans two pages of 50."""
    ordered = sorted(WORLD.collection("orders"), key=lambda order: (order["updated_at"], order["entity_id"]))
    edges = [
        index for index in range(50, len(ordered), 50)
        if ordered[index - 1]["updated_at"] == ordered[index]["updated_at"]
    ]
    assert edges

    messages, _ = sync(WORLD, config(page_size=50), "orders")

    emitted = Counter(record["entity_id"] for record in records_of(messages, "orders"))
    for index in edges:
        assert emitted[ordered[index - 1]["entity_id"]] == 1
        assert emitted[ordered[index]["entity_id"]] == 1


def test_three_orders_page_size_one() -> None:
    """Magento's page-past-the-end quirk: stop by total_count, so three orders take three requests."""
    world = MagentoWorld(seed=11, anchor=ANCHOR)
    world.collections["orders"] = world.collection("orders")[:3]

    messages, queries = sync(world, config(page_size=1), "orders")

    assert sorted(record["entity_id"] for record in records_of(messages, "orders")) == [1, 2, 3]
    assert [query["searchCriteria[currentPage]"] for query in queries] == [["1"], ["2"], ["3"]]


def test_total_shrinking_mid_read_repeats_last_page() -> None:
    """An order deleted during the read makes the next page clamp to the last one; nothing is emitted twice."""
    items = [dict(order) for order in WORLD.collection("orders")[:4]]
    session = MagentoSession()
    served = []

    def shrinking(request: t.Any) -> tuple[int, dict[str, str], str]:
        served.append(request.url)
        current = items if len(served) < 2 else items[1:]
        body = search(current, "entity_id", list(parse_qs_pairs(request.url)), session)
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/V1/orders.*"), callback=shrinking)
        messages = run_tap(TapMagento, config(page_size=2), catalog=catalog_for("orders"))

    ids = [record["entity_id"] for record in records_of(messages, "orders")]
    assert len(ids) == len(set(ids))
    assert len(served) == 2


def parse_qs_pairs(url: str) -> t.Iterator[tuple[str, str]]:
    for name, values in parse_qs(urlparse(url).query, keep_blank_values=True).items():
        for value in values:
            yield name, value


def test_first_run_sends_no_filter() -> None:
    _, queries = sync(WORLD, config(), "orders")

    assert not any(name.startswith("searchCriteria[filter_groups]") for query in queries for name in query)
    assert all(query["searchCriteria[pageSize]"] == ["100"] and "searchCriteria[currentPage]" in query for query in queries)
    assert queries[0]["searchCriteria[sortOrders][0][field]"] == ["entity_id"]
    assert queries[0]["searchCriteria[sortOrders][0][direction]"] == ["ASC"]
    assert not any(name.startswith("searchCriteria[sortOrders][1]") for name in queries[0])


def test_start_date_becomes_utc_filter() -> None:
    messages, queries = sync(WORLD, config(start_date="2026-09-01T02:00:00+02:00"), "orders")

    assert queries[0][FILTER_VALUE] == ["2026-09-01 00:00:00"]
    assert queries[0]["searchCriteria[filter_groups][0][filters][0][field]"] == ["updated_at"]
    assert queries[0]["searchCriteria[filter_groups][0][filters][0][condition_type]"] == ["gteq"]
    expected = [order for order in WORLD.collection("orders") if order["updated_at"] >= "2026-09-01 00:00:00"]
    assert len(records_of(messages, "orders")) == len(expected)


def test_order_updated_between_runs() -> None:
    later = MagentoWorld(seed=11, anchor=ANCHOR, ticks=(ANCHOR + DAY_SECONDS,))
    before = {order["entity_id"]: order for order in WORLD.collection("orders")}
    after = {order["entity_id"]: order for order in later.collection("orders")}
    changed = [entity for entity, order in before.items() if order["status"] != after[entity]["status"]]
    assert changed

    first, _ = sync(WORLD, config(), "orders")
    second, queries = sync(later, config(), "orders", state=final_state(first))

    bookmark = final_state(first)["bookmarks"]["orders"]["replication_key_value"]
    assert queries[0][FILTER_VALUE] == [bookmark[:19].replace("T", " ")]
    records = {record["entity_id"]: record for record in records_of(second, "orders")}
    assert len(records) == len(records_of(second, "orders"))
    for entity in changed:
        assert records[entity]["status"] == after[entity]["status"]
        assert records[entity]["updated_at"] == after[entity]["updated_at"].replace(" ", "T") + "+00:00"
    assert set(after) - set(before) <= set(records)


def test_bookmark_second_read_again() -> None:
    """Orders sharing the bookmark's second come back in the next run (>= filter), never lost."""
    first, _ = sync(WORLD, config(), "orders")
    bookmark = final_state(first)["bookmarks"]["orders"]["replication_key_value"]
    at_bookmark = {order["entity_id"] for order in WORLD.collection("orders") if order["updated_at"] == bookmark[:19].replace("T", " ")}

    second, _ = sync(WORLD, config(), "orders", state=final_state(first))

    assert at_bookmark
    assert {record["entity_id"] for record in records_of(second, "orders")} == at_bookmark


def test_money_has_no_float_noise() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/V1/.*"), callback=responses_callback(WORLD))
        with captured_stdout() as raw:
            TapMagento(config=config(page_size=300), catalog=catalog_for("orders", "products"), parse_env_config=False).sync_all()
            sys.stdout.flush()
    text = raw.getvalue().decode()

    # A JSON number with five or more decimals would be float noise: the sandbox sends at most four.
    assert not re.search(r"[:,\[]-?\d+\.\d{5,}[,}\]]", text)
    products = {record["id"]: record for record in records_of(parse_messages(raw.getvalue()), "products")}
    special = [product for product in WORLD.collection("products") if any(a["attribute_code"] == "special_price" for a in product["custom_attributes"])]
    assert special
    for product in special:
        value = next(a["value"] for a in product["custom_attributes"] if a["attribute_code"] == "special_price")
        assert f'"special_price":{value}' in text
        assert products[product["id"]]["special_price"] == float(value)


def test_bad_token_names_setting_and_option() -> None:
    session = MagentoSession(developer_mode=True)
    with pytest.raises(StreamsStoppedError) as raised:
        sync(WORLD, config(access_token="wrong-token-value"), "orders", session=session)
    message = str(raised.value)

    assert "HTTP 401" in message
    assert "message=The consumer isn't authorized to access %resources." in message
    assert "access_token setting" in message
    assert "standalone Bearer tokens" in message
    assert "Magento_Sales" not in message
    assert "wrong-token-value" not in message
    assert "ErrorProcessor" not in message


def test_cdn_throttles_retried(no_sleep: list[float]) -> None:
    session = MagentoSession(failures=[429, 503, 500])

    messages, _ = sync(WORLD, config(page_size=300), "store_views", "orders", session=session)

    assert len(records_of(messages, "orders")) == len(WORLD.collection("orders"))
    assert len(records_of(messages, "store_views")) == 2
    assert no_sleep == [1.0, 1.0, 1.0]


def test_page_size_above_limit_rejected() -> None:
    with pytest.raises(ConfigValidationError) as raised:
        TapMagento(config=config(page_size=301), parse_env_config=False)

    assert raised.value.errors == ["301 is greater than the maximum of 300 in config['page_size']"]


def world_of(orders: int) -> MagentoWorld:
    """Return a fresh world cut to its first `orders` orders, safe to change in a test."""
    world = MagentoWorld(seed=11, anchor=ANCHOR)
    world.collections["orders"] = [dict(order) for order in world.collection("orders")[:orders]]
    return world


def iso(epoch: int) -> str:
    return sql_time(epoch).replace(" ", "T") + "+00:00"


def test_order_updated_mid_read_not_lost() -> None:
    """An update between two page requests skips no order, and the next run reads the new version.

    Order 150, on the second page, is updated later than order 50, on the first page, and is
    read with its new updated_at; without the cap it would carry the bookmark past order 50.
    """
    world = world_of(200)
    updated_at = ANCHOR + 30

    def update_after_first_page(changed: MagentoWorld, served: int) -> None:
        if served == 1:
            changed.update_entity("orders", 50, updated_at, status="closed")
            changed.update_entity("orders", 150, updated_at + 10, status="closed")

    session = MagentoSession(after_search=update_after_first_page)
    first, queries = sync(world, config(page_size=100), "orders", session=session)

    ids = [record["entity_id"] for record in records_of(first, "orders")]
    assert len(queries) == 2
    assert sorted(ids) == list(range(1, 201))
    bookmark = final_state(first)["bookmarks"]["orders"]["replication_key_value"]
    assert bookmark <= iso(ANCHOR - 60)

    second, _ = sync(world, config(page_size=100), "orders", state=final_state(first))

    again = {record["entity_id"]: record for record in records_of(second, "orders")}
    assert again[50]["status"] == "closed"
    assert again[50]["updated_at"] == iso(updated_at)


def test_bookmark_capped_at_server_date() -> None:
    """The cap comes from the store's Date header (the world's clock), not the tap's clock."""
    world = world_of(20)
    world.update_entity("orders", 7, ANCHOR + DAY_SECONDS)

    messages, _ = sync(world, config(), "orders")

    assert final_state(messages)["bookmarks"]["orders"]["replication_key_value"] == iso(ANCHOR - 60)
    assert len(records_of(messages, "orders")) == 20


def test_zero_date_becomes_null() -> None:
    world = world_of(5)
    world.collection("orders")[2].update(created_at="0000-00-00 00:00:00", updated_at="0000-00-00 00:00:00")
    latest = max(order["updated_at"] for order in world.collection("orders"))

    messages, _ = sync(world, config(), "orders")

    records = {record["entity_id"]: record for record in records_of(messages, "orders")}
    assert records[3]["created_at"] is None
    assert records[3]["updated_at"] is None
    assert len(records) == 5
    assert final_state(messages)["bookmarks"]["orders"]["replication_key_value"] == latest.replace(" ", "T") + "+00:00"


def test_nan_money_error_names_order() -> None:
    world = world_of(5)
    world.collection("orders")[3]["grand_total"] = "NaN"

    with pytest.raises(FieldTransformError, match=r"Stream 'orders' in the record with entity_id=4: Field 'grand_total': transform 'numeric_string'"):
        sync(world, config(), "orders")


def test_list_for_string_field_rejected() -> None:
    world = world_of(1)
    product = world.collection("products")[5]
    for attribute in product["custom_attributes"]:
        if attribute["attribute_code"] == "manufacturer":
            attribute["value"] = ["213", "214"]

    with pytest.raises(FieldTransformError) as raised:
        sync(world, config(), "products")

    assert str(raised.value) == (
        f"Stream 'products' in the record with id={product['id']}: Field 'manufacturer': expected a JSON string, got a "
        "JSON array; declare the field's type as the API sends it, or a transform that converts it."
    )


def test_string_for_array_field_rejected() -> None:
    world = world_of(1)
    product = world.collection("products")[0]
    product["custom_attributes"] = [{"attribute_code": "category_ids", "value": "3,4"}]

    with pytest.raises(FieldTransformError, match=rf"with id={product['id']}: Field 'category_ids': expected a JSON array, got a JSON string"):
        sync(world, config(), "products")


def test_personal_key_left_out_of_error() -> None:
    """Customer ids are classed identifier, so the error names the field but not the record."""
    world = world_of(1)
    customer = world.collection("customers")[0]
    customer["group_id"] = "1"

    with pytest.raises(FieldTransformError) as raised:
        sync(world, config(), "customers")

    assert str(raised.value).startswith("Stream 'customers': Field 'group_id': expected a JSON integer, got a JSON string")
    assert str(customer["id"]) not in str(raised.value)


@pytest.mark.parametrize(
    "api_url",
    [
        "https://shop.example.com/rest/default",
        "https://shop.example.com/rest/default/",
        "https://shop.example.com/rest",
        "https://shop.example.com/shop/index.php/rest/de_1",
        "http://127.0.0.1:8765/rest/all",
    ],
)
def test_api_url_accepted(api_url: str) -> None:
    assert TapMagento(config=config(api_url=api_url), parse_env_config=False).config["api_url"] == api_url


@pytest.mark.parametrize(
    "api_url",
    [
        "https://shop.example.com",
        "https://shop.example.com/",
        "https://shop.example.com/rest/default/V1",
        "https://shop.example.com/rest/V1/",
        "shop.example.com/rest/default",
        "ftp://shop.example.com/rest/default",
    ],
)
def test_api_url_rejected(api_url: str) -> None:
    with pytest.raises(ConfigValidationError) as raised:
        TapMagento(config=config(api_url=api_url), parse_env_config=False)

    assert len(raised.value.errors) == 1
    assert "does not match" in raised.value.errors[0]
    assert "in config['api_url']. Expected: REST root: the shop's URL followed by /rest" in raised.value.errors[0]


def test_api_url_trailing_slash_stripped() -> None:
    messages, _ = sync(WORLD, config(api_url=API + "/"), "store_views")

    assert len(records_of(messages, "store_views")) == 2


def test_not_found_names_api_url() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{API}/V1/orders", json={"message": "Request does not match any route."}, status=404)
        with pytest.raises(StreamsStoppedError) as raised:
            run_tap(TapMagento, config(), catalog=catalog_for("orders"))

    assert "HTTP 404" in str(raised.value)
    assert "Check the api_url setting: it must end with /rest or /rest/<store_code>" in str(raised.value)
