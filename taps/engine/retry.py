"""HTTP error handling for declared streams: classify a response, then retry, fail or stop on quota.

A declaration's `errors` section lists which responses are throttles (Meta sends
HTTP 400 with a body code), which mean the daily quota is gone (GA4 and Google
Ads send 429 RESOURCE_EXHAUSTED), which ask for a smaller page (Meta's HTTP 500
with code 1), where a retry delay may be found (a header, the body, or a JSON
header such as Meta's X-Business-Use-Case-Usage), and which JSON headers report
rate-limit usage in percent. Without matchers, HTTP 429, 408 and 5xx are retried
and every other 4xx fails at once. A retriable response that requests a longer
delay than `max_wait_seconds` stops the stream as a spent quota. A request
whose attempts (`max_tries`) all failed raises `RetriesExhaustedError`, which
is fatal too, so a declarative stream stops only its current partition.

`RetryingStreamMixin` applies that policy to a singer-sdk `RESTStream` through
the SDK's own hooks and its `backoff` decorator.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from enum import StrEnum
from urllib.parse import urlparse

import backoff
import requests
from jsonschema import Draft202012Validator
from requests.structures import CaseInsensitiveDict
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from taps.engine.responses import InvalidResponseError, response_json

if t.TYPE_CHECKING:
    from backoff.types import Details

# The exceptions singer-sdk 0.54 retries in `RESTStream.request_decorator`.
# `RetryingStreamMixin.request_decorator` keeps the same list.
RETRIED_EXCEPTIONS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

_BODY_CONDITION_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "anyOf": [{"required": ["values"]}, {"required": ["contains"]}],
    "description": "One test on the parsed error body. It needs `values`, `contains` or both.",
    "properties": {
        "path": {
            "type": "string",
            "minLength": 1,
            "description": (
                "Dotted path into the body, for example 'error.code'. A step written 'name[]' reads every "
                "element of a list, and a step '*' reads every value of an object."
            ),
        },
        "values": {
            "type": "array",
            "minItems": 1,
            "description": "The test holds when a value at the path equals one of these, or lies in a {minimum, maximum} range.",
            "items": {
                "anyOf": [
                    {"type": ["string", "integer", "boolean"], "description": "A value compared by type and equality."},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["minimum", "maximum"],
                        "description": "An inclusive range of integers, for example Meta's 80000 to 80014.",
                        "properties": {
                            "minimum": {"type": "integer", "description": "Lowest matching number."},
                            "maximum": {"type": "integer", "description": "Highest matching number."},
                        },
                    },
                ],
            },
        },
        "contains": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "The test holds when a string at the path contains one of these, ignoring case.",
        },
    },
}

_MATCHER_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status"],
    "description": "A response that matches: its HTTP status is listed and every body test holds.",
    "properties": {
        "status": {
            "description": "HTTP status code, or a list of them.",
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 100, "maximum": 599}},
            ],
        },
        "body": {
            "type": "array",
            "minItems": 1,
            "items": _BODY_CONDITION_SCHEMA,
            "description": "Tests on the parsed JSON body; all must hold. Without it the status alone matches.",
        },
    },
}

_HEADER_DELAY_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["header", "path"],
    "description": "A delay stated inside a JSON response header.",
    "properties": {
        "header": {"type": "string", "minLength": 1, "description": "Header name, matched ignoring case."},
        "path": {
            "type": "string",
            "minLength": 1,
            "description": "Dotted path into the header's JSON. A step '*' reads every value of an object, as in Meta's '*[].estimated_time_to_regain_access'.",
        },
        "unit": {
            "enum": ["seconds", "minutes"],
            "default": "seconds",
            "description": "Unit of the number at the path.",
        },
    },
}

_USAGE_HEADER_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["header", "paths"],
    "description": "A JSON response header that reports percentages of a rate limit used, such as Meta's X-App-Usage.",
    "properties": {
        "header": {"type": "string", "minLength": 1, "description": "Header name, matched ignoring case."},
        "paths": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "Dotted paths of the percentages in the header's JSON, for example 'call_count' or '*[].total_time'.",
        },
    },
}

ERROR_HANDLING_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "How the source's HTTP errors are classified, retried and reported.",
    "properties": {
        "safe_fields": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Dotted paths into an error body that are safe to show in error messages (codes, types and the API's own message). A step 'name[]' reads every list element.",
        },
        "throttle": {
            "type": "array",
            "items": _MATCHER_SCHEMA,
            "description": "Responses that mean 'slow down' and are retried with backoff, in addition to HTTP 429.",
        },
        "quota_exhausted": {
            "type": "array",
            "items": _MATCHER_SCHEMA,
            "description": "Responses that mean the daily quota is used up: the stream fails with its bookmark unchanged. Checked before `throttle`.",
        },
        "reduce_page": {
            "type": "object",
            "additionalProperties": False,
            "required": ["when", "param"],
            "description": (
                "Responses that mean the page is too large: the stream halves its page size and retries. "
                "Checked after `quota_exhausted` and before `throttle`."
            ),
            "properties": {
                "when": {
                    "type": "array",
                    "minItems": 1,
                    "items": _MATCHER_SCHEMA,
                    "description": "Responses that ask for a smaller page, such as Meta's HTTP 500 with error.code 1.",
                },
                "param": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Query parameter that holds the page size, for example 'limit'.",
                },
                "minimum": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 1,
                    "description": "Smallest page size the stream requests.",
                },
            },
        },
        "usage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["headers"],
            "description": (
                "Pacing by reported usage: after a successful response whose highest usage percentage reaches "
                "the threshold, the stream logs a warning and pauses."
            ),
            "properties": {
                "headers": {
                    "type": "array",
                    "minItems": 1,
                    "items": _USAGE_HEADER_SCHEMA,
                    "description": "JSON headers that report usage percentages. A header that is missing or not valid JSON is ignored.",
                },
                "threshold_percent": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 100,
                    "default": 90,
                    "description": "Usage in percent at or above which the stream pauses.",
                },
                "pause_seconds": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 3600,
                    "default": 60,
                    "description": "Pause in seconds after a response at or above the threshold.",
                },
            },
        },
        "retry_after": {
            "type": "object",
            "additionalProperties": False,
            "description": "Where the API states how long to wait before retrying. The longest delay found is used.",
            "properties": {
                "header": {
                    "type": "string",
                    "minLength": 1,
                    "default": "Retry-After",
                    "description": "Response header holding seconds or an HTTP date.",
                },
                "body_path": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Dotted path of a delay in the error body: seconds, or a duration such as '30s' (Google's 'error.details[].retryDelay').",
                },
                "header_json": {
                    "type": "array",
                    "minItems": 1,
                    "items": _HEADER_DELAY_SCHEMA,
                    "description": "JSON headers that state a delay. A header that is not valid JSON, and a delay of zero, are ignored.",
                },
            },
        },
        "max_tries": {
            "type": "integer",
            "minimum": 1,
            "maximum": 20,
            "default": 6,
            "description": "Attempts per request, the first included, before the error is raised.",
        },
        "max_wait_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 120,
            "description": (
                "Longest wait between two attempts in seconds. A retriable response that requests a longer "
                "delay stops the stream with its bookmark unchanged, as a spent quota does."
            ),
        },
        "base_wait_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 1,
            "description": "Wait before the first retry in seconds; it doubles per retry, with full jitter.",
        },
    },
}


class Outcome(StrEnum):
    """Action for a response: continue, retry, retry with a smaller page, fail, or stop on a spent quota."""

    OK = "ok"
    RETRY = "retry"
    REDUCE_PAGE = "reduce_page"
    FATAL = "fatal"
    QUOTA_EXHAUSTED = "quota_exhausted"


@dataclass(frozen=True)
class Decision:
    """The outcome for one response, the delay the API requested (seconds) and whether it was a throttle.

    `over_wait_limit` marks a retriable response turned into QUOTA_EXHAUSTED
    because its delay is above `max_wait_seconds`.
    """

    outcome: Outcome
    wait_hint: float | None = None
    throttled: bool = False
    over_wait_limit: bool = False


@dataclass(frozen=True)
class BodyCondition:
    """One test on a parsed body: equal to a value, in a range, or containing a text."""

    path: str
    values: tuple[str | int | bool, ...] = ()
    ranges: tuple[tuple[int, int], ...] = ()
    contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseMatcher:
    """A set of HTTP statuses plus body tests that must all hold."""

    statuses: frozenset[int]
    conditions: tuple[BodyCondition, ...] = ()


@dataclass(frozen=True)
class HeaderDelay:
    """A delay inside a JSON response header: the header name, the path in its JSON and the unit ('seconds' or 'minutes')."""

    header: str
    path: str
    unit: str = "seconds"


@dataclass(frozen=True)
class UsageHeader:
    """A JSON response header and the paths of the usage percentages inside it."""

    header: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class UsageReading:
    """The highest usage percentage found in the response headers, and the header that contains it."""

    header: str
    percent: float


@dataclass(frozen=True)
class ErrorPolicy:
    """The `errors` section of a declaration, ready for `classify` and the mixin."""

    safe_fields: tuple[str, ...] = ()
    throttle: tuple[ResponseMatcher, ...] = ()
    quota_exhausted: tuple[ResponseMatcher, ...] = ()
    reduce_page: tuple[ResponseMatcher, ...] = ()
    reduce_page_param: str | None = None
    reduce_page_minimum: int = 1
    retry_after_header: str = "Retry-After"
    retry_after_path: str | None = None
    retry_after_json: tuple[HeaderDelay, ...] = ()
    usage_headers: tuple[UsageHeader, ...] = ()
    usage_threshold_percent: float = 90.0
    usage_pause_seconds: float = 60.0
    max_tries: int = 6
    max_wait_seconds: float = 120.0
    base_wait_seconds: float = 1.0


class ThrottledError(RetriableAPIError):
    """Raised for a throttle, or any retriable response that states a delay (`wait_hint`, seconds)."""

    def __init__(self, message: str, response: requests.Response | None = None, wait_hint: float | None = None) -> None:
        super().__init__(message, response)
        self.wait_hint = wait_hint


class QuotaExhaustedError(FatalAPIError):
    """Raised when the API's daily quota is used up, so the stream fails instead of ending empty."""

    def __init__(self, message: str, wait_hint: float | None = None) -> None:
        super().__init__(message)
        self.wait_hint = wait_hint


