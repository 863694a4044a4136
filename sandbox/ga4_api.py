"""Google Analytics 4 REST responses for a `GA4World`: token grants, Admin API properties, metadata and runReport.

`handle_ga4_request` takes no socket, like the other handlers. It serves:
- `POST /ga4/oauth2/token`: the JWT-bearer grant of the demo service account (the assertion's RS256
  signature is checked against the demo key's public half) and the refresh-token grant;
- `GET /v1beta/properties/{id}` (Admin API): name, display name, time zone, currency;
- `GET /v1beta/properties/{id}/metadata` (Data API): the dimensions and metrics it can report;
- `POST /v1beta/properties/{id}:runReport` (Data API): one date range, dimensions, metrics,
  `dimensionFilter` (string and in-list filters, and/or/not groups), `orderBys` on dimensions and
  metrics, `limit`, `offset`, `metricHeaders` types, `rowCount`, `metadata` and `propertyQuota`.

Errors use Google's body (`{"error": {"code", "message", "status"}}`). A report with no rows has
neither `rows` nor `rowCount`, as proto3 JSON leaves out empty fields.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization

from sandbox.ga4_data import (
    DEMO_PRIVATE_KEY_PEM,
    DEMO_SERVICE_ACCOUNT_EMAIL,
    DEMO_SERVICE_ACCOUNT_KEY_ID,
    DayReport,
    GA4World,
    Property,
)
from sandbox.outcomes import OutcomeCounter

ANALYTICS_SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
TOKEN_PATH = "/ga4/oauth2/token"
#: The sandbox port that meltano.yml's demo URLs name.
DEMO_PORT = 12111
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_SECONDS = 3599
DAILY_TOKENS = 200_000
MAX_LIMIT = 250_000
MAX_DIMENSIONS = 9
MAX_METRICS = 10

DEMO_CLIENT_ID = "spendlake-ga4-demo-client"
DEMO_CLIENT_SECRET = "spendlake-ga4-demo-secret"
DEMO_REFRESH_TOKEN = "spendlake-ga4-demo-refresh-token"

_PROPERTY_PATH = re.compile(r"^/v1beta/properties/(?P<id>[^/:]+)(?P<rest>/metadata|:runReport)?$")

Response = tuple[int, dict[str, str], bytes]


def demo_service_account_key() -> dict[str, str]:
    """Return the demo service account's JSON key, as Google Cloud lays it out."""
    return {
        "type": "service_account",
        "project_id": "spendlake-sandbox",
        "private_key_id": DEMO_SERVICE_ACCOUNT_KEY_ID,
        "private_key": DEMO_PRIVATE_KEY_PEM,
        "client_email": DEMO_SERVICE_ACCOUNT_EMAIL,
        "client_id": "100000000000000000001",
        # The sandbox's own token endpoint on the dev port, so a config without token_url never reaches Google.
        "token_uri": f"http://127.0.0.1:{DEMO_PORT}{TOKEN_PATH}",
    }


def demo_public_key_pem() -> bytes:
    """Return the public half of the demo key, which the token endpoint verifies signatures with."""
    private = serialization.load_pem_private_key(DEMO_PRIVATE_KEY_PEM.encode(), password=None)
    return private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def handles_path(path: str) -> bool:
    """Return True for the GA4 token path and the Admin and Data API property paths."""
    return path == TOKEN_PATH or path.startswith("/v1beta/properties")


class GA4Session(OutcomeCounter):
    """Mutable state of one sandbox server for GA4: issued tokens, tokens used per property, throttles.

    `throttle_every` > 0 makes every n-th report request return an hourly-quota 429, once.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, throttle_every: int = 0) -> None:
        super().__init__()
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self._used: dict[str, int] = {}
        self._reports = 0
        self.throttle_every = throttle_every

    def issue_token(self) -> str:
        token = "ya29.ga4-sandbox-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self._clock() + TOKEN_LIFETIME_SECONDS
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
            return expiry is not None and self._clock() < expiry

    def next_report(self) -> int:
        with self._lock:
            self._reports += 1
            return self._reports

    def spend(self, property_id: str, tokens: int) -> int:
        """Count tokens used for a property and return its total so far."""
        with self._lock:
            self._used[property_id] = self._used.get(property_id, 0) + tokens
            return self._used[property_id]


class _ApiError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def handle_ga4_request(
    world: GA4World,
    session: GA4Session,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Response:
    """Return (status, headers, body) for one request to the emulated GA4 APIs."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if path == TOKEN_PATH:
        return _token_response(session, method, lowered, body)
    try:
        payload = _property_request(world, session, method, path, lowered, body)
    except _ApiError as error:
        session.record("ga4", f"http_{error.code}")
        error_body = {"error": {"code": error.code, "message": error.message, "status": error.status}}
        return error.code, _JSON, json.dumps(error_body).encode()
    session.record("ga4", "served")
    return 200, _JSON, json.dumps(payload).encode()


