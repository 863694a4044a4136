"""The sandbox's new Stripe objects, the changes each tick makes and the `/v1/events` endpoint."""

from __future__ import annotations

import email.utils
import json
from collections import Counter
from typing import Any

import pytest

from sandbox.stripe_api import DEMO_API_KEY, handle_request
from sandbox.stripe_data import DAY_SECONDS, StripeWorld
from sandbox.stripe_lifecycle import LEGACY_API_VERSION, LEGACY_EVENTS_PER_TICK, legacy_shape

SEED = 11
ANCHOR = 1_790_000_000
TICKS = (ANCHOR + 6 * 3_600, ANCHOR + DAY_SECONDS)
AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}


@pytest.fixture(scope="module")
def world() -> StripeWorld:
    return StripeWorld(SEED, ANCHOR, TICKS)


def get(world: StripeWorld, path: str, query: str = "") -> tuple[int, dict[str, str], Any]:
    status, headers, body = handle_request(world, "GET", path, query, AUTH)
    return status, headers, json.loads(body)


def all_pages(world: StripeWorld, path: str, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, _, body = get(world, path, f"{query}&limit=100{cursor}")
        assert status == 200, body
        items.extend(body["data"])
        if not body["has_more"]:
            return items
        cursor = f"&starting_after={items[-1]['id']}"


def tick_events(world: StripeWorld, start: int, end: int) -> list[dict[str, Any]]:
    return [event for event in world.listing("events").objects if start < event["created"] <= end]


def test_new_lists_served(world: StripeWorld) -> None:
    for path, kind in (
        ("/v1/invoices", "invoices"), ("/v1/payment_intents", "payment_intents"),
        ("/v1/balance_transactions", "balance_transactions"), ("/v1/products", "products"), ("/v1/prices", "prices"),
    ):
        items = all_pages(world, path, "")
        assert len(items) == world.count(kind) > 0, path
        assert {item["object"] for item in items} == {kind[:-1]}, path


def test_subscriptions_hide_canceled_by_default(world: StripeWorld) -> None:
    default = all_pages(world, "/v1/subscriptions", "")
    every = all_pages(world, "/v1/subscriptions", "status=all")

    assert "canceled" not in {item["status"] for item in default}
    assert Counter(item["status"] for item in every)["canceled"] >= 1
    assert len(every) == world.count("subscriptions") > len(default)


def test_subscription_status_unknown_400(world: StripeWorld) -> None:
    status, _, body = get(world, "/v1/subscriptions", "status=gone")

    assert status == 400
    assert body["error"]["param"] == "status"


def test_objects_linked(world: StripeWorld) -> None:
    customers = {item["id"] for item in world.customers + world.deleted("customers")}
    subscriptions = {item["id"] for item in world.listing("subscriptions").objects}
    charges = {item["id"]: item for item in world.charges}
    refunds = {item["id"] for item in world.refunds}
    products = {item["id"] for item in world.listing("products").objects}

    for invoice in world.listing("invoices").objects:
        assert invoice["customer"] in customers
        assert invoice["parent"]["subscription_details"]["subscription"] in subscriptions
    for intent in world.listing("payment_intents").objects:
        assert charges[intent["latest_charge"]]["payment_intent"] == intent["id"]
    for transaction in world.listing("balance_transactions").objects:
        assert transaction["source"] in charges or transaction["source"] in refunds
        assert transaction["currency"] == "usd"
        assert transaction["net"] == transaction["amount"] - transaction["fee"]
    for price in world.listing("prices").objects:
        assert price["product"] in products
        assert price["unit_amount_decimal"] == str(price["unit_amount"])


def test_foreign_charges_settle_with_rate(world: StripeWorld) -> None:
    charges = {item["id"]: item for item in world.charges}
    euro = next(t for t in world.listing("balance_transactions").objects if charges.get(t["source"], {}).get("currency") == "eur")

    assert euro["exchange_rate"] == 1.08
    assert euro["amount"] == round(charges[euro["source"]]["amount"] * 1.08)


@pytest.mark.parametrize(("start", "end"), [(ANCHOR, TICKS[0]), (TICKS[0], TICKS[1])])
def test_every_tick_changes_and_deletes(world: StripeWorld, start: int, end: int) -> None:
    types = Counter(event["type"] for event in tick_events(world, start, end))

    assert types["customer.deleted"] >= 1
    assert types["price.deleted"] >= 1
    assert types["invoice.deleted"] >= 1
    assert types["customer.updated"] >= 1
    assert types["customer.subscription.deleted"] >= 1
    assert types["product.updated"] >= 1
    assert types["invoice.created"] >= 1


def test_deleted_objects_leave_lists(world: StripeWorld) -> None:
    for kind, event_type in (("customers", "customer.deleted"), ("prices", "price.deleted"), ("invoices", "invoice.deleted")):
        gone = {event["data"]["object"]["id"] for event in world.listing("events").objects if event["type"] == event_type}
        listed = {item["id"] for item in world.listing(kind).objects}
        assert gone
        assert gone.isdisjoint(listed), kind
        assert gone <= {item["id"] for item in world.deleted(kind)}, kind


def test_deleted_invoices_were_drafts(world: StripeWorld) -> None:
    for invoice in world.deleted("invoices"):
        assert invoice["status"] == "draft"


def test_canceled_subscription_still_listed(world: StripeWorld) -> None:
    canceled = [e["data"]["object"]["id"] for e in world.listing("events").objects if e["type"] == "customer.subscription.deleted"]
    listed = {item["id"]: item for item in world.listing("subscriptions").objects}

    assert canceled
    assert all(listed[item]["status"] == "canceled" for item in canceled)


def test_updates_carry_previous_attributes(world: StripeWorld) -> None:
    update = next(e for e in world.listing("events").objects if e["type"] == "customer.updated")

    previous = update["data"]["previous_attributes"]["email"]
    assert previous != update["data"]["object"]["email"]
    assert previous in world.personal_values()
    assert update["data"]["object"]["email"].startswith(previous.partition("@")[0] + "+")


def test_events_newest_first_inside_30_days(world: StripeWorld) -> None:
    events = all_pages(world, "/v1/events", "")
    times = [event["created"] for event in events]

    assert times == sorted(times, reverse=True)
    assert min(times) >= world.now - 30 * DAY_SECONDS
    assert len(events) == len({event["id"] for event in events}) == world.count("events")


def test_events_types_filter(world: StripeWorld) -> None:
    events = all_pages(world, "/v1/events", "types[]=customer.deleted&types[]=price.deleted")

    assert events
    assert {event["type"] for event in events} == {"customer.deleted", "price.deleted"}


def test_events_wildcard_type_matches_neighbours(world: StripeWorld) -> None:
    events = all_pages(world, "/v1/events", "type=customer.*")

    assert {"customer.subscription.created", "customer.created"} <= {event["type"] for event in events}


def test_events_created_filter(world: StripeWorld) -> None:
    events = all_pages(world, "/v1/events", f"created[gte]={TICKS[0]}")

    assert events
    assert min(event["created"] for event in events) >= TICKS[0]
    assert len(events) == world.count("events", gte=TICKS[0])


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("types[]=charge.exploded", "types"),
        ("types[]=charge.succeeded&type=charge.failed", "types"),
        ("type=nothing.*", "type"),
        ("status=all", "status"),
    ],
)
def test_events_bad_parameter_400(world: StripeWorld, query: str, param: str) -> None:
    status, _, body = get(world, "/v1/events", query)

    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param


