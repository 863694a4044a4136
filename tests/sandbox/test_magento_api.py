"""The Magento sandbox: a deterministic shop, Magento's search criteria, paging quirks and errors."""

from __future__ import annotations

import email.utils
import json
import typing as t
import urllib.request
from collections import Counter
from urllib.parse import urlencode

import pytest

from sandbox.magento_api import DEMO_TOKEN, MagentoSession, handle_magento_request
from sandbox.magento_data import DAY_SECONDS, MagentoWorld, sql_time
from sandbox.server import start_server
from sandbox.stripe_data import StripeWorld

ANCHOR = 1_790_000_000
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


@pytest.fixture(scope="module")
def world() -> MagentoWorld:
    return MagentoWorld(seed=3, anchor=ANCHOR)


def get(world: MagentoWorld, path: str, params: dict[str, t.Any] | None = None, *, session: MagentoSession | None = None, headers: dict[str, str] | None = None) -> tuple[int, t.Any]:
    status, _, body = handle_magento_request(world, session or MagentoSession(), "GET", path, urlencode(params or {}), AUTH if headers is None else headers)
    return status, json.loads(body)


def page(size: int, number: int, **extra: t.Any) -> dict[str, t.Any]:
    return {"searchCriteria[pageSize]": size, "searchCriteria[currentPage]": number, **extra}


def test_world_size_and_mix(world: MagentoWorld) -> None:
    orders = world.collection("orders")

    assert 2_900 <= len(orders) <= 3_100
    assert {order["order_currency_code"] for order in orders} == {"USD", "EUR"}
    assert sum(order["customer_is_guest"] for order in orders) > 300
    assert world.collection("invoices")
    assert world.collection("creditmemos")


def test_world_deterministic(world: MagentoWorld) -> None:
    again = MagentoWorld(seed=3, anchor=ANCHOR)

    assert json.dumps(again.collections) == json.dumps(world.collections)


def test_tick_adds_and_updates(world: MagentoWorld) -> None:
    later = MagentoWorld(seed=3, anchor=ANCHOR, ticks=(ANCHOR + DAY_SECONDS,))
    before = {order["entity_id"]: order for order in world.collection("orders")}
    after = {order["entity_id"]: order for order in later.collection("orders")}

    assert 20 <= len(after) - len(before) <= 40
    updated = [entity for entity in before if after[entity]["updated_at"] > before[entity]["updated_at"]]
    assert updated
    assert all(after[entity]["created_at"] == before[entity]["created_at"] for entity in before)


def test_same_second_clusters(world: MagentoWorld) -> None:
    counts = Counter(order["updated_at"] for order in world.collection("orders"))

    assert counts.most_common(1)[0][1] >= 20


def test_personal_values_served(world: MagentoWorld) -> None:
    served = json.dumps(world.collections)
    values = world.personal_values()

    assert len(values) > 3_000
    assert all(value in served for value in values)
    assert any("@example." in value for value in values)
    assert any(value.startswith("198.51.100.") or value.startswith("203.0.113.") for value in values)


def test_total_count_and_pages(world: MagentoWorld) -> None:
    status, body = get(world, "/rest/default/V1/orders", page(100, 2))

    assert status == 200
    assert body["total_count"] == len(world.collection("orders"))
    assert [order["entity_id"] for order in body["items"]] == list(range(101, 201))


