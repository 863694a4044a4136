"""Auth kinds of the declarative engine against HTTP mocked with `responses` and one real local server."""

from __future__ import annotations

import base64
import copy
import http.server
import json
import logging
import pickle
import threading
import time
import typing as t
from urllib.parse import parse_qs, quote, quote_plus, urlparse

import pytest
import requests
import responses
from requests.auth import AuthBase
from singer_sdk import RESTStream, Tap
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.pagination import JSONPathPaginator

from taps.engine.auth import (
    AUTH_SCHEMA,
    AUTH_SCHEMAS,
    MASK,
    OAuth2RefreshAuth,
    ReauthorizationRequired,
    Secret,
    build_authenticator,
    mask_secrets,
    register_secret,
)
from tests.singer_run import records_of, run_tap

BASE = "http://api.test"
TOKEN_URL = "http://oauth.test/token"

API_KEY = "key/with+plus=9z8y7x"
BEARER_TOKEN = "bearer-token-4c1d2e"
STRIPE_KEY = "sk_test_basic_user_77aa"
CLIENT_ID = "client-id-123.apps.example"
CLIENT_SECRET = "client-secret-5f3a9c"
REFRESH_TOKEN = "1//refresh-token-9d8e7f"

CONFIG = {
    "api_key": API_KEY,
    "bearer_token": BEARER_TOKEN,
    "stripe_key": STRIPE_KEY,
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "refresh_token": REFRESH_TOKEN,
    "token_url": TOKEN_URL,
}

OAUTH_DECLARATION: dict[str, t.Any] = {
    "type": "oauth2_refresh",
    "token_url": "{config.token_url}",
    "client_id": "{config.client_id}",
    "client_secret": "{config.client_secret}",
    "refresh_token": "{config.refresh_token}",
    "refresh_margin_seconds": 1,
}

TOKEN_LIFETIME_SECONDS = 5
PAGE_SECONDS = 2