def test_old_events_not_served() -> None:
    later = StripeWorld(SEED, ANCHOR, (*TICKS, ANCHOR + 40 * DAY_SECONDS))

    oldest = min(event["created"] for event in later.listing("events").objects)
    assert oldest >= later.now - 30 * DAY_SECONDS
    assert later.count("events", lte=TICKS[1]) == 0


def test_date_header_is_world_time(world: StripeWorld) -> None:
    _, headers, _ = get(world, "/v1/events", "limit=1")

    assert email.utils.parsedate_to_datetime(headers["Date"]).timestamp() == world.now


def test_personal_values_cover_invoices_and_deleted(world: StripeWorld) -> None:
    values = world.personal_values()

    for invoice in world.listing("invoices").objects:
        assert {invoice["customer_email"], invoice["customer_name"]} <= values
    for customer in world.deleted("customers"):
        assert {customer["email"], customer["name"], customer["address"]["line1"]} <= values


def test_events_deterministic(world: StripeWorld) -> None:
    again = StripeWorld(SEED, ANCHOR, TICKS)

    assert list(again.listing("events").objects) == list(world.listing("events").objects)


# One object by id, and events rendered in an older API version


@pytest.mark.parametrize("kind", ["charges", "customers", "refunds", "invoices", "subscriptions", "payment_intents", "products", "prices"])
def test_retrieve_serves_current_object(world: StripeWorld, kind: str) -> None:
    current = world.listing(kind).objects[3]

    status, headers, body = get(world, f"/v1/{kind}/{current['id']}")

    assert status == 200
    assert body == current
    assert headers["Stripe-Version"] == "2026-08-26.dahlia"


