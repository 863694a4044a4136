"""Error classification and retries of `taps.engine.retry`, on a plain singer-sdk stream, no YAML."""

from __future__ import annotations

import json
import logging
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
    HeaderDelay,
    Outcome,
    PageTooLargeError,
    QuotaExhaustedError,
    RetriesExhaustedError,
    RetryingStreamMixin,
    ThrottledError,
    TruncatedResponseError,
    UsageHeader,
    UsageReading,
    build_error_policy,
    classify,
    describe_error,
    halved_page_size,
    highest_usage,
    read_all,
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


def test_retry_after_above_cap_stops_stream(api: responses.RequestsMock) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, status=429, headers={"Retry-After": "86400"})
    bookmark = "2026-01-01T00:00:00+00:00"
    state = {"bookmarks": {"orders": {"replication_key": "updated", "replication_key_value": bookmark}}}

    run = sync({"max_wait_seconds": 30}, state=state)

    assert isinstance(run.error, QuotaExhaustedError)
    assert run.error.wait_hint == 86400.0
    message = str(run.error)
    assert "the API requests a wait of 86400 s, longer than the stream's max_wait_seconds of 30 s" in message
    assert "stopped with its bookmark unchanged" in message
    assert "errors.max_wait_seconds in the source's declaration sets the longest wait" in message
    assert len(api.calls) == 2
    assert run.waits == []
    assert run.record_ids() == ["o1", "o2"]
    for value in run.states():
        assert value["bookmarks"]["orders"].get("replication_key_value") == bookmark


def test_retry_after_at_cap_is_honoured(api: responses.RequestsMock) -> None:
    add_first_page(api)
    add_page(api, SECOND_PAGE, status=429, headers={"Retry-After": "30"})
    add_second_page(api)

    run = sync({"max_wait_seconds": 30})

    assert run.error is None
    assert run.waits == [30.0]
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


def test_tries_exhausted_raises_fatal_error(api: responses.RequestsMock) -> None:
    for _ in range(4):
        add_page(api, FIRST_PAGE, status=503, json={"error": {"code": "unavailable", "detail": "body-only-text"}})

    run = sync({"max_tries": 4, "base_wait_seconds": 2, "max_wait_seconds": 5, "safe_fields": ["error.code"]})

    assert isinstance(run.error, RetriesExhaustedError)
    assert isinstance(run.error, FatalAPIError)
    assert str(run.error).startswith(
        "Stream orders: gave up on path /v1/orders after 4 attempt(s); the last attempt failed with "
        "HTTP 503 Service Unavailable for path /v1/orders (error.code=unavailable). "
    )
    assert "body-only-text" not in str(run.error)
    assert TOKEN not in str(run.error)
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


BUC_HEADER = "X-Business-Use-Case-Usage"
BUSINESS_ID = "1234567890123"

META_USAGE = {
    **META_THROTTLE,
    "retry_after": {"header_json": [{"header": BUC_HEADER, "path": "*[].estimated_time_to_regain_access", "unit": "minutes"}]},
    "usage": {
        "headers": [
            {"header": "X-App-Usage", "paths": ["call_count", "total_time", "total_cputime"]},
            {"header": BUC_HEADER, "paths": ["*[].call_count", "*[].total_time", "*[].total_cputime"]},
        ],
    },
    "max_wait_seconds": 900,
}

META_REDUCE = {
    "reduce_page": {
        "when": [
            {
                "status": 500,
                "body": [
                    {"path": "error.code", "values": [1]},
                    {"path": "error.message", "contains": ["reduce the amount of data"]},
                ],
            },
        ],
        "param": "limit",
        "minimum": 5,
    },
    "safe_fields": ["error.code"],
}

REDUCE_BODY = {
    "error": {
        "message": "Please reduce the amount of data you're asking for, then retry your request",
        "type": "OAuthException",
        "code": 1,
        "fbtrace_id": "AbCdEf123",
    },
}

META_80000 = {"error": {"code": 80000, "type": "OAuthException", "message": "(#80000) There have been too many calls from this ad-account."}}