class TruncatedResponseError(RetriableAPIError):
    """Raised for a 2xx response whose body is empty or not valid JSON, such as a cut-off transfer."""


class PageTooLargeError(RetriableAPIError):
    """Raised for a response matched by `reduce_page`: the request should be sent again with a smaller page."""


class RetriesExhaustedError(FatalAPIError):
    """Raised when every attempt at one request failed with a retriable error.

    It is fatal, so a declarative stream stops only the current partition with
    its bookmark unchanged, as for a spent quota.
    """


def build_error_policy(section: t.Mapping[str, t.Any] | None) -> ErrorPolicy:
    """Validate a declaration's `errors` section and build its policy. None gives the defaults.

    Raises ValueError listing every problem with its path, such as `errors.throttle.0.status`.
    """
    section = dict(section or {})
    problems = _section_problems(section)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ValueError(f"Invalid errors section ({len(problems)} problem(s)):\n{listing}")

    retry_after = section.get("retry_after") or {}
    reduce_page = section.get("reduce_page") or {}
    usage = section.get("usage") or {}
    return ErrorPolicy(
        safe_fields=tuple(section.get("safe_fields", ())),
        throttle=tuple(_build_matcher(matcher) for matcher in section.get("throttle", ())),
        quota_exhausted=tuple(_build_matcher(matcher) for matcher in section.get("quota_exhausted", ())),
        reduce_page=tuple(_build_matcher(matcher) for matcher in reduce_page.get("when", ())),
        reduce_page_param=reduce_page.get("param"),
        reduce_page_minimum=reduce_page.get("minimum", 1),
        retry_after_header=retry_after.get("header", "Retry-After"),
        retry_after_path=retry_after.get("body_path"),
        retry_after_json=tuple(
            HeaderDelay(header=item["header"], path=item["path"], unit=item.get("unit", "seconds"))
            for item in retry_after.get("header_json", ())
        ),
        usage_headers=tuple(
            UsageHeader(header=item["header"], paths=tuple(item["paths"])) for item in usage.get("headers", ())
        ),
        usage_threshold_percent=float(usage.get("threshold_percent", 90)),
        usage_pause_seconds=float(usage.get("pause_seconds", 60)),
        max_tries=section.get("max_tries", 6),
        max_wait_seconds=float(section.get("max_wait_seconds", 120)),
        base_wait_seconds=float(section.get("base_wait_seconds", 1)),
    )


