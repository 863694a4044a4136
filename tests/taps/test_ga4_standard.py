"""singer-sdk's standard tap tests for tap-google-analytics, served by the GA4 sandbox's handlers."""

from __future__ import annotations

import re
import time
import typing as t
from urllib.parse import urlsplit

import pytest
import responses
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from sandbox.ga4_api import GA4Session, handle_ga4_request
from sandbox.ga4_data import GA4World
from taps.engine.stream import DeclarativeStream
from taps.google_analytics import TapGoogleAnalytics
from tests.singer_run import catalog_selecting_all
from tests.taps.test_ga4_sandbox import API, demo_config

# The tap reads through the real today, so the sandbox's days end an hour ago.
WORLD = GA4World(seed=13, anchor=int(time.time()) - 3600)
CONFIG = demo_config(
    start_date=time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 2 * 86400)),
    custom_reports=[{"name": "sources", "dimensions": ["sessionSourceMedium"], "metrics": ["activeUsers"]}],
)


@pytest.fixture(scope="module", autouse=True)
def sandbox_api() -> t.Iterator[responses.RequestsMock]:
    """Route the tap's requests to the in-process GA4 handlers, without retry waits."""
    session = GA4Session()

    def callback(request: t.Any) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(request.url)
        body = request.body or b""
        headers = {"Host": parts.netloc, **request.headers}
        return handle_ga4_request(WORLD, session, request.method, parts.path, parts.query, headers, body if isinstance(body, bytes) else body.encode())

    with pytest.MonkeyPatch.context() as patch, responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        patch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=callback)
        yield mock


TestTapGoogleAnalytics = get_tap_test_class(
    TapGoogleAnalytics,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
    catalog=catalog_selecting_all(TapGoogleAnalytics, CONFIG),
)