def buc_usage(call_count: int = 10, regain_minutes: int = 0) -> str:
    """An X-Business-Use-Case-Usage value: one ads_insights entry and one idle ads_management entry."""
    return json.dumps(
        {
            BUSINESS_ID: [
                {
                    "type": "ads_insights",
                    "call_count": call_count,
                    "total_cputime": 5,
                    "total_time": 7,
                    "estimated_time_to_regain_access": regain_minutes,
                    "ads_api_access_tier": "standard_access",
                },
            ],
            "9988776655": [
                {"type": "ads_management", "call_count": 3, "total_cputime": 1, "total_time": 2, "estimated_time_to_regain_access": 0},
            ],
        },
    )


def app_usage(call_count: float, total_time: float = 1, total_cputime: float = 1) -> str:
    return json.dumps({"call_count": call_count, "total_time": total_time, "total_cputime": total_cputime})


def test_read_all_star_reads_object_values() -> None:
    body = {"b1": [{"n": 1}, {"n": 2}], "b2": [{"n": 3}], "b3": {"n": 4}}

    assert read_all(body, "*[].n") == [1, 2, 3]
    assert read_all(body, "*.n") == [4]
    assert read_all({"outer": {"x": {"n": 5}, "y": {"n": 6}}}, "outer.*.n") == [5, 6]
    assert read_all([1, 2], "*") == []
    assert read_all("text", "*[].n") == []


def test_classify_meta_regain_minutes() -> None:
    policy = build_error_policy(META_USAGE)
    response = make_response(400, META_80000, headers={BUC_HEADER.lower(): buc_usage(call_count=100, regain_minutes=3)})

    assert classify(response, policy) == Decision(Outcome.RETRY, wait_hint=180.0, throttled=True)


def test_json_header_zero_gives_no_hint() -> None:
    policy = build_error_policy(META_USAGE)
    response = make_response(400, META_80000, headers={BUC_HEADER: buc_usage(call_count=100, regain_minutes=0)})

    assert classify(response, policy) == Decision(Outcome.RETRY, throttled=True)


def test_json_header_longest_delay_wins() -> None:
    policy = build_error_policy(META_USAGE)

    retry_after_longer = make_response(400, META_80000, headers={"Retry-After": "200", BUC_HEADER: buc_usage(regain_minutes=3)})
    header_json_longer = make_response(400, META_80000, headers={"Retry-After": "200", BUC_HEADER: buc_usage(regain_minutes=5)})

    assert classify(retry_after_longer, policy).wait_hint == 200.0
    assert classify(header_json_longer, policy).wait_hint == 300.0


def test_json_header_unit_defaults_to_seconds() -> None:
    policy = build_error_policy({"retry_after": {"header_json": [{"header": "X-Wait", "path": "wait"}]}})

    assert policy.retry_after_json == (HeaderDelay(header="X-Wait", path="wait", unit="seconds"),)
    assert classify(make_response(503, headers={"x-wait": '{"wait": 45}'}), policy).wait_hint == 45.0
    assert classify(make_response(503, headers={"x-wait": '{"wait": "12.5"}'}), policy).wait_hint == 12.5


@pytest.mark.parametrize(
    "value",
    [
        "not json {buyer@example.com",
        "[" * 100_000,
        '{"b": [{"estimated_time_to_regain_access": true}]}',
        '{"b": [{"estimated_time_to_regain_access": -3}]}',
        '{"b": [{"estimated_time_to_regain_access": "soon"}]}',
        '{"b": [{"estimated_time_to_regain_access": NaN}]}',
        '{"b": [{"estimated_time_to_regain_access": 1%s}]}' % ("0" * 400),
        '"buyer@example.com"',
        "[]",
    ],
    ids=["not-json", "deeply-nested", "boolean", "negative", "text", "nan", "huge-integer", "json-string", "list"],
)
def test_unusable_json_header_ignored(value: str, caplog: pytest.LogCaptureFixture) -> None:
    policy = build_error_policy(META_USAGE)

    with caplog.at_level(logging.DEBUG):
        decision = classify(make_response(400, META_80000, headers={BUC_HEADER: value}), policy)

    assert decision == Decision(Outcome.RETRY, throttled=True)
    assert "buyer@example.com" not in caplog.text