def test_retrieve_deleted_customer_is_stub(world: StripeWorld) -> None:
    deleted = world.deleted("customers")[0]

    status, _, body = get(world, f"/v1/customers/{deleted['id']}")

    assert status == 200
    assert body == {"id": deleted["id"], "object": "customer", "deleted": True}


@pytest.mark.parametrize(("kind", "name"), [("invoices", "invoice"), ("prices", "price")])
def test_retrieve_deleted_object_404(world: StripeWorld, kind: str, name: str) -> None:
    deleted = world.deleted(kind)[0]

    status, _, body = get(world, f"/v1/{kind}/{deleted['id']}")

    assert status == 404
    assert body["error"] == {
        "type": "invalid_request_error", "message": f"No such {name}: '{deleted['id']}'", "param": "id", "code": "resource_missing",
    }


def test_retrieve_rejects_parameters_and_post(world: StripeWorld) -> None:
    object_id = world.listing("charges").objects[0]["id"]

    status, _, body = get(world, f"/v1/charges/{object_id}", "expand[]=customer")
    assert status == 400
    assert body["error"]["param"] == "expand[]"
    status, headers, _ = handle_request(world, "POST", f"/v1/charges/{object_id}", "", AUTH)
    assert status == 405
    assert headers["Allow"] == "GET"


def test_retrieve_unknown_kind_404(world: StripeWorld) -> None:
    status, _, body = get(world, "/v1/disputes/dp_123")

    assert status == 404
    assert body["error"]["message"] == "Unrecognized request URL (GET: /v1/disputes/dp_123)."


@pytest.mark.parametrize(("start", "end"), [(ANCHOR, TICKS[0]), (TICKS[0], TICKS[1])])
def test_each_tick_has_legacy_events(world: StripeWorld, start: int, end: int) -> None:
    events = tick_events(world, start, end)
    legacy = [event for event in events if event["api_version"] == LEGACY_API_VERSION]

    paid = [event for event in events if event["type"] == "invoice.paid"]
    assert LEGACY_EVENTS_PER_TICK <= len(legacy) <= LEGACY_EVENTS_PER_TICK + 1
    if paid:
        assert paid[0] in legacy
    assert {event["api_version"] for event in events} == {"2026-08-26.dahlia", LEGACY_API_VERSION}


def test_history_events_in_pinned_version(world: StripeWorld) -> None:
    history = [event for event in world.listing("events").objects if event["created"] <= ANCHOR]

    assert history
    assert {event["api_version"] for event in history} == {"2026-08-26.dahlia"}


def test_legacy_invoice_shape(world: StripeWorld) -> None:
    [paid, *_] = [
        event for event in world.listing("events").objects
        if event["type"] == "invoice.paid" and event["api_version"] == LEGACY_API_VERSION
    ]
    legacy = paid["data"]["object"]
    current = world.retrieve("invoices", legacy["id"])

    assert "parent" not in legacy
    assert legacy["subscription"] == current["parent"]["subscription_details"]["subscription"]
    assert legacy["subscription"].startswith("sub_")


def test_legacy_subscription_shape() -> None:
    subscription = {"id": "sub_1", "object": "subscription", "items": {"data": [{"id": "si_1", "current_period_start": 1, "current_period_end": 2}]}}

    legacy = legacy_shape(subscription)

    assert (legacy["current_period_start"], legacy["current_period_end"]) == (1, 2)
    assert legacy["items"]["data"] == [{"id": "si_1"}]
    assert subscription["items"]["data"][0]["current_period_end"] == 2
