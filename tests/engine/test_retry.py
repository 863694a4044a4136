"""Error classification and retries of `taps.engine.retry`, on a plain singer-sdk stream, no YAML."""

from __future__ import annotations

import json
import sys
import typing as t
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import responses
from jsonschema import Draft202012Validator
from responses import matchers
from responses.registries import OrderedRegistry
from singer_sdk import RESTStream, Tap
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.streams import rest as rest_module

from taps.engine.retry import (
    ERROR_HANDLING_SCHEMA,
    RETRIED_EXCEPTIONS,
    Decision,
    ErrorPolicy,
    Outcome,
    QuotaExhaustedError,
    RetryingStreamMixin,
    ThrottledError,
    TruncatedResponseError,
    build_error_policy,
    classify,
)
from tests.singer_run import captured_stdout, parse_messages

BASE = "http://api.test"
URL = f"{BASE}/v1/orders"
TOKEN = "tok-secret-9f8e7d"
FIRST_PAGE = {"access_token": TOKEN, "limit": "2"}
SECOND_PAGE = {"access_token": TOKEN, "limit": "2", "after": "p2"}

ORDERS = [
    {"id": "o1", "updated": "2026-01-02T00:00:00+00:00"},
    {"id": "o2", "updated": "2026-01-03T00:00:00+00:00"},
    {"id": "o3", "updated": "2026-01-04T00:00:00+00:00"},
]

META_THROTTLE = {
    "throttle": [
        {"status": 400, "body": [{"path": "error.code", "values": [4, 17, 32, 613, {"minimum": 80000, "maximum": 80014}]}]},
    ],
    "safe_fields": ["error.code", "error.type", "error.message"],
}

GOOGLE_QUOTA = {
    "quota_exhausted": [
        {
            "status": 429,
            "body": [
                {"path": "error.status", "values": ["RESOURCE_EXHAUSTED"]},
                {"path": "error.message", "contains": ["per day", "daily"]},
            ],
        },
        {"status": 429, "body": [{"path": "error.details[].errors[].errorCode.quotaError", "values": ["RESOURCE_EXHAUSTED"]}]},
    ],
    "retry_after": {"body_path": "error.details[].retryDelay"},
    "safe_fields": ["error.status", "error.message"],
}

GA4_DAILY_QUOTA = {
    "error": {"code": 429, "message": "Exhausted property tokens per day. Retry after the quota resets.", "status": "RESOURCE_EXHAUSTED"},
}


class OrdersStream(RetryingStreamMixin, RESTStream[t.Any]):
    """A cursor-paginated stream with an incremental bookmark, as a declared stream would be."""

    name = "orders"
    path = "/v1/orders"
    url_base = BASE
    primary_keys = ("id",)
    replication_key = "updated"
    records_jsonpath = "$.data[*]"
    next_page_token_jsonpath = "$.next"
    is_sorted = False
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "updated": {"type": "string", "format": "date-time"}},
    }

    def get_url_params(self, context: t.Any, next_page_token: t.Any | None) -> dict[str, t.Any]:
        params = {"access_token": TOKEN, "limit": 2}
        if next_page_token:
            params["after"] = next_page_token
        return params


class Run:
    """What one sync produced: messages, the waits requested and the error raised, if any."""

    def __init__(self) -> None:
        self.messages: list[dict[str, t.Any]] = []
        self.waits: list[float] = []
        self.error: Exception | None = None

    def record_ids(self) -> list[str]:
        return [m["record"]["id"] for m in self.messages if m["type"] == "RECORD"]

    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]


def sync(section: dict[str, t.Any] | None = None, state: dict[str, t.Any] | None = None, jitter: bool = False) -> Run:
    """Sync the orders stream with the given `errors` section; waits are recorded, never slept."""
    run = Run()
    policy = build_error_policy(section)

    class RetryTap(Tap):
        name = "tap-retry-test"
        config_jsonschema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}

        def discover_streams(self) -> list[OrdersStream]:
            stream = OrdersStream(self)
            stream.error_policy = policy
            stream.retry_sleep = run.waits.append
            if not jitter:
                stream.retry_jitter = lambda value: value
            stream.STATE_MSG_FREQUENCY = 1
            return [stream]

    with captured_stdout() as raw:
        tap = RetryTap(config={}, state=state, parse_env_config=False)
        try:
            tap.sync_all()
        except Exception as error:  # noqa: BLE001 - the test inspects the error
            run.error = error
        sys.stdout.flush()
    run.messages = parse_messages(raw.getvalue())
    return run


