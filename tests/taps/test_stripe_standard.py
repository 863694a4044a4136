"""singer-sdk's standard tap tests for tap-stripe, served by the sandbox's request handler."""

from __future__ import annotations

import re
import typing as t

import pytest
import responses
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from sandbox.stripe_api import DEMO_API_KEY, responses_callback
from sandbox.stripe_data import StripeWorld
from taps.stripe import TapStripe

API = "http://stripe-sandbox.test"
WORLD = StripeWorld(seed=7, anchor=1_790_000_000)


@pytest.fixture(scope="module", autouse=True)
def sandbox_api() -> t.Iterator[responses.RequestsMock]:
    """Route the tap's requests to the in-process sandbox for the whole module."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/v1/.*"), callback=responses_callback(WORLD))
        yield mock


TestTapStripe = get_tap_test_class(
    TapStripe,
    config={"api_key": DEMO_API_KEY, "api_url": API},
    # No record limit: a limit would stop before the second page and hide paging faults.
    suite_config=SuiteConfig(max_records_limit=None),
)


def test_primary_keys_unique_across_full_sync() -> None:
    """The SDK's own key test cannot fail on duplicates, so check uniqueness here."""
    from tests.singer_run import records_of, run_tap

    messages = run_tap(TapStripe, {"api_key": DEMO_API_KEY, "api_url": API})

    for stream in ("charges", "customers", "refunds"):
        ids = [record["id"] for record in records_of(messages, stream)]
        assert len(ids) == len(set(ids)) == WORLD.count(stream), stream
