"""singer-sdk's standard tap tests for tap-magento, served by the sandbox's request handlers."""

from __future__ import annotations

import re
import typing as t

import pytest
import responses
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from sandbox.magento_api import DEMO_TOKEN, MagentoSession, responses_callback
from sandbox.magento_data import MagentoWorld
from taps.magento import TapMagento
from tests.singer_run import records_of, run_tap

API = "http://magento-sandbox.test/rest/default"
WORLD = MagentoWorld(seed=7, anchor=1_790_000_000)
# A page size well below every list's total, so each stream reads several pages.
CONFIG = {"access_token": DEMO_TOKEN, "api_url": API, "page_size": 250}


@pytest.fixture(scope="module", autouse=True)
def sandbox_api() -> t.Iterator[responses.RequestsMock]:
    """Route the tap's requests to the in-process sandbox, with input limits on, for the whole module."""
    session = MagentoSession(input_limits=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/V1/.*"), callback=responses_callback(WORLD, session))
        yield mock


TestTapMagento = get_tap_test_class(
    TapMagento,
    config=CONFIG,
    # No record limit: a limit would stop before the second page and hide paging faults.
    suite_config=SuiteConfig(max_records_limit=None),
)


def test_primary_keys_unique_across_full_sync() -> None:
    """The SDK's own key test cannot fail on duplicates, so check uniqueness and counts here."""
    messages = run_tap(TapMagento, CONFIG)

    for stream, key in (("orders", "entity_id"), ("invoices", "entity_id"), ("creditmemos", "entity_id"), ("products", "id"), ("customers", "id")):
        ids = [record[key] for record in records_of(messages, stream)]
        assert len(ids) == len(set(ids)) == len(WORLD.collection(stream)), stream
    assert [record["code"] for record in records_of(messages, "store_views")] == ["default", "de"]