def page(rows: list[dict[str, t.Any]], next_cursor: str | None) -> dict[str, t.Any]:
    return {"data": rows, "next": next_cursor}


def add_page(mock: responses.RequestsMock, query: dict[str, str], **kwargs: t.Any) -> None:
    mock.add(responses.GET, URL, match=[matchers.query_param_matcher(query)], **kwargs)


def add_first_page(mock: responses.RequestsMock) -> None:
    add_page(mock, FIRST_PAGE, json=page(ORDERS[:2], "p2"))


def add_second_page(mock: responses.RequestsMock) -> None:
    add_page(mock, SECOND_PAGE, json=page(ORDERS[2:], None))


@pytest.fixture
def api() -> t.Iterator[responses.RequestsMock]:
    """Responses served strictly in the order added, each once."""
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        yield mock


def test_retry_after_seconds_honoured(api: responses.RequestsMock) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, status=429, headers={"Retry-After": "7"}, json={"error": {"code": "rate_limit"}})
    add_second_page(api)

    run = sync()

    assert run.error is None
    assert len(api.calls) == 3
    assert run.waits == [7.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def test_huge_retry_after_capped(api: responses.RequestsMock) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, status=429, headers={"Retry-After": "86400"})
    add_page(api, SECOND_PAGE, status=429, headers={"Retry-After": "86400"})
    add_second_page(api)

    run = sync({"max_wait_seconds": 30})

    assert run.error is None
    assert len(api.calls) == 4
    assert run.waits == [30.0, 30.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def test_meta_throttle_in_400_body(api: responses.RequestsMock) -> None:
    add_page(api, FIRST_PAGE, status=400, json={"error": {"code": 80004, "type": "OAuthException", "message": "(#80004) too many calls"}})
    add_page(api, FIRST_PAGE, status=400, json={"error": {"code": 17, "type": "OAuthException", "message": "(#17) user request limit"}})
    add_first_page(api)
    add_second_page(api)

    run = sync(META_THROTTLE)

    assert run.error is None
    assert len(api.calls) == 4
    assert run.waits == [1.0, 2.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def test_meta_other_400_fails_at_once(api: responses.RequestsMock) -> None:
    add_page(api, FIRST_PAGE, status=400, json={"error": {"code": 100, "type": "OAuthException", "message": "Invalid parameter"}})

    run = sync(META_THROTTLE)

    assert isinstance(run.error, FatalAPIError)
    assert len(api.calls) == 1
    assert run.waits == []
    assert "error.code=100" in str(run.error)
    assert "error.message=Invalid parameter" in str(run.error)


def test_server_error_then_success(api: responses.RequestsMock) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, status=500, body="<html>oops</html>")
    add_second_page(api)

    run = sync()

    assert run.error is None
    assert len(api.calls) == 3
    assert run.waits == [1.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def test_truncated_json_then_success(api: responses.RequestsMock) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, status=200, body='{"data": [{"id": "o3", "upd', content_type="application/json")
    add_second_page(api)

    run = sync()

    assert run.error is None
    assert len(api.calls) == 3
    assert run.waits == [1.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def test_empty_200_body_retried(api: responses.RequestsMock) -> None:
    add_page(api, FIRST_PAGE, status=200, body="")
    add_first_page(api)
    add_second_page(api)

    run = sync()

    assert run.error is None
    assert len(api.calls) == 3
    assert run.waits == [1.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        requests.exceptions.ConnectionError("connection aborted"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect timed out"),
    ],
    ids=["reset", "connection-error", "read-timeout", "connect-timeout"],
)
def test_transport_error_then_success(api: responses.RequestsMock, failure: Exception) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, body=failure)
    add_second_page(api)

    run = sync()

    assert run.error is None
    assert len(api.calls) == 3
    assert run.waits == [1.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def test_tries_exhausted_raises_last_error(api: responses.RequestsMock) -> None:
    for _ in range(4):
        add_page(api, FIRST_PAGE, status=503)

    run = sync({"max_tries": 4, "base_wait_seconds": 2, "max_wait_seconds": 5})

    assert isinstance(run.error, RetriableAPIError)
    assert "HTTP 503" in str(run.error)
    assert len(api.calls) == 4
    assert run.waits == [2.0, 4.0, 5.0]
    assert run.record_ids() == []


def test_full_jitter_stays_under_cap(api: responses.RequestsMock) -> None:
    for _ in range(6):
        add_page(api, FIRST_PAGE, status=500)

    run = sync({"base_wait_seconds": 1, "max_wait_seconds": 5}, jitter=True)

    assert len(api.calls) == 6
    assert len(run.waits) == 5
    for retry, wait in enumerate(run.waits):
        assert 0.0 <= wait <= min(5.0, 2**retry)


@pytest.mark.parametrize(
    ("status", "api_message", "next_step"),
    [
        (401, "Invalid OAuth access token.", "check the API credentials"),
        (403, "Permission denied for this ad account.", "check that the credentials may read"),
        (404, "Unknown path components: /v1/orders", "check the ids"),
    ],
)
def test_client_error_fails_at_once(api: responses.RequestsMock, status: int, api_message: str, next_step: str) -> None:
    body = {"error": {"message": api_message, "type": "OAuthException", "code": 190, "param": "buyer@example.com"}}
    add_page(api, FIRST_PAGE, status=status, json=body)

    run = sync(META_THROTTLE)

    assert isinstance(run.error, FatalAPIError)
    assert not isinstance(run.error, QuotaExhaustedError)
    assert len(api.calls) == 1
    assert run.waits == []
    message = str(run.error)
    assert message.startswith(f"Stream orders: HTTP {status} ")
    assert "for path /v1/orders " in message
    assert f"error.message={api_message}" in message
    assert next_step in message
    assert TOKEN not in message
    assert "access_token" not in message
    assert "?" not in message
    assert "buyer@example.com" not in message


def test_quota_exhausted_keeps_bookmark(api: responses.RequestsMock) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, status=429, json=GA4_DAILY_QUOTA)
    bookmark = "2026-01-01T00:00:00+00:00"
    state = {"bookmarks": {"orders": {"replication_key": "updated", "replication_key_value": bookmark}}}

    run = sync(GOOGLE_QUOTA, state=state)

    assert isinstance(run.error, QuotaExhaustedError)
    assert "quota is exhausted" in str(run.error)
    assert "error.message=Exhausted property tokens per day" in str(run.error)
    assert len(api.calls) == 2
    assert run.waits == []
    assert run.record_ids() == ["o1", "o2"]
    assert run.states(), "expected progress STATE messages"
    for value in run.states():
        assert value["bookmarks"]["orders"].get("replication_key_value") == bookmark


def test_hourly_429_is_not_quota(api: responses.RequestsMock) -> None:
    hourly = {"error": {"code": 429, "message": "Exhausted property tokens per hour.", "status": "RESOURCE_EXHAUSTED"}}
    add_page(api, FIRST_PAGE, status=429, json=hourly)
    add_first_page(api)
    add_second_page(api)

    run = sync(GOOGLE_QUOTA)

    assert run.error is None
    assert run.waits == [1.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def make_response(status: int, body: t.Any = None, headers: dict[str, str] | None = None, url: str = URL) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = url
    response.reason = "Test"
    response.headers.update(headers or {})
    if body is not None:
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    else:
        response._content = b""
    return response


def test_classify_statuses_without_matchers() -> None:
    policy = ErrorPolicy()

    assert classify(make_response(200, {"data": []}), policy) == Decision(Outcome.OK)
    assert classify(make_response(204), policy) == Decision(Outcome.OK)
    assert classify(make_response(429), policy) == Decision(Outcome.RETRY, throttled=True)
    assert classify(make_response(408), policy) == Decision(Outcome.RETRY)
    assert classify(make_response(502, b"<html>bad gateway</html>"), policy) == Decision(Outcome.RETRY)
    assert classify(make_response(400, {"error": {"code": 4}}), policy) == Decision(Outcome.FATAL)
    assert classify(make_response(404), policy) == Decision(Outcome.FATAL)


def test_classify_retry_after_http_date() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2026 07:28:07 GMT", "Date": "Wed, 21 Oct 2026 07:28:00 GMT"}

    decision = classify(make_response(503, headers=headers), ErrorPolicy())

    assert decision == Decision(Outcome.RETRY, wait_hint=7.0)


def test_classify_retry_after_date_without_date_header() -> None:
    now = datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC)

    decision = classify(make_response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}), ErrorPolicy(), now=now)

    assert decision.wait_hint == 30.0