def _section_problems(section: dict[str, t.Any]) -> list[str]:
    validator = Draft202012Validator(ERROR_HANDLING_SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(section), key=lambda e: list(map(str, e.absolute_path))):
        place = ".".join(["errors", *map(str, error.absolute_path)])
        if error.validator == "anyOf" and error.schema is _BODY_CONDITION_SCHEMA:
            problems.append(f"{place}: add `values` or `contains` to say what the value at `path` must be")
        else:
            problems.append(f"{place}: {error.message}")

    base = section.get("base_wait_seconds", 1)
    cap = section.get("max_wait_seconds", 120)
    if not problems and base > cap:
        problems.append(f"errors.base_wait_seconds: {base} is above max_wait_seconds ({cap}); lower it or raise the cap")
    return problems


def _build_matcher(matcher: dict[str, t.Any]) -> ResponseMatcher:
    status = matcher["status"]
    statuses = frozenset(status if isinstance(status, list) else [status])
    return ResponseMatcher(statuses=statuses, conditions=tuple(_build_condition(test) for test in matcher.get("body", ())))


def _build_condition(test: dict[str, t.Any]) -> BodyCondition:
    values = tuple(value for value in test.get("values", ()) if not isinstance(value, dict))
    ranges = tuple((value["minimum"], value["maximum"]) for value in test.get("values", ()) if isinstance(value, dict))
    return BodyCondition(path=test["path"], values=values, ranges=ranges, contains=tuple(test.get("contains", ())))