def test_huge_body_delay_ignored() -> None:
    policy = build_error_policy(GOOGLE_QUOTA)
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"retryDelay": 10**400}]}}

    assert classify(make_response(429, body), policy) == Decision(Outcome.RETRY, throttled=True)


def test_meta_throttle_waits_regain_time(api: responses.RequestsMock) -> None:
    add_page(api, FIRST_PAGE, status=400, json=META_80000, headers={BUC_HEADER: buc_usage(call_count=100, regain_minutes=2)})
    add_first_page(api)
    add_second_page(api)

    run = sync(META_USAGE)

    assert run.error is None
    assert len(api.calls) == 3
    assert run.waits == [120.0]
    assert run.record_ids() == ["o1", "o2", "o3"]


def test_meta_regain_above_cap_stops_stream(api: responses.RequestsMock) -> None:
    add_page(api, FIRST_PAGE, status=400, json=META_80000, headers={BUC_HEADER: buc_usage(call_count=100, regain_minutes=30)})

    run = sync(META_USAGE)

    assert isinstance(run.error, QuotaExhaustedError)
    assert "the API requests a wait of 1800 s, longer than the stream's max_wait_seconds of 900 s" in str(run.error)
    assert "error.code=80000" in str(run.error)
    assert BUSINESS_ID not in str(run.error)
    assert len(api.calls) == 1
    assert run.waits == []


def test_classify_google_ads_daily_quota_by_delay() -> None:
    policy = ErrorPolicy(retry_after_path="error.details[].errors[].details.quotaErrorDetails.retryDelay")

    def quota_body(delay: str) -> dict[str, t.Any]:
        error = {
            "errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
            "message": "Too many requests. Retry in 10800 seconds.",
            "details": {"quotaErrorDetails": {"rateScope": "DEVELOPER", "rateName": "Number of operations for basic access", "retryDelay": delay}},
        }
        failure = {"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure", "errors": [error]}
        return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Resource has been exhausted.", "details": [failure]}}

    assert classify(make_response(429, quota_body("10800s")), policy) == Decision(
        Outcome.QUOTA_EXHAUSTED, wait_hint=10800.0, throttled=True, over_wait_limit=True
    )
    assert classify(make_response(429, quota_body("120s")), policy) == Decision(Outcome.RETRY, wait_hint=120.0, throttled=True)
    assert classify(make_response(503, headers={"Retry-After": "121"}), policy) == Decision(
        Outcome.QUOTA_EXHAUSTED, wait_hint=121.0, over_wait_limit=True
    )


def test_long_delay_raises_quota_error() -> None:
    class Probe(RetryingStreamMixin):
        name = "orders"

    probe = Probe()
    probe.error_policy = ErrorPolicy(max_wait_seconds=60)

    with pytest.raises(
        QuotaExhaustedError,
        match=r"^Stream orders: HTTP 503 Test for path /v1/orders; the API requests a wait of 3600 s, longer than the stream's "
        r"max_wait_seconds of 60 s, so the stream stopped with its bookmark unchanged\. Run it again later; errors\.max_wait_seconds in the source's declaration sets the longest wait\.$",
    ) as raised:
        probe.validate_response(make_response(503, headers={"Retry-After": "3600"}))
    assert raised.value.wait_hint == 3600.0


def test_highest_usage_reads_every_path() -> None:
    policy = build_error_policy(META_USAGE)
    headers = {"x-app-usage": app_usage(28, total_time=91.5, total_cputime=12), "x-business-use-case-usage": buc_usage(call_count=97)}

    assert highest_usage(headers, policy.usage_headers) == UsageReading(header=BUC_HEADER, percent=97.0)
    assert highest_usage({"x-app-usage": headers["x-app-usage"]}, policy.usage_headers) == UsageReading(header="X-App-Usage", percent=91.5)
    assert highest_usage(requests.structures.CaseInsensitiveDict({"X-APP-USAGE": app_usage(5)}), policy.usage_headers) == UsageReading(
        header="X-App-Usage", percent=5.0
    )