def test_classify_ignores_invalid_retry_after() -> None:
    for value in ("soon", "-5", "nan"):
        decision = classify(make_response(429, headers={"Retry-After": value}), ErrorPolicy())
        assert decision == Decision(Outcome.RETRY, throttled=True), value


def test_classify_google_retry_delay_in_body() -> None:
    policy = build_error_policy(GOOGLE_QUOTA)
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "Too many requests.",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo"},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"},
            ],
        },
    }

    decision = classify(make_response(429, body, headers={"Retry-After": "12"}), policy)

    assert decision == Decision(Outcome.RETRY, wait_hint=30.0, throttled=True)


def test_classify_google_ads_quota_error() -> None:
    policy = build_error_policy(GOOGLE_QUOTA)
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "Resource has been exhausted (e.g. check quota).",
            "details": [
                {
                    "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                    "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "Too many requests."}],
                },
                {"retryDelay": "1.5s"},
            ],
        },
    }
    temporary = json.loads(json.dumps(body).replace('"quotaError": "RESOURCE_EXHAUSTED"', '"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"'))

    assert classify(make_response(429, body), policy) == Decision(Outcome.QUOTA_EXHAUSTED, wait_hint=1.5)
    assert classify(make_response(429, temporary), policy) == Decision(Outcome.RETRY, wait_hint=1.5, throttled=True)


