"""tap-stripe against the sandbox over two runs: updates and deletions reach the warehouse.

The tap, mapper-pii and target-warehouse all run for real, in-process; only HTTP goes
through `responses` to the sandbox's request handler.
"""

from __future__ import annotations

import io
import json
import re
import sys
import typing as t
from pathlib import Path

import pytest
import responses
from singer_sdk.testing.runners import TargetTestRunner

from mappers.pii import PIIMapper
from privacy.keys import load_tenant_keys
from privacy.pseudonyms import Pseudonymizer
from sandbox.stripe_api import DEMO_API_KEY, responses_callback
from sandbox.stripe_data import StripeWorld
from sandbox.stripe_lifecycle import LEGACY_API_VERSION
from targets.warehouse import TargetWarehouse
from targets.warehouse.duckdb_store import connect_warehouse
from taps.stripe import TapStripe
from tests.singer_run import captured_stdout, catalog_selecting_all, final_state, parse_messages, records_of, run_tap

API = "http://stripe-sandbox.test"
CONFIG = {"api_key": DEMO_API_KEY, "api_url": API}
SEED = 23
ANCHOR = 1_790_000_000
TICK = ANCHOR + 6 * 3_600
LATER_TICK = ANCHOR + 30 * 3_600
TENANT = "acme"


def sync(world: StripeWorld, state: dict[str, t.Any] | None = None, streams: tuple[str, ...] | None = None) -> list[dict[str, t.Any]]:
    catalog = selecting(streams) if streams is not None else None
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/v1/.*"), callback=responses_callback(world))
        return run_tap(TapStripe, CONFIG, state=state, catalog=catalog)