def test_highest_usage_none_without_numbers() -> None:
    usage_headers = (UsageHeader(header="X-App-Usage", paths=("call_count", "total_time")),)

    assert highest_usage({}, usage_headers) == None  # noqa: E711 - the exact value matters
    assert highest_usage({"X-App-Usage": "{call_count: 99"}, usage_headers) is None
    assert highest_usage({"X-App-Usage": '{"call_count": "high", "total_time": true}'}, usage_headers) is None
    assert highest_usage({"X-App-Usage": '{"call_count": -4}'}, usage_headers) is None
    assert highest_usage({"X-App-Usage": '{"call_count": 1%s}' % ("0" * 400)}, usage_headers) is None
    assert highest_usage({"X-App-Usage": '{"call_count": 50}'}, ()) is None


def test_highest_usage_of_meta_fixture(fixtures_dir: Path) -> None:
    fixture = json.loads((fixtures_dir / "facebook" / "airbyte_error_80000_rate_limit.json").read_text())

    reading = highest_usage(fixture["headers"], build_error_policy(META_USAGE).usage_headers)

    assert reading == UsageReading(header="X-App-Usage", percent=28.0)


def usage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if "of a rate limit used" in record.getMessage()]


def test_usage_at_threshold_pauses_once(api: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    add_page(api, FIRST_PAGE, json=page(ORDERS[:2], "p2"), headers={"X-App-Usage": app_usage(90), BUC_HEADER: buc_usage(call_count=40)})
    add_page(api, SECOND_PAGE, json=page(ORDERS[2:], None), headers={"X-App-Usage": app_usage(89.9), BUC_HEADER: buc_usage(call_count=40)})

    with caplog.at_level(logging.WARNING):
        run = sync(META_USAGE)

    assert run.error is None
    assert run.record_ids() == ["o1", "o2", "o3"]
    assert run.waits == [60.0]
    assert usage_warnings(caplog) == [
        "Stream orders: header X-App-Usage reports 90% of a rate limit used, at or above the 90% threshold; pausing 60 s",
    ]
    assert BUSINESS_ID not in caplog.text
    assert "ads_insights" not in caplog.text


def test_usage_names_highest_header(api: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    section = {**META_USAGE, "usage": {**META_USAGE["usage"], "threshold_percent": 50, "pause_seconds": 5}}
    add_page(api, FIRST_PAGE, json=page(ORDERS[:2], "p2"), headers={"X-App-Usage": app_usage(60), BUC_HEADER: buc_usage(call_count=99)})
    add_page(api, SECOND_PAGE, json=page(ORDERS[2:], None), headers={"X-App-Usage": app_usage(51.5)})

    with caplog.at_level(logging.WARNING):
        run = sync(section)

    assert run.error is None
    assert run.waits == [5.0, 5.0]
    assert usage_warnings(caplog) == [
        f"Stream orders: header {BUC_HEADER} reports 99% of a rate limit used, at or above the 50% threshold; pausing 5 s",
        "Stream orders: header X-App-Usage reports 51.5% of a rate limit used, at or above the 50% threshold; pausing 5 s",
    ]


def test_usage_ignored_without_section(api: responses.RequestsMock) -> None:
    add_page(api, FIRST_PAGE, json=page(ORDERS[:2], "p2"), headers={"X-App-Usage": app_usage(100)})
    add_second_page(api)

    run = sync(META_THROTTLE)

    assert run.error is None
    assert run.waits == []


def test_classify_reduce_page() -> None:
    policy = build_error_policy(META_REDUCE)

    assert policy.reduce_page_param == "limit"
    assert policy.reduce_page_minimum == 5
    assert classify(make_response(500, REDUCE_BODY), policy) == Decision(Outcome.REDUCE_PAGE)
    assert classify(make_response(500, {"error": {"code": 2, "message": "An unexpected error has occurred."}}), policy) == Decision(Outcome.RETRY)
    assert classify(make_response(400, REDUCE_BODY), policy) == Decision(Outcome.FATAL)
    assert classify(make_response(500, REDUCE_BODY, headers={"Retry-After": "9999"}), policy) == Decision(
        Outcome.QUOTA_EXHAUSTED, wait_hint=9999.0, over_wait_limit=True
    )


def test_reduce_page_checked_after_quota() -> None:
    same_response = [{"status": 500, "body": [{"path": "error.code", "values": [1]}]}]

    quota_first = build_error_policy({**META_REDUCE, "quota_exhausted": same_response})
    before_throttle = build_error_policy({**META_REDUCE, "throttle": same_response})

    assert classify(make_response(500, REDUCE_BODY), quota_first).outcome is Outcome.QUOTA_EXHAUSTED
    assert classify(make_response(500, REDUCE_BODY), before_throttle) == Decision(Outcome.REDUCE_PAGE)


def test_reduce_page_raises_page_too_large() -> None:
    class Probe(RetryingStreamMixin):
        name = "orders"

    probe = Probe()
    probe.error_policy = build_error_policy(META_REDUCE)

    with pytest.raises(
        PageTooLargeError,
        match=r"^Stream orders: HTTP 500 Test for path /v1/orders \(error\.code=1\); "
        r"the API requests less data per page, so limit must be smaller \(minimum 5\)$",
    ) as raised:
        probe.validate_response(make_response(500, REDUCE_BODY, url=f"{URL}?access_token={TOKEN}&limit=100"))
    assert isinstance(raised.value, RetriableAPIError)
    assert raised.value.response is not None


def test_page_too_large_retried_by_sdk(api: responses.RequestsMock) -> None:
    add_page(api, FIRST_PAGE, status=500, json=REDUCE_BODY)
    add_page(api, FIRST_PAGE, status=500, json=REDUCE_BODY)

    run = sync({**META_REDUCE, "max_tries": 2})

    assert isinstance(run.error, RetriesExhaustedError)
    assert "after 2 attempt(s)" in str(run.error)
    assert "so limit must be smaller (minimum 5)" in str(run.error)
    assert len(api.calls) == 2
    assert run.waits == [1.0]
    assert run.record_ids() == []


@pytest.mark.parametrize(
    ("current", "minimum", "expected"),
    [(100, 1, 50), (25, 1, 12), (3, 1, 1), (2, 1, 1), (1, 1, None), (0, 1, None), (7, 5, 5), (5, 5, None), (4, 5, None)],
)
def test_halved_page_size(current: int, minimum: int, expected: int | None) -> None:
    assert halved_page_size(current, minimum) == expected


def test_halved_page_size_sequence() -> None:
    sizes = [100]
    while (smaller := halved_page_size(sizes[-1], 1)) is not None:
        sizes.append(smaller)

    assert sizes == [100, 50, 25, 12, 6, 3, 1]


def test_halved_page_size_rejects_zero_minimum() -> None:
    with pytest.raises(ValueError, match=r"minimum page size must be at least 1, got 0; fix errors\.reduce_page\.minimum"):
        halved_page_size(10, 0)


GOOGLE_ADS_FAILURE = {
    "error": {
        "code": 429,
        "status": "RESOURCE_EXHAUSTED",
        "message": "Resource has been exhausted (e.g. check quota).",
        "details": [
            {
                "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                "errors": [
                    {"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "Too many requests."},
                    {"errorCode": {"requestError": "INVALID_INPUT", "field": 3}, "message": "Bad input."},
                ],
            },
        ],
    },
}


def test_describe_error_renders_code_objects() -> None:
    response = make_response(429, GOOGLE_ADS_FAILURE)

    message = describe_error("campaigns", response, ("error.status", "error.details[].errors[].errorCode"))

    assert message == (
        "Stream campaigns: HTTP 429 Test for path /v1/orders (error.status=RESOURCE_EXHAUSTED, "
        "error.details[].errors[].errorCode=quotaError=RESOURCE_EXHAUSTED; field=3, requestError=INVALID_INPUT)"
    )


@pytest.mark.parametrize(
    "value",
    [{"detail": {"nested": "x"}}, {"detail": ["x"]}, {"detail": True}, {"detail": None}, {}, ["RESOURCE_EXHAUSTED"]],
    ids=["nested-object", "list-value", "boolean-value", "null-value", "empty-object", "list"],
)
def test_describe_error_skips_non_flat_values(value: t.Any) -> None:
    body = {"error": {"code": 7, "errorCode": value}}

    message = describe_error("orders", make_response(400, body), ("error.errorCode", "error.code"))

    assert message == "Stream orders: HTTP 400 Test for path /v1/orders (error.code=7)"


def test_describe_error_caps_code_object() -> None:
    body = {"error": {"errorCode": {"b": "y" * 300, "a": "x"}}}

    message = describe_error("orders", make_response(400, body), ("error.errorCode",))

    detail = message.split("(error.errorCode=", 1)[1].removesuffix(")")
    assert len(detail) == 200
    assert detail.startswith("a=x, b=yyy")
    assert detail.endswith("...")


def test_build_policy_new_sections() -> None:
    policy = build_error_policy({**META_USAGE, **META_REDUCE})

    assert policy.retry_after_json == (HeaderDelay(header=BUC_HEADER, path="*[].estimated_time_to_regain_access", unit="minutes"),)
    assert policy.usage_headers == (
        UsageHeader(header="X-App-Usage", paths=("call_count", "total_time", "total_cputime")),
        UsageHeader(header=BUC_HEADER, paths=("*[].call_count", "*[].total_time", "*[].total_cputime")),
    )
    assert policy.usage_threshold_percent == 90.0
    assert policy.usage_pause_seconds == 60.0
    assert len(policy.reduce_page) == 1
    assert policy.reduce_page[0].statuses == frozenset({500})
    assert policy.reduce_page_param == "limit"
    assert policy.reduce_page_minimum == 5
    assert policy.max_wait_seconds == 900.0


def test_build_policy_reduce_page_defaults() -> None:
    policy = build_error_policy({"reduce_page": {"when": [{"status": 500}], "param": "page_size"}})

    assert policy.reduce_page_param == "page_size"
    assert policy.reduce_page_minimum == 1
    assert build_error_policy(None).reduce_page_param is None


def test_build_policy_rejects_bad_new_keys() -> None:
    section = {
        "retry_after": {"header_json": [{"header": BUC_HEADER, "path": "*[].estimated_time_to_regain_access", "unit": "hours"}]},
        "usage": {"headers": [{"header": "X-App-Usage"}], "threshold_percent": 150},
        "reduce_page": {"when": [{"status": 500, "body": [{"path": "error.code"}]}], "param": "limit", "minimum": 0},
    }

    with pytest.raises(ValueError, match=r"5 problem\(s\)") as raised:
        build_error_policy(section)

    message = str(raised.value)
    assert "errors.retry_after.header_json.0.unit: 'hours' is not one of ['seconds', 'minutes']" in message
    assert "errors.usage.headers.0: 'paths' is a required property" in message
    assert "errors.usage.threshold_percent: 150 is greater than the maximum of 100" in message
    assert "errors.reduce_page.when.0.body.0: add `values` or `contains`" in message
    assert "errors.reduce_page.minimum: 0 is less than the minimum of 1" in message


def test_build_policy_rejects_incomplete_new_keys() -> None:
    section = {
        "retry_after": {"header_json": [{"path": "wait"}]},
        "usage": {"headers": [], "pause_seconds": 0},
        "reduce_page": {"when": [{"status": 500}]},
    }

    with pytest.raises(ValueError, match=r"4 problem\(s\)") as raised:
        build_error_policy(section)

    message = str(raised.value)
    assert "errors.retry_after.header_json.0: 'header' is a required property" in message
    assert "errors.usage.headers: [] should be non-empty" in message
    assert "errors.usage.pause_seconds: 0 is less than or equal to the minimum of 0" in message
    assert "errors.reduce_page: 'param' is a required property" in message