def test_page_past_end_repeats_last(world: MagentoWorld) -> None:
    total = len(world.collection("orders"))
    last_page = -(-total // 100)

    _, last = get(world, "/rest/default/V1/orders", page(100, last_page))
    _, past = get(world, "/rest/default/V1/orders", page(100, last_page + 5))

    assert past["items"] == last["items"]
    assert past["search_criteria"]["current_page"] == last_page + 5


def test_echo_without_paging_returns_all(world: MagentoWorld) -> None:
    status, body = get(world, "/rest/all/V1/customers/search", {"searchCriteria[sortOrders][0][field]": "email"})

    assert status == 200
    assert len(body["items"]) == body["total_count"] == len(world.collection("customers"))
    assert "page_size" not in body["search_criteria"]
    assert "current_page" not in body["search_criteria"]


def test_input_limits_refuse_large_page(world: MagentoWorld) -> None:
    status, body = get(world, "/rest/default/V1/orders", page(301, 1), session=MagentoSession(input_limits=True))

    assert status == 400
    assert body == {"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 300}}


def test_input_limits_default_page(world: MagentoWorld) -> None:
    _, body = get(world, "/rest/default/V1/orders", {"searchCriteria[currentPage]": 1}, session=MagentoSession(input_limits=True))

    assert len(body["items"]) == 20


@pytest.mark.parametrize(
    ("condition", "value", "check"),
    [
        ("gteq", "2026-09-01 00:00:00", lambda order: order["updated_at"] >= "2026-09-01 00:00:00"),
        ("gt", "2026-09-01 16:00:00", lambda order: order["updated_at"] > "2026-09-01 16:00:00"),
        ("lteq", "2026-06-01 00:00:00", lambda order: order["updated_at"] <= "2026-06-01 00:00:00"),
        ("eq", "closed", None),
        ("in", "canceled,closed", None),
    ],
)
def test_filters(world: MagentoWorld, condition: str, value: str, check: t.Callable[[dict[str, t.Any]], bool] | None) -> None:
    field = "updated_at" if check else "status"
    params = {
        "searchCriteria[filter_groups][0][filters][0][field]": field,
        "searchCriteria[filter_groups][0][filters][0][value]": value,
        "searchCriteria[filter_groups][0][filters][0][condition_type]": condition,
    }
    _, body = get(world, "/rest/default/V1/orders", params)

    expected = [order for order in world.collection("orders") if (check(order) if check else order["status"] in value.split(","))]
    assert body["total_count"] == len(expected) > 0
    assert [order["entity_id"] for order in body["items"]] == [order["entity_id"] for order in expected]


def test_sort_orders_honoured(world: MagentoWorld) -> None:
    params = {
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[sortOrders][1][field]": "entity_id",
        "searchCriteria[sortOrders][1][direction]": "DESC",
    }
    _, body = get(world, "/rest/default/V1/orders", params)

    keys = [(order["updated_at"], -order["entity_id"]) for order in body["items"]]
    assert keys == sorted(keys)


def test_search_criteria_required(world: MagentoWorld) -> None:
    status, body = get(world, "/rest/default/V1/orders")

    assert status == 400
    assert body["parameters"] == {"fieldName": "searchCriteria"}


def test_bad_token_gets_401(world: MagentoWorld) -> None:
    status, body = get(world, "/rest/default/V1/orders", page(1, 1), headers={"Authorization": "Bearer nope"})

    assert status == 401
    assert body["message"] == "The consumer isn't authorized to access %resources."


def test_unknown_store_code(world: MagentoWorld) -> None:
    status, body = get(world, "/rest/fr/V1/orders", page(1, 1))

    assert status == 400
    assert "store that was requested" in body["message"]


def test_developer_mode_adds_trace(world: MagentoWorld) -> None:
    _, body = get(world, "/rest/default/V1/nothing", session=MagentoSession(developer_mode=True))

    assert body["message"] == "Request does not match any route."
    assert body["trace"].startswith("#0 ")


def test_store_configs(world: MagentoWorld) -> None:
    _, body = get(world, "/rest/default/V1/store/storeConfigs")

    assert [(config["code"], config["base_currency_code"], config["timezone"]) for config in body] == [
        ("default", "USD", "America/New_York"),
        ("de", "EUR", "Europe/Berlin"),
    ]


def test_server_routes_rest_paths() -> None:
    with start_server(StripeWorld(3, ANCHOR)) as server:
        request = urllib.request.Request(f"{server.url}/rest/default/V1/store/storeConfigs", headers=AUTH)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())

    assert [config["code"] for config in body] == ["default", "de"]


def test_date_header_is_world_clock(world: MagentoWorld) -> None:
    for path in ("/rest/default/V1/orders", "/rest/default/V1/nothing"):
        _, headers, _ = handle_magento_request(world, MagentoSession(), "GET", path, urlencode(page(1, 1)), AUTH)

        assert headers["Date"] == email.utils.formatdate(ANCHOR, usegmt=True)


def test_after_search_hook_changes_later_pages() -> None:
    world = MagentoWorld(seed=3, anchor=ANCHOR)
    calls: list[int] = []

    def update(changed: MagentoWorld, served: int) -> None:
        calls.append(served)
        changed.update_entity("orders", 1, ANCHOR + 5, status="closed")

    session = MagentoSession(after_search=update)
    _, first = get(world, "/rest/default/V1/orders", page(2, 1), session=session)
    _, second = get(world, "/rest/default/V1/orders", page(2, 1), session=session)

    assert calls == [1, 2]
    assert first["items"][0]["status"] != "closed"
    assert second["items"][0]["status"] == "closed"
    assert second["items"][0]["updated_at"] == sql_time(ANCHOR + 5)


def test_update_entity_unknown_id() -> None:
    world = MagentoWorld(seed=3, anchor=ANCHOR)

    with pytest.raises(KeyError, match="No customers row with id 999999"):
        world.update_entity("customers", 999_999, ANCHOR)