def classify(response: requests.Response, policy: ErrorPolicy, *, now: datetime | None = None) -> Decision:
    """Decide whether a response is OK, retried, retried with a smaller page, fatal or a spent quota.

    Quota matchers are checked first, then page-size matchers, then throttle
    matchers, then the status: 429 is a throttle, 408 and 5xx are retried,
    other 4xx are fatal. A retriable response that requests a delay above
    `max_wait_seconds` becomes QUOTA_EXHAUSTED, because waiting that long
    inside one run is not worth it. `now` resolves a Retry-After date when
    the response has no Date header.
    """
    body = _json_or_none(response)
    hint = retry_hint(response, body, policy, now=now)
    decision = _decide(response, body, hint, policy)

    retriable = decision.outcome in (Outcome.RETRY, Outcome.REDUCE_PAGE)
    if retriable and hint is not None and hint > policy.max_wait_seconds:
        return Decision(Outcome.QUOTA_EXHAUSTED, wait_hint=hint, throttled=decision.throttled, over_wait_limit=True)
    return decision


def _decide(response: requests.Response, body: t.Any, hint: float | None, policy: ErrorPolicy) -> Decision:
    if any(_matches(matcher, response.status_code, body) for matcher in policy.quota_exhausted):
        return Decision(Outcome.QUOTA_EXHAUSTED, wait_hint=hint)
    if any(_matches(matcher, response.status_code, body) for matcher in policy.reduce_page):
        return Decision(Outcome.REDUCE_PAGE, wait_hint=hint)
    if any(_matches(matcher, response.status_code, body) for matcher in policy.throttle):
        return Decision(Outcome.RETRY, wait_hint=hint, throttled=True)

    status = response.status_code
    if status < 400:
        return Decision(Outcome.OK)
    if status == 429:
        return Decision(Outcome.RETRY, wait_hint=hint, throttled=True)
    if status == 408 or status >= 500:
        return Decision(Outcome.RETRY, wait_hint=hint)
    return Decision(Outcome.FATAL)