class FakeClock:
    """A monotonic clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TokenEndpoint:
    """An OAuth token endpoint whose access tokens expire after a fixed lifetime on the fake clock."""

    def __init__(self, clock: FakeClock, lifetime: int = TOKEN_LIFETIME_SECONDS) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.expiry: dict[str, float] = {}
        self.forms: list[dict[str, list[str]]] = []

    def issue(self, request: t.Any) -> tuple[int, dict[str, str], str]:
        self.forms.append(parse_qs(request.body))
        token = f"ya29.access-{len(self.forms)}-a8b7c6d5"
        self.expiry[token] = self.clock() + self.lifetime
        body = {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}
        return 200, {}, json.dumps(body)

    def is_valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        expiry = self.expiry.get(authorization.removeprefix("Bearer "))
        return expiry is not None and self.clock() < expiry

    def secrets(self) -> list[str]:
        return [*self.expiry, CLIENT_SECRET, REFRESH_TOKEN]


class PagedApi:
    """An API of numbered pages that takes PAGE_SECONDS of fake time per request and checks every token."""

    def __init__(self, endpoint: TokenEndpoint, pages: int) -> None:
        self.endpoint = endpoint
        self.pages = pages
        self.seen: list[tuple[str | None, bool]] = []

    def serve(self, request: t.Any) -> tuple[int, dict[str, str], str]:
        authorization = request.headers.get("Authorization")
        valid = self.endpoint.is_valid(authorization)
        self.seen.append((authorization, valid))
        self.endpoint.clock.advance(PAGE_SECONDS)
        if not valid:
            return 401, {}, json.dumps({"error": {"status": "UNAUTHENTICATED"}})

        page = int(parse_qs(urlparse(request.url).query).get("page", ["1"])[0])
        body: dict[str, t.Any] = {"data": [{"id": page}]}
        if page < self.pages:
            body["next"] = str(page + 1)
        return 200, {}, json.dumps(body)


def assert_no_secret_logged(caplog: pytest.LogCaptureFixture, secrets: t.Iterable[str]) -> None:
    """Check every captured record, message and traceback, for each secret and its URL-encoded forms."""
    assert caplog.records, "expected some log records to scan"
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(record.exc_text or "")
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            leaks = [text for text in texts if form in text]
            assert not leaks, f"a log record contains a secret: {mask_secrets(leaks[0])[:200]}"


def oauth_auth(clock: FakeClock, declaration: dict[str, t.Any] | None = None) -> OAuth2RefreshAuth:
    auth = build_authenticator(declaration or OAUTH_DECLARATION, CONFIG, source_name="google_ads", clock=clock)
    assert isinstance(auth, OAuth2RefreshAuth)
    return auth


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def mock() -> t.Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as requests_mock:
        yield requests_mock


# Secret -----------------------------------------------------------------------


def test_secret_hides_value_in_text() -> None:
    secret = Secret("hunter2-value")

    assert str(secret) == MASK
    assert repr(secret) == f"Secret('{MASK}')"
    assert f"{secret}" == MASK
    assert f"{secret!r}" == f"Secret('{MASK}')"
    assert "hunter2" not in repr({"token": secret})
    assert secret.reveal() == "hunter2-value"


def test_secret_cannot_leak_by_concatenation_or_pickle() -> None:
    secret = Secret("hunter2-value")

    with pytest.raises(TypeError):
        _ = "Bearer " + secret  # type: ignore[operator]
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps({"token": secret})
    assert copy.deepcopy(secret) is secret


def test_secret_equality_compares_values() -> None:
    assert Secret("abc-123") == Secret("abc-123")
    assert Secret("abc-123") != Secret("abc-124")
    assert Secret(Secret("abc-123")).reveal() == "abc-123"


# Static kinds -----------------------------------------------------------------


def send(auth: AuthBase, url: str = f"{BASE}/v1/items", **params: t.Any) -> requests.PreparedRequest:
    """Send one GET through a session with `auth` and return the request the mock received."""
    with responses.RequestsMock() as requests_mock:
        requests_mock.add(responses.GET, f"{BASE}/v1/items", json={"data": []})
        requests.Session().get(url, params=params, auth=auth, timeout=5)
        return requests_mock.calls[0].request


def test_bearer_sets_authorization_header() -> None:
    auth = build_authenticator({"type": "bearer", "token": "{config.bearer_token}"}, CONFIG, source_name="acme")

    request = send(auth)

    assert request.headers["Authorization"] == f"Bearer {BEARER_TOKEN}"


def test_api_key_in_header() -> None:
    declaration = {"type": "api_key", "name": "X-Api-Key", "value": "{config.api_key}", "in": "header"}
    auth = build_authenticator(declaration, CONFIG, source_name="acme")

    request = send(auth, limit=2)

    assert request.headers["X-Api-Key"] == API_KEY
    assert "Authorization" not in request.headers
    assert parse_qs(urlparse(request.url).query) == {"limit": ["2"]}


def test_api_key_in_query_keeps_existing_params() -> None:
    declaration = {"type": "api_key", "name": "access_token", "value": "{config.api_key}", "in": "query"}
    auth = build_authenticator(declaration, CONFIG, source_name="facebook")

    request = send(auth, **{"limit": 2, "created[gte]": 1_700_000_000, "after": ""})

    query = urlparse(request.url).query
    assert parse_qs(query, keep_blank_values=True) == {
        "limit": ["2"],
        "created[gte]": ["1700000000"],
        "after": [""],
        "access_token": [API_KEY],
    }
    assert query.startswith("limit=2&created%5Bgte%5D=1700000000&after=&")
    assert "Authorization" not in request.headers


def test_query_key_applied_twice_once() -> None:
    declaration = {"type": "api_key", "name": "access_token", "value": "{config.api_key}", "in": "query"}
    auth = build_authenticator(declaration, CONFIG, source_name="facebook")
    prepared = requests.Request("GET", f"{BASE}/v1/items", params={"limit": 2}).prepare()

    auth(auth(prepared))

    assert parse_qs(urlparse(prepared.url).query) == {"limit": ["2"], "access_token": [API_KEY]}


def test_basic_puts_key_as_username() -> None:
    declaration = {"type": "basic", "username": "{config.stripe_key}", "password": ""}
    auth = build_authenticator(declaration, CONFIG, source_name="stripe")

    request = send(auth)

    scheme, encoded = request.headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{STRIPE_KEY}:"


def test_none_sends_no_credentials() -> None:
    auth = build_authenticator({"type": "none"}, CONFIG, source_name="public")

    request = send(auth, limit=2)

    assert "Authorization" not in request.headers
    assert parse_qs(urlparse(request.url).query) == {"limit": ["2"]}


def test_authenticator_repr_shows_no_secret() -> None:
    declarations = [
        {"type": "bearer", "token": "{config.bearer_token}"},
        {"type": "api_key", "name": "access_token", "value": "{config.api_key}", "in": "query"},
        {"type": "api_key", "name": "X-Api-Key", "value": "{config.api_key}"},
        {"type": "basic", "username": "{config.stripe_key}", "password": "{config.client_secret}"},
        OAUTH_DECLARATION,
    ]
    secrets = [API_KEY, BEARER_TOKEN, STRIPE_KEY, CLIENT_SECRET, REFRESH_TOKEN]

    for declaration in declarations:
        auth = build_authenticator(declaration, CONFIG, source_name="acme")
        texts = [repr(auth), str(auth), repr(vars(auth))]
        for secret in secrets:
            assert not any(secret in text for text in texts), f"{declaration['type']} shows a secret"
        assert MASK in repr(auth)


# Declaration and config errors ----------------------------------------------------


@pytest.mark.parametrize(("declaration", "shown"), [({"type": "digest"}, "'digest'"), ({}, "None")])
def test_unknown_kind_lists_allowed_values(declaration: dict[str, t.Any], shown: str) -> None:
    with pytest.raises(ConfigValidationError) as raised:
        build_authenticator(declaration, CONFIG, source_name="acme")

    assert raised.value.errors == [
        f"auth.type: {shown} is not one of the allowed values: none, bearer, api_key, basic, oauth2_refresh, "
        "google_service_account, first_of"
    ]


def test_declaration_problems_reported_together() -> None:
    declaration = {"type": "api_key", "value": "sk_live_literal", "in": "cookie"}

    with pytest.raises(ConfigValidationError) as raised:
        build_authenticator(declaration, CONFIG, source_name="acme")

    errors = raised.value.errors
    assert len(errors) == 3
    assert any("'name' is a required property" in error for error in errors)
    assert "auth.in: 'cookie' is not one of the allowed values: header, query" in errors
    assert any(error.startswith("auth.value: must be exactly one template such as {config.value}") for error in errors)
    assert not any("sk_live_literal" in error for error in errors)


def test_unset_settings_reported_together() -> None:
    config = {key: value for key, value in CONFIG.items() if key not in ("client_secret", "refresh_token")}

    with pytest.raises(ConfigValidationError) as raised:
        build_authenticator(OAUTH_DECLARATION, config, source_name="google_ads")

    assert raised.value.errors == [
        "auth.client_secret: setting 'client_secret' has no value; set it in the tap config.",
        "auth.refresh_token: setting 'refresh_token' has no value; set it in the tap config.",
    ]


def test_schemas_describe_every_property() -> None:
    assert set(AUTH_SCHEMAS) == {"none", "bearer", "api_key", "basic", "oauth2_refresh", "google_service_account", "first_of"}
    assert AUTH_SCHEMA["oneOf"] == list(AUTH_SCHEMAS.values())

    for kind, schema in AUTH_SCHEMAS.items():
        assert schema["properties"]["type"]["const"] == kind
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{kind}.{name} has no description"
    assert AUTH_SCHEMAS["oauth2_refresh"]["properties"]["refresh_margin_seconds"]["default"] == 60
    assert AUTH_SCHEMAS["api_key"]["properties"]["in"]["enum"] == ["header", "query"]


# OAuth 2.0 refresh-token grant ------------------------------------------------------


def test_token_request_sends_refresh_grant(mock: responses.RequestsMock) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    mock.add(responses.GET, f"{BASE}/v1/items", json={})
    declaration = {**OAUTH_DECLARATION, "scopes": ["https://www.googleapis.com/auth/adwords", "openid"]}

    requests.Session().get(f"{BASE}/v1/items", auth=oauth_auth(clock, declaration), timeout=5)

    assert endpoint.forms == [
        {
            "grant_type": ["refresh_token"],
            "client_id": [CLIENT_ID],
            "client_secret": [CLIENT_SECRET],
            "refresh_token": [REFRESH_TOKEN],
            "scope": ["https://www.googleapis.com/auth/adwords openid"],
        }
    ]
    assert mock.calls[1].request.headers["Authorization"] == "Bearer ya29.access-1-a8b7c6d5"


def test_token_request_ignores_session_auth(mock: responses.RequestsMock) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    session = requests.Session()
    session.auth = build_authenticator({"type": "bearer", "token": "{config.bearer_token}"}, CONFIG, source_name="acme")
    auth = build_authenticator(OAUTH_DECLARATION, CONFIG, source_name="google_ads", clock=clock, session=session)

    auth(requests.Request("GET", f"{BASE}/v1/items").prepare())

    assert len(endpoint.forms) == 1
    assert "Authorization" not in mock.calls[0].request.headers


def make_paged_tap(auth: AuthBase) -> type[Tap]:
    """Build a one-stream singer-sdk tap whose requests all use one shared `auth`."""

    class PagesStream(RESTStream[t.Any]):
        name = "pages"
        path = "/v1/pages"
        url_base = BASE
        records_jsonpath = "$.data[*]"
        primary_keys: t.ClassVar[list[str]] = ["id"]
        schema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {"id": {"type": "integer"}}}

        @property
        def authenticator(self) -> AuthBase:
            return auth

        def get_new_paginator(self) -> JSONPathPaginator:
            return JSONPathPaginator("$.next")

        def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict[str, t.Any]:
            return {"page": next_page_token} if next_page_token else {}

    class PagesTap(Tap):
        name = "tap-pages"
        package_name = "spendlake"
        config_jsonschema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}

        def discover_streams(self) -> list[RESTStream[t.Any]]:
            return [PagesStream(self)]

    return PagesTap


def test_long_read_refreshes_before_each_expiry(mock: responses.RequestsMock, debug_logs: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock)
    api = PagedApi(endpoint, pages=20)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    mock.add_callback(responses.GET, f"{BASE}/v1/pages", callback=api.serve)
    auth = oauth_auth(clock)

    messages = run_tap(make_paged_tap(auth), config={})

    assert [record["id"] for record in records_of(messages, "pages")] == list(range(1, 21))
    assert len(api.seen) == 20
    assert all(valid for _, valid in api.seen), "a request carried an expired or unknown token"
    # Tokens live 5 s and are refreshed 1 s early, while each page takes 2 s: one token per two pages.
    assert len(endpoint.forms) == 10
    assert auth.token_requests == 10
    assert_no_secret_logged(debug_logs, endpoint.secrets())


def test_401_refreshes_once_and_resends(mock: responses.RequestsMock, debug_logs: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock, lifetime=3600)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    mock.add(responses.GET, f"{BASE}/v1/items", status=401, json={"error": "revoked"})
    mock.add(responses.GET, f"{BASE}/v1/items", json={"data": [1]})
    auth = oauth_auth(clock)

    response = requests.Session().get(f"{BASE}/v1/items", params={"limit": 2}, auth=auth, timeout=5)

    assert response.status_code == 200
    assert response.json() == {"data": [1]}
    assert len(endpoint.forms) == 2
    api_calls = [call for call in mock.calls if call.request.url.startswith(BASE)]
    assert [call.request.headers["Authorization"] for call in api_calls] == [
        "Bearer ya29.access-1-a8b7c6d5",
        "Bearer ya29.access-2-a8b7c6d5",
    ]
    assert parse_qs(urlparse(api_calls[1].request.url).query) == {"limit": ["2"]}
    assert [old.status_code for old in response.history] == [401]
    assert_no_secret_logged(debug_logs, endpoint.secrets())


def test_second_401_fails(mock: responses.RequestsMock, debug_logs: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock, lifetime=3600)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    mock.add(responses.GET, f"{BASE}/v1/items", status=401, json={"error": "no access"})
    auth = oauth_auth(clock)

    response = requests.Session().get(f"{BASE}/v1/items", auth=auth, timeout=5)

    assert response.status_code == 401
    with pytest.raises(requests.HTTPError, match="401"):
        response.raise_for_status()
    assert len(endpoint.forms) == 2
    assert len([call for call in mock.calls if call.request.url.startswith(BASE)]) == 2
    assert_no_secret_logged(debug_logs, endpoint.secrets())


def test_auth_applied_twice_resends_once(mock: responses.RequestsMock) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock, lifetime=3600)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    mock.add(responses.GET, f"{BASE}/v1/items", status=401)
    auth = oauth_auth(clock)
    prepared = requests.Request("GET", f"{BASE}/v1/items").prepare()

    # singer-sdk applies auth in `prepare_request` and again right before sending.
    response = requests.Session().send(auth(auth(prepared)), timeout=5)

    assert response.status_code == 401
    assert len([call for call in mock.calls if call.request.url.startswith(BASE)]) == 2
    assert len(endpoint.forms) == 2


def test_401_after_another_refresh_reuses_new_token(mock: responses.RequestsMock) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock, lifetime=3600)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    mock.add(responses.GET, f"{BASE}/v1/items", status=401)
    mock.add(responses.GET, f"{BASE}/v1/items", json={})
    auth = oauth_auth(clock)
    stale = requests.Request("GET", f"{BASE}/v1/items").prepare()
    auth(stale)
    auth._refresh()  # another thread refreshed while `stale` was in flight

    response = requests.Session().send(stale, timeout=5)

    assert response.status_code == 200
    assert len(endpoint.forms) == 2
    assert mock.calls[-1].request.headers["Authorization"] == "Bearer ya29.access-2-a8b7c6d5"


def test_invalid_grant_requires_reauthorisation(mock: responses.RequestsMock, debug_logs: pytest.LogCaptureFixture) -> None:
    body = {"error": "invalid_grant", "error_description": f"Token {REFRESH_TOKEN} has been expired or revoked."}
    mock.add(responses.POST, TOKEN_URL, status=400, json=body)
    auth = oauth_auth(FakeClock())

    with pytest.raises(ReauthorizationRequired, match="Re-authorise the source 'google_ads'") as raised:
        requests.Session().get(f"{BASE}/v1/items", auth=auth, timeout=5)

    assert isinstance(raised.value, FatalAPIError)
    assert "invalid_grant" in str(raised.value)
    assert REFRESH_TOKEN not in str(raised.value)
    assert "has been expired or revoked" not in str(raised.value), "the response body must not be echoed"
    logging.getLogger("tests.engine.auth").error("Sync failed", exc_info=raised.value)  # as a tap logs a fatal error
    assert_no_secret_logged(debug_logs, [REFRESH_TOKEN, CLIENT_SECRET])


def test_invalid_grant_on_401_refresh(mock: responses.RequestsMock) -> None:
    # `responses` returns registrations for the same URL in order: first a token, then the rejection.
    mock.add(responses.POST, TOKEN_URL, json={"access_token": "ya29.first-token-1a2b", "expires_in": 3600})
    mock.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
    mock.add(responses.GET, f"{BASE}/v1/items", status=401)
    auth = oauth_auth(FakeClock())

    with pytest.raises(ReauthorizationRequired, match="Re-authorise the source 'google_ads'"):
        requests.Session().get(f"{BASE}/v1/items", auth=auth, timeout=5)

    assert auth.token_requests == 2


def test_other_token_errors_are_fatal_without_reauthorisation(mock: responses.RequestsMock) -> None:
    mock.add(responses.POST, TOKEN_URL, status=401, json={"error": "invalid_client", "error_description": "x"})

    with pytest.raises(FatalAPIError, match=r"returned 401 \(invalid_client\); check client_id") as raised:
        oauth_auth(FakeClock())(requests.Request("GET", f"{BASE}/v1/items").prepare())

    assert not isinstance(raised.value, ReauthorizationRequired)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_token_endpoint_overload_is_retriable(mock: responses.RequestsMock, status: int) -> None:
    mock.add(responses.POST, TOKEN_URL, status=status, body=f"upstream error {CLIENT_SECRET}")

    with pytest.raises(RetriableAPIError, match=f"returned {status}; the request can be retried") as raised:
        oauth_auth(FakeClock())(requests.Request("GET", f"{BASE}/v1/items").prepare())

    assert CLIENT_SECRET not in str(raised.value)


def test_token_endpoint_unreachable_is_retriable(mock: responses.RequestsMock) -> None:
    mock.add(responses.POST, TOKEN_URL, body=requests.ConnectionError(f"failed for {TOKEN_URL}?secret={CLIENT_SECRET}"))

    with pytest.raises(RetriableAPIError, match="ConnectionError while requesting an access token") as raised:
        oauth_auth(FakeClock())(requests.Request("GET", f"{BASE}/v1/items").prepare())

    assert CLIENT_SECRET not in str(raised.value)


def test_token_response_without_access_token_fails(mock: responses.RequestsMock) -> None:
    mock.add(responses.POST, TOKEN_URL, json={"token_type": "Bearer"})

    with pytest.raises(FatalAPIError, match="without an access_token; check token_url"):
        oauth_auth(FakeClock())(requests.Request("GET", f"{BASE}/v1/items").prepare())


def test_concurrent_requests_share_one_refresh(mock: responses.RequestsMock) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock, lifetime=3600)

    def slow_issue(request: t.Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.02)  # hold the first refresh long enough for the other threads to queue up
        return endpoint.issue(request)

    mock.add_callback(responses.POST, TOKEN_URL, callback=slow_issue)
    auth = oauth_auth(clock)
    barrier = threading.Barrier(8)
    headers: list[str] = []

    def authenticate() -> None:
        barrier.wait()
        headers.append(auth(requests.Request("GET", f"{BASE}/v1/items").prepare()).headers["Authorization"])

    threads = [threading.Thread(target=authenticate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(endpoint.forms) == 1
    assert headers == ["Bearer ya29.access-1-a8b7c6d5"] * 8


def test_margin_capped_at_half_lifetime(mock: responses.RequestsMock) -> None:
    clock = FakeClock()
    endpoint = TokenEndpoint(clock, lifetime=10)
    mock.add_callback(responses.POST, TOKEN_URL, callback=endpoint.issue)
    auth = oauth_auth(clock, {**OAUTH_DECLARATION, "refresh_margin_seconds": 60})
    request = requests.Request("GET", f"{BASE}/v1/items").prepare()

    auth(request)
    clock.advance(4.9)
    auth(request)
    assert len(endpoint.forms) == 1

    clock.advance(0.1)
    auth(request)
    assert len(endpoint.forms) == 2


# Log masking ------------------------------------------------------------------------


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's method name
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - http.server's signature
        """Keep the test server's access log, which shows the query string, off stderr."""