def test_matcher_values_compare_by_type() -> None:
    policy = build_error_policy(
        {
            "throttle": [
                {"status": 400, "body": [{"path": "error.code", "values": [4]}]},
                {"status": 400, "body": [{"path": "error.is_transient", "values": [True]}]},
            ],
        },
    )

    assert classify(make_response(400, {"error": {"code": 4}}), policy).outcome is Outcome.RETRY
    assert classify(make_response(400, {"error": {"is_transient": True}}), policy).outcome is Outcome.RETRY
    assert classify(make_response(400, {"error": {"code": "4"}}), policy).outcome is Outcome.FATAL
    assert classify(make_response(400, {"error": {"code": True}}), policy).outcome is Outcome.FATAL
    assert classify(make_response(400, {"error": {"is_transient": 1}}), policy).outcome is Outcome.FATAL
    assert classify(make_response(500, {"error": {"code": 4}}), policy) == Decision(Outcome.RETRY)


def test_matcher_range_bounds_inclusive() -> None:
    policy = build_error_policy(META_THROTTLE)

    for code, expected in [(79999, Outcome.FATAL), (80000, Outcome.RETRY), (80014, Outcome.RETRY), (80015, Outcome.FATAL)]:
        assert classify(make_response(400, {"error": {"code": code}}), policy).outcome is expected, code


def test_build_policy_defaults() -> None:
    assert build_error_policy(None) == ErrorPolicy(
        max_tries=6,
        max_wait_seconds=120.0,
        base_wait_seconds=1.0,
        retry_after_header="Retry-After",
    )