def retry_hint(
    response: requests.Response,
    body: t.Any,
    policy: ErrorPolicy,
    *,
    now: datetime | None = None,
) -> float | None:
    """Return the longest delay in seconds that the headers or the body request, or None."""
    hints = []

    header = response.headers.get(policy.retry_after_header)
    if header:
        hints.append(_header_delay(header, response.headers.get("Date"), now))

    if policy.retry_after_path:
        hints.extend(_duration_seconds(value) for value in read_all(body, policy.retry_after_path))

    for source in policy.retry_after_json:
        hints.extend(_json_header_delays(response.headers, source))

    found = [hint for hint in hints if hint is not None]
    return max(found) if found else None


_UNIT_SECONDS = {"seconds": 1.0, "minutes": 60.0}


def _json_header_delays(headers: t.Mapping[str, str], source: HeaderDelay) -> list[float]:
    """Read the delays in seconds at a path of a JSON header.

    A zero is left out, so a header that lists only zeros (Meta lists one
    entry per use case) leaves the wait to exponential backoff instead of
    retrying at once.
    """
    parsed = _header_json(headers, source.header)
    amounts = (_non_negative_number(value) for value in read_all(parsed, source.path))
    return [amount * _UNIT_SECONDS[source.unit] for amount in amounts if amount]


def _header_json(headers: t.Mapping[str, str], name: str) -> t.Any:
    """Return a header's value parsed as JSON, or None when the header is missing or not valid JSON."""
    value = CaseInsensitiveDict(headers).get(name)
    if not value:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


def highest_usage(headers: t.Mapping[str, str], usage_headers: t.Iterable[UsageHeader]) -> UsageReading | None:
    """Return the highest usage percentage at the declared paths of JSON headers, or None if none is found.

    Header names match ignoring case. A header that is missing or not valid
    JSON, and a value that is not a non-negative number, are skipped.
    """
    highest: UsageReading | None = None
    for usage_header in usage_headers:
        parsed = _header_json(headers, usage_header.header)
        for path in usage_header.paths:
            for value in read_all(parsed, path):
                percent = _non_negative_number(value)
                if percent is not None and (highest is None or percent > highest.percent):
                    highest = UsageReading(header=usage_header.header, percent=percent)
    return highest


_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


def _non_negative_number(value: t.Any) -> float | None:
    """Read a finite number >= 0 from a JSON number or a numeric string such as '3'."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        number = _float_or_infinity(value)
    elif isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _float_or_infinity(value: int | float | Decimal) -> float:
    """Convert to float. An integer too large for a float gives infinity instead of OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def streamed_retry_hint(element: t.Any, policy: ErrorPolicy) -> float | None:
    """Return the longest delay that an error element of a streamed response states at the body path, or None."""
    if not policy.retry_after_path:
        return None
    found = [_duration_seconds(value) for value in read_all(element, policy.retry_after_path)]
    delays = [delay for delay in found if delay is not None]
    return max(delays) if delays else None