@pytest.fixture
def local_server() -> t.Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_urllib3_debug_line_masks_query_key(local_server: str, debug_logs: pytest.LogCaptureFixture) -> None:
    declaration = {"type": "api_key", "name": "key", "value": "{config.api_key}", "in": "query"}
    auth = build_authenticator(declaration, CONFIG, source_name="acme")

    response = requests.Session().get(f"{local_server}/v1/items", params={"limit": 2}, auth=auth, timeout=5)

    assert response.status_code == 200
    assert parse_qs(urlparse(response.url).query)["key"] == [API_KEY]
    request_lines = [
        record.getMessage() for record in debug_logs.records if record.name == "urllib3.connectionpool"
    ]
    assert any(f'"GET /v1/items?limit=2&key={MASK} HTTP/1.1" 200' in line for line in request_lines), request_lines
    assert_no_secret_logged(debug_logs, [API_KEY])


def test_logged_traceback_is_masked(debug_logs: pytest.LogCaptureFixture) -> None:
    register_secret("traceback-secret-31337")
    logger = logging.getLogger("tests.engine.auth")

    try:
        raise ValueError("request failed with key traceback-secret-31337")
    except ValueError:
        logger.exception("Request failed for %s", "traceback-secret-31337")

    record = debug_logs.records[-1]
    assert record.getMessage() == f"Request failed for {MASK}"
    assert f"ValueError: request failed with key {MASK}" in debug_logs.text
    assert_no_secret_logged(debug_logs, ["traceback-secret-31337"])


def test_short_values_are_not_masked() -> None:
    register_secret("abc")

    assert mask_secrets("abc abcdef") == "abc abcdef"