def test_build_policy_lists_every_problem() -> None:
    section = {
        "throttle": [{"status": "400"}, {"status": 400, "body": [{"path": "error.code"}]}],
        "retry_after": {"header": "Retry-After", "seconds": 3},
        "max_tries": 0,
    }

    with pytest.raises(ValueError, match=r"4 problem\(s\)") as raised:
        build_error_policy(section)

    message = str(raised.value)
    assert "errors.max_tries: 0 is less than the minimum of 1" in message
    assert "errors.retry_after: Additional properties are not allowed ('seconds' was unexpected)" in message
    assert "errors.throttle.0.status: '400' is not valid under any of the given schemas" in message
    assert "errors.throttle.1.body.0: add `values` or `contains`" in message


def test_build_policy_rejects_base_above_cap() -> None:
    with pytest.raises(ValueError, match=r"errors\.base_wait_seconds: 10 is above max_wait_seconds \(5\); lower it"):
        build_error_policy({"base_wait_seconds": 10, "max_wait_seconds": 5})


def test_schema_fragment_is_described() -> None:
    Draft202012Validator.check_schema(ERROR_HANDLING_SCHEMA)

    def undescribed(schema: t.Any, place: str) -> t.Iterator[str]:
        if isinstance(schema, dict):
            for name, child in (schema.get("properties") or {}).items():
                if "description" not in child:
                    yield f"{place}.{name}"
            for key, child in schema.items():
                yield from undescribed(child, f"{place}.{key}")
        elif isinstance(schema, list):
            for index, child in enumerate(schema):
                yield from undescribed(child, f"{place}.{index}")

    assert list(undescribed(ERROR_HANDLING_SCHEMA, "errors")) == []
    assert ERROR_HANDLING_SCHEMA["properties"]["max_tries"]["default"] == 6
    assert ERROR_HANDLING_SCHEMA["properties"]["max_wait_seconds"]["default"] == 120
    assert ERROR_HANDLING_SCHEMA["properties"]["base_wait_seconds"]["default"] == 1


def test_meta_fixture_is_throttle(fixtures_dir: Path) -> None:
    fixture = json.loads((fixtures_dir / "facebook" / "airbyte_error_80000_rate_limit.json").read_text())
    response = make_response(fixture["status_code"], fixture["json"], headers=fixture["headers"])

    assert classify(response, build_error_policy(META_THROTTLE)) == Decision(Outcome.RETRY, throttled=True)
    assert classify(response, ErrorPolicy()) == Decision(Outcome.FATAL)


def test_stripe_fixture_is_throttle(fixtures_dir: Path) -> None:
    body = json.loads((fixtures_dir / "stripe" / "airbyte_error_429_rate_limit.json").read_text())
    response = make_response(429, body)

    assert classify(response, ErrorPolicy()) == Decision(Outcome.RETRY, throttled=True)


def test_throttled_error_carries_hint() -> None:
    class Probe(RetryingStreamMixin):
        name = "orders"

    probe = Probe()
    probe.error_policy = ErrorPolicy(safe_fields=("error.code",))

    with pytest.raises(ThrottledError, match=r"Stream orders: HTTP 429 Test for path /v1/orders \(error.code=rate_limit\); throttled") as raised:
        probe.validate_response(make_response(429, {"error": {"code": "rate_limit"}}, {"Retry-After": "3"}, url=f"{URL}?access_token={TOKEN}"))
    assert raised.value.wait_hint == 3.0

    with pytest.raises(TruncatedResponseError, match=r"Stream orders: the HTTP 200 body from path /v1/orders is not valid JSON"):
        probe.validate_response(make_response(200, b"{\"data\": [", url=f"{URL}?access_token={TOKEN}"))


def test_retried_exceptions_match_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[tuple[type[Exception], ...]] = []

    def capture(wait_gen: t.Any, exceptions: tuple[type[Exception], ...], **kwargs: t.Any) -> t.Callable[..., t.Any]:
        captured.append(exceptions)
        return lambda func: func

    class PlainTap(Tap):
        name = "tap-plain-test"
        config_jsonschema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}

        def discover_streams(self) -> list[OrdersStream]:
            return [OrdersStream(self)]

    stream = PlainTap(config={}, parse_env_config=False).streams["orders"]
    monkeypatch.setattr(rest_module.backoff, "on_exception", capture)
    RESTStream.request_decorator(stream, lambda: None)

    assert captured == [RETRIED_EXCEPTIONS]