def selecting(streams: tuple[str, ...]) -> dict[str, t.Any]:
    catalog = catalog_selecting_all(TapStripe, CONFIG)
    for entry in catalog["streams"]:
        root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
        root["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def load(home: Path, messages: list[dict[str, t.Any]]) -> None:
    """Pass tap output through mapper-pii and target-warehouse, as `meltano run` does."""
    text = "".join(json.dumps(message) + "\n" for message in messages)
    with captured_stdout() as raw:
        PIIMapper(config={"tenant": TENANT}).listen(io.StringIO(text))
        sys.stdout.flush()
    mapped = raw.getvalue().decode()
    TargetTestRunner(TargetWarehouse, config={"tenant": TENANT, "source": "stripe", "home": str(home)}, input_io=io.StringIO(mapped)).sync_all()


@pytest.fixture(scope="module")
def worlds() -> tuple[StripeWorld, StripeWorld]:
    return StripeWorld(SEED, ANCHOR), StripeWorld(SEED, ANCHOR, (TICK,))


def deleted_in_tick(world: StripeWorld, kind: str) -> list[dict[str, t.Any]]:
    return [item for item in world.deleted(kind) if item["created"] <= ANCHOR]


@pytest.fixture
def two_loads(spendlake_env: Path, worlds: tuple[StripeWorld, StripeWorld]) -> dict[str, t.Any]:
    """Load the first world, then the ticked world with the first run's state, into one warehouse."""
    home = spendlake_env
    first_world, second_world = worlds
    streams = ("customers", "subscriptions")
    first = sync(first_world, streams=streams)
    load(home, first)
    second = sync(second_world, final_state(first), streams=streams)
    load(home, second)
    pseudonym = Pseudonymizer(load_tenant_keys(home, TENANT).hmac_key).pseudonym
    return {"home": home, "second": second, "deleted": [pseudonym("identifier", item["id"]) for item in deleted_in_tick(second_world, "customers")]}


def warehouse_query(home: Path, sql: str) -> list[tuple[t.Any, ...]]:
    with connect_warehouse(home, TENANT, read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_deleted_customer_row_replaced_by_tombstone(two_loads: dict[str, t.Any], worlds: tuple[StripeWorld, StripeWorld]) -> None:
    home, deleted = two_loads["home"], two_loads["deleted"]
    assert deleted
    tombstones = [record for record in records_of(two_loads["second"], "customers") if record["_sdc_deleted_at"]]
    assert len(tombstones) == len(deleted)

    # The policy drops name and address columns; email and phone are kept as hashes. A tombstone
    # clears those personal columns and keeps the others of the last live version.
    rows = warehouse_query(home, "select id, email, phone, currency, created, _sdc_changed_at from stripe.customers")
    by_id = {row[0]: row for row in rows}
    for pseudonym in deleted:
        assert by_id[pseudonym][1:3] == (None, None)
        assert by_id[pseudonym][4] is not None
        assert by_id[pseudonym][5] is not None
    assert sum(row[1] is not None for row in rows) > 0.9 * (len(rows) - len(deleted))
    # Every customer of the first world keeps one row: live or tombstone.
    assert len(rows) == len(by_id) == worlds[1].count("customers") + len(deleted)


def test_tombstone_keeps_deleted_at_in_warehouse(two_loads: dict[str, t.Any]) -> None:
    rows = warehouse_query(two_loads["home"], "select id from stripe.customers where _sdc_deleted_at is not null")

    assert sorted(row[0] for row in rows) == sorted(two_loads["deleted"])


def test_canceled_subscription_is_update(spendlake_env: Path, worlds: tuple[StripeWorld, StripeWorld]) -> None:
    first_world, second_world = worlds
    first = sync(first_world, streams=("subscriptions",))
    second = sync(second_world, final_state(first), streams=("subscriptions",))

    canceled = [
        event["data"]["object"]["id"]
        for event in second_world.listing("events").objects
        if event["type"] == "customer.subscription.deleted" and event["created"] > ANCHOR
    ]
    records = {record["id"]: record for record in records_of(second, "subscriptions")}
    assert canceled
    for subscription_id in canceled:
        assert records[subscription_id]["status"] == "canceled"
        assert records[subscription_id]["_sdc_deleted_at"] is None


def test_second_run_reads_changes_only(worlds: tuple[StripeWorld, StripeWorld]) -> None:
    first_world, second_world = worlds
    first = sync(first_world)
    second = sync(second_world, final_state(first))

    new_charges = second_world.count("charges", gte=ANCHOR + 1)
    charges = records_of(second, "charges")
    assert new_charges <= len(charges) <= new_charges + second_world.count("charges", gte=ANCHOR, lte=ANCHOR)
    assert len({record["id"] for record in charges}) == len(charges)
    changed_email = [
        event["data"]["object"]["id"] for event in second_world.listing("events").objects
        if event["type"] == "customer.updated" and event["created"] > ANCHOR
    ]
    emails = {record["id"]: record["email"] for record in records_of(second, "customers")}
    current = {item["id"]: item["email"] for item in second_world.customers}
    for customer_id in changed_email:
        if customer_id in current:
            assert emails[customer_id] == current[customer_id]
    deleted_prices = [item["id"] for item in deleted_in_tick(second_world, "prices")]
    tombstones = {record["id"] for record in records_of(second, "prices") if record["_sdc_deleted_at"]}
    assert deleted_prices and set(deleted_prices) <= tombstones
    assert [record for record in records_of(second, "balance_transactions") if record["created"] < "2026-09-21T14:13:20+00:00"] == []
    for stream in ("customers", "invoices", "products"):
        assert final_state(second)["bookmarks"][stream]["replication_key"] == "_sdc_changed_at", stream


def test_expired_bookmark_full_refresh_against_sandbox(caplog: pytest.LogCaptureFixture, worlds: tuple[StripeWorld, StripeWorld]) -> None:
    """A bookmark 40 days old reads every product again, with the warning."""
    _, second_world = worlds
    state = {"bookmarks": {"products": {"replication_key": "_sdc_changed_at", "replication_key_value": "2026-08-12T00:00:00+00:00"}}}

    messages = sync(second_world, state, streams=("products",))

    assert {record["id"] for record in records_of(messages, "products")} == {item["id"] for item in second_world.listing("products").objects}
    assert "reading the whole list again" in caplog.text


def test_expired_bookmark_fail_against_sandbox(worlds: tuple[StripeWorld, StripeWorld]) -> None:
    _, second_world = worlds
    old = "2026-08-12T00:00:00+00:00"
    state = {"bookmarks": {"products": {"replication_key": "_sdc_changed_at", "replication_key_value": old}}}
    catalog = selecting(("products",))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/v1/.*"), callback=responses_callback(second_world))
        with captured_stdout() as raw:
            tap = TapStripe(config={**CONFIG, "expired_events": "fail"}, state=state, catalog=catalog, parse_env_config=False)
            with pytest.raises(RuntimeError, match="Set setting 'expired_events' to full_refresh"):
                tap.sync_all()
            sys.stdout.flush()

    assert records_of(parse_messages(raw.getvalue()), "products") == []
    assert tap.state["bookmarks"]["products"]["replication_key_value"] == old


def test_legacy_invoice_keeps_subscription(spendlake_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An invoice.paid event rendered before basil has no `parent`; its row must not lose the subscription."""
    home = spendlake_env
    first_world, second_world = StripeWorld(SEED, ANCHOR, (TICK,)), StripeWorld(SEED, ANCHOR, (TICK, LATER_TICK))
    first = sync(first_world, streams=("invoices",))
    load(home, first)
    with caplog.at_level("INFO"):
        second = sync(second_world, final_state(first), streams=("invoices",))
    load(home, second)

    legacy = [
        event["data"]["object"]["id"] for event in second_world.listing("events").objects
        if event["type"].startswith("invoice.") and event["api_version"] == LEGACY_API_VERSION and event["created"] > TICK
    ]
    assert legacy
    rows = {row[0]: row[1:] for row in warehouse_query(home, "select id, subscription, parent_type, status from stripe.invoices")}
    for invoice_id in legacy:
        current = second_world.retrieve("invoices", invoice_id)
        assert current is not None
        expected = (current["parent"]["subscription_details"]["subscription"], "subscription_details", current["status"])
        assert rows[invoice_id] == expected
    assert "object(s) again in API version 2026-08-26.dahlia" in caplog.text
    # Every live invoice of the sandbox belongs to a subscription.
    live = warehouse_query(home, "select count(*), count(subscription) from stripe.invoices where _sdc_deleted_at is null")
    assert live[0][0] == live[0][1] > 0
