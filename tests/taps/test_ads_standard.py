"""singer-sdk's standard tap tests for tap-google-ads and tap-facebook, served by the sandbox's handlers."""

from __future__ import annotations

import re
import time
import typing as t
from urllib.parse import urlsplit

import pytest
import responses
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from sandbox.ads_data import AdsWorld
from sandbox.google_ads_api import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_DEVELOPER_TOKEN,
    DEMO_REFRESH_TOKEN,
    GoogleAdsSession,
    handle_google_ads_request,
)
from sandbox.meta_api import DEMO_ACCESS_TOKEN, MetaSession, handle_meta_request
from taps.engine.stream import DeclarativeStream
from taps.facebook import TapFacebook
from taps.google_ads import TapGoogleAds
from tests.singer_run import catalog_selecting_all

API = "http://ads-sandbox.test"
# The taps read through the real today, so the sandbox's days end an hour ago.
WORLD = AdsWorld(seed=11, anchor=int(time.time()) - 3600)


def handler_callback(handle: t.Callable[..., tuple[int, dict[str, str], bytes]], session: t.Any) -> t.Callable[[t.Any], t.Any]:
    def callback(request: t.Any) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(request.url)
        body = request.body or b""
        # urllib3 adds Host on the wire; the sandbox builds next links from it.
        headers = {"Host": parts.netloc, **request.headers}
        return handle(WORLD, session, request.method, parts.path, parts.query, headers, body if isinstance(body, bytes) else body.encode())

    return callback


@pytest.fixture(scope="module", autouse=True)
def sandbox_api() -> t.Iterator[responses.RequestsMock]:
    """Route both taps' requests to the in-process sandbox handlers, without poll waits."""
    with pytest.MonkeyPatch.context() as patch, responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        patch.setattr(DeclarativeStream, "retry_sleep", staticmethod(lambda seconds: None))
        google = handler_callback(handle_google_ads_request, GoogleAdsSession())
        meta = handler_callback(handle_meta_request, MetaSession())
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, re.compile(re.escape(API) + r"/(google/|v26/).*"), callback=google)
            mock.add_callback(method, re.compile(re.escape(API) + r"/v26\.0/.*"), callback=meta)
        yield mock


TestTapGoogleAds = get_tap_test_class(
    TapGoogleAds,
    config={
        "customer_ids": ["4567890123", "7890123456"],
        "login_customer_id": "1112223334",
        "developer_token": DEMO_DEVELOPER_TOKEN,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": DEMO_REFRESH_TOKEN,
        "api_url": API,
        "token_url": f"{API}/google/oauth2/token",
    },
    suite_config=SuiteConfig(max_records_limit=None),
)

META_CONFIG = {
    "account_ids": ["act_100200300400500", "act_600700800900100"],
    "access_token": DEMO_ACCESS_TOKEN,
    "api_url": API,
    "start_date": time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 10 * 86400)),
}

# The product breakdown is off by default; select it so the suite covers every stream.
TestTapFacebook = get_tap_test_class(
    TapFacebook,
    config=META_CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
    catalog=catalog_selecting_all(TapFacebook, META_CONFIG),
)