_JSON = {"Content-Type": "application/json; charset=UTF-8"}


def _property_request(
    world: GA4World, session: GA4Session, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    match = _PROPERTY_PATH.match(path)
    if match is None:
        raise _ApiError(404, "NOT_FOUND", f"The sandbox serves no GA4 method at {path[:100]}.")
    _authenticate(session, headers.get("authorization"))
    item = world.property(match.group("id"))
    if item is None:
        raise _ApiError(403, "PERMISSION_DENIED", "User does not have sufficient permissions for this property.")

    rest = match.group("rest")
    if rest is None and method == "GET":
        return _admin_property(item)
    if rest == "/metadata" and method == "GET":
        return _metadata(item)
    if rest == ":runReport" and method == "POST":
        return _run_report(world, session, item, _json_body(body))
    raise _ApiError(404, "NOT_FOUND", "Method not found.")


def _authenticate(session: GA4Session, authorization: str | None) -> None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not session.token_valid(token.strip()):
        raise _ApiError(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential.",
        )


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _ApiError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.") from None
    if not isinstance(payload, dict):
        raise _ApiError(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected an object.")
    return payload


# Admin API and metadata


def _admin_property(item: Property) -> dict[str, Any]:
    return {
        "name": f"properties/{item.property_id}",
        "propertyType": "PROPERTY_TYPE_ORDINARY",
        "createTime": item.create_time,
        "updateTime": item.create_time,
        "parent": f"accounts/{item.account_id}",
        "displayName": item.display_name,
        "industryCategory": "SHOPPING",
        "timeZone": item.time_zone,
        "currencyCode": item.currency,
        "serviceLevel": "GOOGLE_ANALYTICS_STANDARD",
        "account": f"accounts/{item.account_id}",
    }


@dataclass(frozen=True)
class _Table:
    """Rows of one kind with the dimensions and metrics a request may combine."""

    name: str
    dimensions: tuple[str, ...]
    metrics: dict[str, str]


_TRAFFIC = _Table(
    "traffic",
    ("date", "sessionSource", "sessionMedium", "sessionCampaignName", "sessionSourceMedium"),
    {
        "sessions": "TYPE_INTEGER", "engagedSessions": "TYPE_INTEGER", "totalUsers": "TYPE_INTEGER",
        "activeUsers": "TYPE_INTEGER", "newUsers": "TYPE_INTEGER", "keyEvents": "TYPE_FLOAT",
        "purchaseRevenue": "TYPE_CURRENCY",
    },
)
_LANDING = _Table(
    "landing_pages",
    ("date", "landingPage"),
    {"sessions": "TYPE_INTEGER", "engagedSessions": "TYPE_INTEGER", "keyEvents": "TYPE_FLOAT", "totalUsers": "TYPE_INTEGER"},
)
_PURCHASES = _Table(
    "purchases",
    ("date", "transactionId"),
    {
        "purchaseRevenue": "TYPE_CURRENCY", "ecommercePurchases": "TYPE_INTEGER", "transactions": "TYPE_INTEGER",
        "taxAmount": "TYPE_CURRENCY", "shippingAmount": "TYPE_CURRENCY", "itemsPurchased": "TYPE_INTEGER",
    },
)
_TABLES = (_TRAFFIC, _LANDING, _PURCHASES)
_DIMENSIONS = sorted({name for table in _TABLES for name in table.dimensions})
_METRIC_TYPES = {name: kind for table in _TABLES for name, kind in table.metrics.items()}
_DEPRECATED = {"keyEvents": ["conversions"]}


def _metadata(item: Property) -> dict[str, Any]:
    return {
        "name": f"properties/{item.property_id}/metadata",
        "dimensions": [{"apiName": name, "uiName": name, "category": "Sandbox"} for name in _DIMENSIONS],
        "metrics": [
            {"apiName": name, "uiName": name, "type": kind, "category": "Sandbox", **({"deprecatedApiNames": _DEPRECATED[name]} if name in _DEPRECATED else {})}
            for name, kind in sorted(_METRIC_TYPES.items())
        ],
    }


# runReport


def _run_report(world: GA4World, session: GA4Session, item: Property, request: dict[str, Any]) -> dict[str, Any]:
    dimensions = _names(request, "dimensions")
    metrics = _names(request, "metrics")
    table = _table(dimensions, metrics)
    first, last = _date_range(world, item, request.get("dateRanges"))
    limit, offset = _paging(request)

    if world.is_quota_spent(item.property_id):
        raise _ApiError(
            429,
            "RESOURCE_EXHAUSTED",
            "Exhausted property tokens per day for this property. The quota resets at midnight Pacific time.",
        )
    serial = session.next_report()
    if session.throttle_every and serial % session.throttle_every == 0:
        raise _ApiError(429, "RESOURCE_EXHAUSTED", "Exhausted property tokens per hour. Please try again later.")

    facts = []
    other_row = False
    for day in _days(first, last):
        for fact in _facts(table, world.day_report(item.property_id, day)):
            if _passes(request.get("dimensionFilter"), fact):
                facts.append(fact)
                other_row = other_row or fact.get("date") == "(other)"
    rows = _aggregate(facts, dimensions, metrics)
    _order(rows, request.get("orderBys"), dimensions, metrics)

    response: dict[str, Any] = {
        "dimensionHeaders": [{"name": name} for name in dimensions],
        "metricHeaders": [{"name": name, "type": table.metrics[name]} for name in metrics],
    }
    if rows:
        response["rows"] = [
            {
                "dimensionValues": [{"value": key[index]} for index in range(len(dimensions))],
                "metricValues": [{"value": _metric_text(value)} for value in values],
            }
            for key, values in rows[offset : offset + limit]
        ]
        response["rowCount"] = len(rows)
    response["metadata"] = {"currencyCode": item.currency, "timeZone": item.time_zone}
    if other_row:
        response["metadata"]["dataLossFromOtherRow"] = True
    used = session.spend(item.property_id, 1 + len(rows) // 1000)
    if request.get("returnPropertyQuota"):
        response["propertyQuota"] = {"tokensPerDay": {"consumed": used, "remaining": max(0, DAILY_TOKENS - used)}}
    response["kind"] = "analyticsData#runReport"
    return response


def _names(request: dict[str, Any], key: str) -> list[str]:
    items = request.get(key) or []
    if not isinstance(items, list) or not all(isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in items):
        raise _ApiError(400, "INVALID_ARGUMENT", f"Invalid value at '{key}': expected a list of objects with a name.")
    names = [entry["name"] for entry in items]
    limit = MAX_DIMENSIONS if key == "dimensions" else MAX_METRICS
    if len(names) > limit:
        raise _ApiError(400, "INVALID_ARGUMENT", f"Requests are limited to {limit} {key}; this request has {len(names)}.")
    known = _DIMENSIONS if key == "dimensions" else _METRIC_TYPES
    for name in names:
        if name not in known:
            kind = key[:-1]
            raise _ApiError(
                400,
                "INVALID_ARGUMENT",
                f"Field {name[:100]} is not a valid {kind}. For a list of valid dimensions and metrics, see "
                "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema",
            )
    if key == "metrics" and not names:
        raise _ApiError(400, "INVALID_ARGUMENT", "At least one metric is required.")
    return names


def _table(dimensions: list[str], metrics: list[str]) -> _Table:
    for table in _TABLES:
        if set(dimensions) <= set(table.dimensions) and set(metrics) <= set(table.metrics):
            return table
    extra = [name for name in dimensions if name not in _TRAFFIC.dimensions] or metrics
    raise _ApiError(
        400,
        "INVALID_ARGUMENT",
        f"Please remove {', '.join(extra)} to make the request compatible. The request's dimensions & metrics are "
        "incompatible.",
    )


def _date_range(world: GA4World, item: Property, ranges: Any) -> tuple[date, date]:
    if not isinstance(ranges, list) or len(ranges) != 1 or not isinstance(ranges[0], dict):
        raise _ApiError(400, "INVALID_ARGUMENT", "The sandbox needs exactly one entry in dateRanges.")
    today = world.today(item.property_id)
    first = _day(ranges[0].get("startDate"), today, "startDate")
    last = _day(ranges[0].get("endDate"), today, "endDate")
    if last < first:
        raise _ApiError(400, "INVALID_ARGUMENT", "dateRanges[0]: endDate is before startDate.")
    return first, last


def _day(text: Any, today: date, name: str) -> date:
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    match = re.fullmatch(r"(\d+)daysAgo", str(text))
    if match:
        return today - timedelta(days=int(match.group(1)))
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise _ApiError(400, "INVALID_ARGUMENT", f"dateRanges[0].{name} must be YYYY-MM-DD, NdaysAgo, yesterday or today.") from None


def _paging(request: dict[str, Any]) -> tuple[int, int]:
    try:
        limit = int(request.get("limit") or 10_000)
        offset = int(request.get("offset") or 0)
    except (TypeError, ValueError):
        raise _ApiError(400, "INVALID_ARGUMENT", "limit and offset must be integers.") from None
    if limit < 1 or limit > MAX_LIMIT or offset < 0:
        raise _ApiError(400, "INVALID_ARGUMENT", f"limit must be from 1 to {MAX_LIMIT}, and offset at least 0.")
    return limit, offset


def _facts(table: _Table, report: DayReport) -> list[dict[str, Any]]:
    if table is _TRAFFIC:
        return [
            {
                "date": f"{row.day:%Y%m%d}", "sessionSource": row.source, "sessionMedium": row.medium,
                "sessionCampaignName": row.campaign, "sessionSourceMedium": f"{row.source} / {row.medium}",
                "sessions": row.sessions, "engagedSessions": row.engaged_sessions, "totalUsers": row.total_users,
                "activeUsers": row.total_users, "newUsers": row.new_users, "keyEvents": row.key_events,
                "purchaseRevenue": row.purchase_revenue,
            }
            for row in report.traffic
        ]
    if table is _LANDING:
        return [
            {
                "date": f"{row.day:%Y%m%d}" if row.day else "(other)", "landingPage": row.landing_page,
                "sessions": row.sessions, "engagedSessions": row.engaged_sessions, "keyEvents": row.key_events,
                "totalUsers": row.total_users,
            }
            for row in report.landing_pages
        ]
    return [
        {
            "date": f"{row.day:%Y%m%d}", "transactionId": row.transaction_id, "purchaseRevenue": row.purchase_revenue,
            "ecommercePurchases": row.ecommerce_purchases, "transactions": row.ecommerce_purchases,
            "taxAmount": row.tax_amount, "shippingAmount": row.shipping_amount, "itemsPurchased": row.items_purchased,
        }
        for row in report.purchases
    ]


def _passes(expression: Any, fact: dict[str, Any]) -> bool:
    """Apply a FilterExpression: andGroup, orGroup, notExpression, and filters with string or in-list tests."""
    if not expression:
        return True
    if not isinstance(expression, dict):
        raise _ApiError(400, "INVALID_ARGUMENT", "dimensionFilter must be a FilterExpression object.")
    if "andGroup" in expression:
        return all(_passes(item, fact) for item in expression["andGroup"].get("expressions") or [])
    if "orGroup" in expression:
        return any(_passes(item, fact) for item in expression["orGroup"].get("expressions") or [])
    if "notExpression" in expression:
        return not _passes(expression["notExpression"], fact)

    test = expression.get("filter") or {}
    name = test.get("fieldName")
    if name not in fact:
        raise _ApiError(400, "INVALID_ARGUMENT", f"dimensionFilter names {str(name)[:100]}, which is not a dimension of the request's kind.")

    value = str(fact[name])
    if "inListFilter" in test:
        return value in (test["inListFilter"].get("values") or [])
    string = test.get("stringFilter") or {}
    expected = str(string.get("value", ""))
    if not string.get("caseSensitive"):
        value, expected = value.lower(), expected.lower()
    kind = string.get("matchType", "EXACT")
    checks = {
        "EXACT": value == expected, "CONTAINS": expected in value, "BEGINS_WITH": value.startswith(expected),
        "ENDS_WITH": value.endswith(expected), "FULL_REGEXP": re.fullmatch(expected, value) is not None,
    }
    if kind not in checks:
        raise _ApiError(400, "INVALID_ARGUMENT", f"stringFilter.matchType {str(kind)[:40]} is not served by the sandbox.")
    return checks[kind]


def _aggregate(facts: list[dict[str, Any]], dimensions: list[str], metrics: list[str]) -> list[tuple[tuple[str, ...], list[Any]]]:
    totals: dict[tuple[str, ...], list[Any]] = {}
    for fact in facts:
        key = tuple(str(fact[name]) for name in dimensions)
        values = totals.setdefault(key, [0] * len(metrics))
        for index, name in enumerate(metrics):
            values[index] += fact[name]
    return sorted(totals.items())


def _order(rows: list[tuple[tuple[str, ...], list[Any]]], order_bys: Any, dimensions: list[str], metrics: list[str]) -> None:
    for order in reversed(order_bys or []):
        descending = bool(order.get("desc"))
        if "dimension" in order:
            name = order["dimension"].get("dimensionName")
            if name not in dimensions:
                raise _ApiError(400, "INVALID_ARGUMENT", f"orderBys names dimension {str(name)[:100]}, which the request does not select.")
            index = dimensions.index(name)
            rows.sort(key=lambda row: row[0][index], reverse=descending)
        elif "metric" in order:
            name = order["metric"].get("metricName")
            if name not in metrics:
                raise _ApiError(400, "INVALID_ARGUMENT", f"orderBys names metric {str(name)[:100]}, which the request does not select.")
            index = metrics.index(name)
            rows.sort(key=lambda row: row[1][index], reverse=descending)


def _metric_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value != value.to_integral_value() else str(int(value))
    return str(value)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


# Token endpoint


def _token_response(session: GA4Session, method: str, headers: Mapping[str, str], body: bytes) -> Response:
    if method != "POST":
        return _oauth_error(session, 405, "invalid_request", "The token endpoint accepts only POST.")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    grant = form.get("grant_type")
    if grant == JWT_BEARER_GRANT:
        problem = _assertion_problem(form.get("assertion") or "", headers.get("host"))
    elif grant == "refresh_token":
        expected = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "refresh_token": DEMO_REFRESH_TOKEN}
        wrong = [name for name, value in expected.items() if not secrets.compare_digest(form.get(name, ""), value)]
        problem = "Token has been expired or revoked." if wrong else None
    else:
        return _oauth_error(session, 400, "unsupported_grant_type", "Invalid grant_type.")
    if problem:
        return _oauth_error(session, 400, "invalid_grant", problem)

    session.record("token", "served")
    payload = {"access_token": session.issue_token(), "expires_in": TOKEN_LIFETIME_SECONDS, "token_type": "Bearer"}
    return 200, {**_JSON, "Cache-Control": "no-store"}, json.dumps(payload).encode()


def _assertion_problem(assertion: str, host: str | None) -> str | None:
    """Verify the assertion's signature, issuer, audience, scope and lifetime; return what is wrong, or None."""
    try:
        claims = jwt.decode(
            assertion, demo_public_key_pem(), algorithms=["RS256"], options={"verify_aud": False, "require": ["exp", "iat"]}, leeway=60
        )
    except jwt.InvalidSignatureError:
        return "Invalid JWT Signature."
    except jwt.PyJWTError:
        return "Invalid JWT: the assertion is malformed or expired."
    if claims.get("iss") != DEMO_SERVICE_ACCOUNT_EMAIL:
        return "Invalid JWT: the issuer is not a known service account."
    if urlsplit(str(claims.get("aud", ""))).path != TOKEN_PATH:
        return "Invalid JWT: the audience is not this token endpoint."
    if ANALYTICS_SCOPE not in str(claims.get("scope", "")).split():
        return "Invalid JWT: the scope does not include analytics.readonly."
    if int(claims["exp"]) - int(claims["iat"]) > 3600:
        return "Invalid JWT: the assertion lives longer than one hour."
    return None


def _oauth_error(session: GA4Session, status: int, error: str, description: str) -> Response:
    session.record("token", "failed")
    return status, _JSON, json.dumps({"error": error, "error_description": description}).encode()