def _header_delay(value: str, date_header: str | None, now: datetime | None) -> float | None:
    """Parse Retry-After: delay seconds, or an HTTP date measured from the response's Date header."""
    seconds = _duration_seconds(value.strip())
    if seconds is not None:
        return seconds

    retry_at = _http_date(value)
    if retry_at is None:
        return None
    reference = _http_date(date_header) if date_header else None
    reference = reference or now or datetime.now(UTC)
    return max(0.0, (retry_at - reference).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s?$")


def _duration_seconds(value: t.Any) -> float | None:
    """Read seconds from a number, '7', or a protobuf duration string such as '30s' or '1.5s'."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        seconds = _float_or_infinity(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
        seconds = float(match.group(1))
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _json_or_none(response: requests.Response) -> t.Any:
    try:
        return response_json(response)
    except InvalidResponseError:
        return None


def _matches(matcher: ResponseMatcher, status: int, body: t.Any) -> bool:
    if status not in matcher.statuses:
        return False
    return all(_holds(condition, read_all(body, condition.path)) for condition in matcher.conditions)


def _holds(condition: BodyCondition, found: list[t.Any]) -> bool:
    """Check a body test. With `values` and `contains` both given, both must hold."""
    checks = []
    if condition.values or condition.ranges:
        checks.append(any(_equals_or_in_range(value, condition) for value in found))
    if condition.contains:
        needles = [needle.lower() for needle in condition.contains]
        checks.append(any(isinstance(value, str) and any(n in value.lower() for n in needles) for value in found))
    return all(checks)


def _equals_or_in_range(value: t.Any, condition: BodyCondition) -> bool:
    """Compare by type too, so `true` never equals 1 and '4' never equals 4."""
    for expected in condition.values:
        if isinstance(expected, bool) or isinstance(value, bool):
            if isinstance(expected, bool) and isinstance(value, bool) and expected == value:
                return True
        elif isinstance(expected, int) and _is_number(value) and value == expected:
            return True
        elif isinstance(expected, str) and isinstance(value, str) and value == expected:
            return True

    if _is_number(value):
        return any(low <= value <= high for low, high in condition.ranges)
    return False


def _is_number(value: t.Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def read_all(body: t.Any, dotted: str) -> list[t.Any]:
    """Read every value at a dotted path.

    A step 'name[]' reads each element of a list, and a step '*' reads every
    value of an object, so '*[].call_count' reads across keys such as Meta's
    business ids. A literal key named '*' cannot be addressed.
    """
    values = [body]
    for step in dotted.split("."):
        fan_out = step.endswith("[]")
        key = step[:-2] if fan_out else step
        next_values: list[t.Any] = []
        for value in values:
            for item in _step_values(value, key):
                if not fan_out:
                    next_values.append(item)
                elif isinstance(item, list):
                    next_values.extend(item)
        values = next_values
    return values


def _step_values(value: t.Any, key: str) -> list[t.Any]:
    if not isinstance(value, dict):
        return []
    if key == "*":
        return list(value.values())
    return [value[key]] if key in value else []


def halved_page_size(current: int, minimum: int) -> int | None:
    """Return half the page size, at least `minimum`, or None when `current` is already at or below it.

    Halving from 100 with a minimum of 1 gives 100, 50, 25, 12, 6, 3, 1.
    """
    if minimum < 1:
        msg = f"The minimum page size must be at least 1, got {minimum}; fix errors.reduce_page.minimum."
        raise ValueError(msg)
    if current <= minimum:
        return None
    return max(minimum, current // 2)


# A next step for the statuses that fail at once and have a usual cause.
_NEXT_STEPS = {
    401: "check the API credentials in the config",
    403: "check that the credentials may read this resource",
    404: "check the ids and the API version in the config",
}
_MAX_DETAIL_LENGTH = 200
_MAX_DETAIL_VALUES = 3


def describe_error(stream_name: str, response: requests.Response, safe_fields: tuple[str, ...]) -> str:
    """Describe an HTTP error by stream, path, status and the body's safe fields only.

    The query string and the rest of the body are left out because they may
    hold tokens, cursors or personal data.
    """
    path = urlparse(response.url).path
    message = f"Stream {stream_name}: HTTP {response.status_code} {response.reason or ''}".rstrip()
    message += f" for path {path}"

    details = _safe_details(response, safe_fields)
    if details:
        message += f" ({details})"

    next_step = _NEXT_STEPS.get(response.status_code)
    if next_step:
        message += f"; {next_step}"
    return message


def _safe_details(response: requests.Response, safe_fields: tuple[str, ...]) -> str:
    return body_details(_json_or_none(response), safe_fields)


def body_details(body: t.Any, safe_fields: tuple[str, ...]) -> str:
    """Render the safe fields found in a parsed error body as 'path=value, ...'."""
    parts = []
    for dotted in safe_fields:
        shown = [_display_text(value) for value in read_all(body, dotted)]
        shown = [text for text in shown if text][:_MAX_DETAIL_VALUES]
        if shown:
            parts.append(f"{dotted}={'; '.join(shown)}")
    return ", ".join(parts)


def _display_text(value: t.Any) -> str:
    """Render a scalar, or a flat object of scalars as 'key=value, ...' (Google's errorCode objects).

    Lists, booleans and objects containing anything but scalars give "".
    """
    if isinstance(value, dict):
        text = _flat_object_text(value)
    elif _is_display_scalar(value):
        text = str(value)
    else:
        return ""

    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL_LENGTH:
        text = text[: _MAX_DETAIL_LENGTH - 3] + "..."
    return text


def _flat_object_text(value: dict[str, t.Any]) -> str:
    if not all(_is_display_scalar(item) for item in value.values()):
        return ""
    return ", ".join(f"{key}={item}" for key, item in sorted(value.items()))


def _is_display_scalar(value: t.Any) -> bool:
    return isinstance(value, (str, int, Decimal)) and not isinstance(value, bool)


class RetryingStreamMixin:
    """Error handling for a singer-sdk `RESTStream` subclass, driven by `self.error_policy`.

    List the mixin before `RESTStream` in the bases. The stream sets
    `error_policy` (an `ErrorPolicy`) before its first request. Tests replace
    `retry_sleep` and `retry_jitter` to observe waits without sleeping.
    """

    error_policy: ErrorPolicy
    retry_sleep: t.Callable[[float], None] = staticmethod(time.sleep)
    retry_jitter: t.Callable[[float], float] = staticmethod(backoff.full_jitter)

    # Provided by RESTStream.
    name: str
    logger: logging.Logger
    backoff_handler: t.Callable[[Details], None]

    def validate_response(self, response: requests.Response) -> None:
        """Raise the error the policy assigns to a response, check that a 2xx body is JSON, then pace by usage.

        An empty 2xx body other than 204 counts as truncated, because treating it
        as an empty page would end the stream early and look like success.
        """
        decision = classify(response, self.error_policy)

        if decision.outcome is Outcome.OK:
            self._check_body(response)
            self._pace_by_usage(response)
            return

        message = self.response_error_message(response)
        if decision.outcome is Outcome.QUOTA_EXHAUSTED:
            raise QuotaExhaustedError(self._quota_text(message, decision), wait_hint=decision.wait_hint)
        if decision.outcome is Outcome.FATAL:
            raise FatalAPIError(message)
        if decision.outcome is Outcome.REDUCE_PAGE:
            policy = self.error_policy
            text = (
                f"{message}; the API requests less data per page, so {policy.reduce_page_param} "
                f"must be smaller (minimum {policy.reduce_page_minimum})"
            )
            raise PageTooLargeError(text, response)
        if decision.throttled or decision.wait_hint is not None:
            raise ThrottledError(f"{message}; throttled", response, wait_hint=decision.wait_hint)
        raise RetriableAPIError(message, response)

    def _check_body(self, response: requests.Response) -> None:
        path = urlparse(response.url).path
        try:
            body = response_json(response)
        except InvalidResponseError:
            msg = f"Stream {self.name}: the HTTP {response.status_code} body from path {path} is not valid JSON"
            raise TruncatedResponseError(msg, response) from None

        if body is None and response.status_code != 204:
            msg = f"Stream {self.name}: the HTTP {response.status_code} body from path {path} is empty"
            raise TruncatedResponseError(msg, response)

    def _pace_by_usage(self, response: requests.Response) -> None:
        """Pause once when the reported usage reaches the threshold. Only the header name and percentage are logged."""
        policy = self.error_policy
        if not policy.usage_headers:
            return

        reading = highest_usage(response.headers, policy.usage_headers)
        if reading is None or reading.percent < policy.usage_threshold_percent:
            return

        self.logger.warning(
            "Stream %s: header %s reports %s%% of a rate limit used, at or above the %s%% threshold; pausing %s s",
            self.name,
            reading.header,
            _format_number(reading.percent),
            _format_number(policy.usage_threshold_percent),
            _format_number(policy.usage_pause_seconds),
        )
        self.retry_sleep(policy.usage_pause_seconds)

    def _quota_text(self, message: str, decision: Decision) -> str:
        if decision.over_wait_limit and decision.wait_hint is not None:
            return wait_too_long_message(message, decision.wait_hint, self.error_policy.max_wait_seconds)
        return _quota_message(message, decision.wait_hint)

    def response_error_message(self, response: requests.Response) -> str:
        """Describe an HTTP error by stream, path, status and the configured safe body fields."""
        return describe_error(self.name, response, self.error_policy.safe_fields)

    def backoff_max_tries(self) -> int:
        """Return the attempts per request, the first included."""
        return self.error_policy.max_tries

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Yield waits in seconds. `backoff` sends in the exception that failed the last attempt.

        A `wait_hint` on that exception is honoured exactly. Otherwise the wait
        is full jitter over base * 2**retry. Both are capped at max_wait_seconds,
        though `classify` already stops on a hint above the cap.
        """
        policy = self.error_policy
        retry = 0
        error = yield  # type: ignore[misc]
        while True:
            hint = getattr(error, "wait_hint", None)
            if hint is not None:
                wait = min(hint, policy.max_wait_seconds)
            else:
                wait = self.retry_jitter(min(policy.max_wait_seconds, policy.base_wait_seconds * 2**retry))
            retry += 1
            error = yield wait

    def request_decorator(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """Wrap a request in the SDK's retry loop, with the wait done by `retry_sleep`.

        `backoff` 3.0 always calls `time.sleep` itself, so it is handed a zero
        wait and the real one is slept in the `on_backoff` handler instead.
        """
        pending: list[float] = []

        def waits_for_backoff() -> t.Generator[float, t.Any, None]:
            waits = self.backoff_wait_generator()
            next(waits)
            error = yield
            while True:
                pending.append(waits.send(error))
                error = yield 0.0

        def wait_before_retry(details: Details) -> None:
            wait = pending.pop()
            self.backoff_handler({**details, "wait": wait})
            self.retry_sleep(wait)

        def give_up(details: Details) -> None:
            raise RetriesExhaustedError(retries_exhausted_message(self.name, details)) from None

        return backoff.on_exception(
            waits_for_backoff,
            RETRIED_EXCEPTIONS,
            max_tries=self.backoff_max_tries,
            on_backoff=wait_before_retry,
            on_giveup=give_up,
            jitter=None,
            logger=None,
        )(func)


def retries_exhausted_message(stream_name: str, details: Details) -> str:
    """Describe a request whose attempts all failed: stream, path, attempts and the last error, never a body.

    The last error is quoted only when it is a `RetriableAPIError`, whose text
    `validate_response` builds from the status and the safe body fields. A
    transport error is named by its type, because its text may contain the URL's query.
    """
    error = details.get("exception")
    request = next((arg for arg in details.get("args", ()) if isinstance(arg, requests.PreparedRequest)), None)
    path = urlparse(request.url or "").path if request is not None else "unknown"
    response = getattr(error, "response", None)

    if isinstance(error, RetriableAPIError):
        last = str(error).removeprefix(f"Stream {stream_name}: ")
        if response is not None and f"HTTP {response.status_code}" not in last:
            last = f"HTTP {response.status_code}, {last}"
    else:
        last = type(error).__name__ if error is not None else "no exception"
    return (
        f"Stream {stream_name}: gave up on path {path} after {details.get('tries') or 0} attempt(s); "
        f"the last attempt failed with {last}. The stream stopped with its bookmark unchanged; run the tap "
        "again later, or raise errors.max_tries in the source's declaration if the API recovers slowly."
    )


def _quota_message(message: str, wait_hint: float | None) -> str:
    text = f"{message}; the API quota is exhausted, so the stream stopped with its bookmark unchanged"
    if wait_hint is not None:
        text += f" (the API requests a wait of {wait_hint:.0f} s)"
    return f"{text}. Run it again after the quota resets."


def wait_too_long_message(message: str, wait_hint: float, max_wait_seconds: float) -> str:
    """Describe a stop because the API requests a longer wait than the stream allows."""
    return (
        f"{message}; the API requests a wait of {_format_number(wait_hint)} s, longer than the stream's "
        f"max_wait_seconds of {_format_number(max_wait_seconds)} s, so the stream stopped with its bookmark "
        "unchanged. Run it again later; errors.max_wait_seconds in the source's declaration sets the longest wait."
    )


def _format_number(value: float) -> str:
    """Render 120.0 as '120' and 1.5 as '1.5', with at most one decimal."""
    return f"{value:.1f}".removesuffix(".0")
