"""Google Ads REST responses for an `AdsWorld`: OAuth token grants and GAQL `searchStream`.

`handle_google_ads_request` takes no socket, like the Stripe handler. It serves
`POST /google/oauth2/token` (refresh-token grant) and
`POST /{version}/customers/{customer_id}/googleAds:searchStream` for v24, v25 and v26, with the
header checks, error bodies (`GoogleAdsFailure`), batch shape and proto3 JSON rules of the
real REST API. A `GoogleAdsSession` contains what changes between requests: issued tokens, the
request serial number that drives the throttle schedule, and counters for tests.

GAQL support: `SELECT f, ... FROM resource [WHERE c AND ...] [ORDER BY f [ASC|DESC], ...]
[LIMIT n] [PARAMETERS ...]` over customer, campaign, ad_group, ad_group_ad and campaign_budget.
Conditions: `=`, `!=`, `>`, `>=`, `<`, `<=`, `IN`, `NOT IN`, `LIKE`, `NOT LIKE`, `BETWEEN` and
`DURING` (TODAY, YESTERDAY, LAST_7_DAYS, LAST_14_DAYS, LAST_30_DAYS, THIS_MONTH, LAST_MONTH,
counted in the customer's time zone). Like the real API, selecting `segments.date` needs a
finite date range in WHERE (else EXPECTED_FILTERS_ON_DATE_RANGE), while metrics without
`segments.date` and without a date condition are totals over every day of the world.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl

from sandbox.ads_data import (
    GOOGLE_ADS,
    GOOGLE_MANAGER_ID,
    GOOGLE_QUOTA_CUSTOMER_ID,
    AdAccount,
    AdsWorld,
    GoogleAd,
    GoogleAdDay,
    GoogleAdGroup,
    GoogleBudget,
    GoogleCampaign,
)
from sandbox.outcomes import OutcomeCounter

DEMO_CLIENT_ID = "spendlake-demo-client"
DEMO_CLIENT_SECRET = "spendlake-demo-secret"
DEMO_REFRESH_TOKEN = "spendlake-demo-refresh-token"
DEMO_DEVELOPER_TOKEN = "spendlake-demo-developer-token"
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"

TOKEN_PATH = "/google/oauth2/token"
SUPPORTED_VERSIONS = ("v24", "v25", "v26")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
TOKEN_LIFETIME_SECONDS = 3599
BATCH_SIZE = 500

# Searches number 3, 11, 19, ... of a session return RESOURCE_TEMPORARILY_EXHAUSTED.
THROTTLE_FIRST = 3
THROTTLE_EVERY = 8
THROTTLE_RETRY_DELAY = "1s"
QUOTA_RETRY_DELAY = "43200s"

_SEARCH_STREAM_PATH = re.compile(r"^/(?P<version>v\d+)/customers/(?P<customer>[^/]+)/googleAds:(?P<method>\w+)$")
_GOOGLE_ADS_PATH = re.compile(r"^/v\d+/customers(?::|/[^/]+/googleAds:)")
_ECHO_LIMIT = 100

Response = tuple[int, dict[str, str], bytes]

# The real API's top-level messages per HTTP status; details carry the specific reason.
_STATUS_TEXT = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request is missing required authentication credential. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Method not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
}


def handles_path(path: str) -> bool:
    """Return True for paths this module serves (the token endpoint and customer methods)."""
    return path.startswith("/google/") or bool(_GOOGLE_ADS_PATH.match(path))


class GoogleAdsSession(OutcomeCounter):
    """Mutable state of one sandbox server for Google Ads: tokens, serial numbers and counters.

    `clock` returns seconds and decides token expiry; tests pass a settable one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        super().__init__()
        self._tokens: dict[str, float] = {}
        self._requests = 0
        self._searches = 0

    def issue_token(self) -> str:
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self._clock() + TOKEN_LIFETIME_SECONDS
        return token

    def token_state(self, token: str) -> str:
        """Return "valid", "expired" or "unknown" for an access token."""
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return "unknown"
            return "valid" if self._clock() < expiry else "expired"

    def next_request(self) -> int:
        """Return the 1-based serial number of a request, used for its request id."""
        with self._lock:
            self._requests += 1
            return self._requests

    def next_search(self) -> int:
        """Return the 1-based number of an authorized searchStream request."""
        with self._lock:
            self._searches += 1
            return self._searches



class _GoogleAdsError(Exception):
    """An error returned in Google's REST shape, with one GoogleAdsError inside."""

    def __init__(
        self,
        http_status: int,
        error_code: Mapping[str, str],
        message: str,
        *,
        trigger: str | None = None,
        details: Mapping[str, Any] | None = None,
        outcome: str = "failed",
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = dict(error_code)
        self.message = message
        self.trigger = trigger
        self.details = dict(details) if details else None
        self.outcome = outcome


class _QueryError(_GoogleAdsError):
    def __init__(self, code: str, message: str, trigger: str | None = None) -> None:
        super().__init__(400, {"queryError": code}, message, trigger=trigger)


def handle_google_ads_request(
    world: AdsWorld,
    session: GoogleAdsSession,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Response:
    """Return (status, headers, body) for one request to the emulated Google Ads API.

    `path` excludes the query string. Header names are matched case-insensitively.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if path == TOKEN_PATH:
        return _token_response(session, method, lowered, body)
    request_id = _request_id(world.seed, session.next_request())

    match = _SEARCH_STREAM_PATH.match(path)
    version = match.group("version") if match and match.group("version") in SUPPORTED_VERSIONS else LATEST_VERSION
    try:
        batches = _search_stream(world, session, method, match, lowered, body, request_id)
    except _GoogleAdsError as error:
        session.record("search_stream", error.outcome)
        return _error_response(error, version, request_id)

    session.record("search_stream", "served")
    return 200, _headers(request_id), json.dumps(batches).encode()


def _search_stream(
    world: AdsWorld,
    session: GoogleAdsSession,
    method: str,
    match: re.Match[str] | None,
    headers: Mapping[str, str],
    body: bytes,
    request_id: str,
) -> list[dict[str, Any]]:
    """Check the request in the order the real API does, then run its GAQL query."""
    if match is None or match.group("method") != "searchStream":
        raise _GoogleAdsError(
            404,
            {"requestError": "UNKNOWN"},
            "The sandbox serves only POST /{version}/customers/{customer_id}/googleAds:searchStream.",
        )
    version = match.group("version")
    if version not in SUPPORTED_VERSIONS:
        raise _GoogleAdsError(
            404,
            {"requestError": "UNKNOWN"},
            f"Version {_echo(version)} is not served; use one of {', '.join(SUPPORTED_VERSIONS)}.",
        )
    if method != "POST":
        raise _GoogleAdsError(404, {"requestError": "UNKNOWN"}, "googleAds:searchStream accepts only POST.")

    _authenticate(session, headers.get("authorization"))
    _check_developer_token(headers.get("developer-token"))
    customer = _authorize_customer(world, match.group("customer"), headers.get("login-customer-id"))
    _check_quota(session, customer)

    gaql = _query_text(body)
    query = _Parser(gaql).parse()
    rows = _execute(world, customer, query)
    return _batches(rows, query, request_id)


# Token endpoint


def _token_response(
    session: GoogleAdsSession, method: str, headers: Mapping[str, str], body: bytes
) -> Response:
    if method != "POST":
        return _oauth_error(session, 405, "invalid_request", "The token endpoint accepts only POST.")

    form = _token_form(headers.get("content-type", ""), body)
    grant_type = form.get("grant_type")
    if grant_type != "refresh_token":
        return _oauth_error(session, 400, "unsupported_grant_type", f"Invalid grant_type: {_echo(grant_type or '')}")
    for name in ("client_id", "client_secret", "refresh_token"):
        if not form.get(name):
            return _oauth_error(session, 400, "invalid_request", f"Missing required parameter: {name}")

    expected = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": DEMO_REFRESH_TOKEN,
    }
    if not all(_same_secret(form[name], value) for name, value in expected.items()):
        return _oauth_error(session, 400, "invalid_grant", "Token has been expired or revoked.")

    session.record("token", "served")
    payload = {
        "access_token": session.issue_token(),
        "expires_in": TOKEN_LIFETIME_SECONDS,
        "token_type": "Bearer",
        "scope": ADWORDS_SCOPE,
    }
    headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    return 200, headers, json.dumps(payload).encode()


def _token_form(content_type: str, body: bytes) -> dict[str, str]:
    """Read a form-encoded body, or a JSON object when the content type names JSON."""
    text = body.decode("utf-8", "replace")
    if "json" in content_type.lower():
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            return {}
        return {str(key): str(value) for key, value in payload.items()} if isinstance(payload, dict) else {}
    return dict(parse_qsl(text, keep_blank_values=True))


def _oauth_error(session: GoogleAdsSession, status: int, error: str, description: str) -> Response:
    session.record("token", "failed")
    payload = {"error": error, "error_description": description}
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode()


# Header checks


def _authenticate(session: GoogleAdsSession, authorization: str | None) -> None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _GoogleAdsError(
            401,
            {"authenticationError": "OAUTH_TOKEN_HEADER_INVALID"},
            "Missing or invalid Authorization header: send 'Authorization: Bearer <access token>'.",
        )
    state = session.token_state(token.strip())
    if state == "expired":
        raise _GoogleAdsError(
            401,
            {"authenticationError": "OAUTH_TOKEN_EXPIRED"},
            "OAuth token in the header has expired: refresh it at the token endpoint.",
        )
    if state != "valid":
        raise _GoogleAdsError(
            401,
            {"authenticationError": "OAUTH_TOKEN_INVALID"},
            "OAuth token in the header is not valid: get one from the token endpoint.",
        )


def _check_developer_token(token: str | None) -> None:
    # NOTE: the real API returns 400 requestError DEVELOPER_TOKEN_PARAMETER_MISSING for a
    # missing header, but the sandbox returns 401 for both cases.
    if not token:
        raise _GoogleAdsError(
            401,
            {"authenticationError": "DEVELOPER_TOKEN_INVALID"},
            "The developer-token header is missing.",
        )
    if not _same_secret(token, DEMO_DEVELOPER_TOKEN):
        raise _GoogleAdsError(
            401,
            {"authenticationError": "DEVELOPER_TOKEN_INVALID"},
            "The developer token is not valid.",
        )


def _authorize_customer(world: AdsWorld, customer_id: str, login_customer_id: str | None) -> AdAccount:
    if not customer_id.isdigit():
        raise _GoogleAdsError(
            400,
            {"authenticationError": "CLIENT_CUSTOMER_ID_INVALID"},
            f"Invalid customer id '{_echo(customer_id)}': use the 10 digits without hyphens.",
        )
    account = world.account(customer_id)
    if account is None or account.platform != GOOGLE_ADS:
        raise _GoogleAdsError(
            403,
            {"authorizationError": "CUSTOMER_NOT_ENABLED"},
            f"The customer account {customer_id} can't be accessed because it is not yet enabled "
            "or has been deactivated.",
        )

    login = (login_customer_id or "").strip()
    if account.manager:
        if login and login != account.account_id:
            raise _GoogleAdsError(
                403,
                {"authorizationError": "INVALID_LOGIN_CUSTOMER_ID_SERVING_CUSTOMER_ID_COMBINATION"},
                f"The login customer {_echo(login)} does not manage customer {customer_id}.",
            )
        return account
    if not login:
        raise _GoogleAdsError(
            403,
            {"authorizationError": "USER_PERMISSION_DENIED"},
            "User doesn't have permission to access customer. Note: If you're accessing a client "
            "customer, the manager's customer id must be set in the 'login-customer-id' header.",
        )
    if login != GOOGLE_MANAGER_ID:
        raise _GoogleAdsError(
            403,
            {"authorizationError": "INVALID_LOGIN_CUSTOMER_ID_SERVING_CUSTOMER_ID_COMBINATION"},
            f"The login customer {_echo(login)} does not manage customer {customer_id}: use the "
            "manager id as 10 digits without hyphens.",
        )
    return account


def _check_quota(session: GoogleAdsSession, customer: AdAccount) -> None:
    """Apply the spent daily quota of one customer, then the session's throttle schedule."""
    if customer.account_id == GOOGLE_QUOTA_CUSTOMER_ID:
        raise _GoogleAdsError(
            429,
            {"quotaError": "RESOURCE_EXHAUSTED"},
            "Too many requests. Retry in 43200 seconds.",
            details={
                "quotaErrorDetails": {
                    "rateScope": "DEVELOPER",
                    "rateName": "Number of operations for basic access",
                    "retryDelay": QUOTA_RETRY_DELAY,
                }
            },
            outcome="quota_exhausted",
        )

    number = session.next_search()
    if number >= THROTTLE_FIRST and (number - THROTTLE_FIRST) % THROTTLE_EVERY == 0:
        raise _GoogleAdsError(
            429,
            {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
            "Too many requests. Retry in 1 seconds.",
            details={
                "quotaErrorDetails": {
                    "rateScope": "ACCOUNT",
                    "rateName": "Requests per minute",
                    "retryDelay": THROTTLE_RETRY_DELAY,
                }
            },
            outcome="throttled",
        )


def _query_text(body: bytes) -> str:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _GoogleAdsError(
            400,
            {"requestError": "INVALID_INPUT"},
            'Invalid JSON payload received: send a JSON object {"query": "<GAQL>"}.',
        ) from None
    query = payload.get("query") if isinstance(payload, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise _GoogleAdsError(
            400,
            {"requestError": "REQUIRED_FIELD_MISSING"},
            'The request body has no "query": send {"query": "<GAQL>"}.',
            trigger="query",
        )
    return query


# GAQL fields


@dataclass(frozen=True)
class _Totals:
    impressions: int = 0
    clicks: int = 0
    cost_micros: int = 0
    conversions_centi: int = 0
    conversions_value_micros: int = 0
    all_conversions_centi: int = 0
    view_through_conversions: int = 0

    def plus(self, day: GoogleAdDay) -> _Totals:
        return _Totals(
            self.impressions + day.impressions,
            self.clicks + day.clicks,
            self.cost_micros + day.cost_micros,
            self.conversions_centi + day.conversions_centi,
            self.conversions_value_micros + day.conversions_value_micros,
            self.all_conversions_centi + day.all_conversions_centi,
            self.view_through_conversions + day.view_through_conversions,
        )

    def is_empty(self) -> bool:
        return self.impressions == 0 and self.cost_micros == 0


@dataclass(frozen=True)
class _Row:
    """One GoogleAdsRow before rendering: the entities it describes, its day and metrics."""

    customer: AdAccount
    campaign: GoogleCampaign | None = None
    budget: GoogleBudget | None = None
    ad_group: GoogleAdGroup | None = None
    ad: GoogleAd | None = None
    day: date | None = None
    totals: _Totals = field(default_factory=_Totals)


@dataclass(frozen=True)
class _Field:
    """A selectable GAQL field: its owner (a resource, "segments" or "metrics"), type and getter.

    Types: int64 (rendered as a JSON string), double, string, bool, enum, list and date.
    """

    name: str
    owner: str
    type: str
    getter: Callable[[_Row], Any]
    enum_values: frozenset[str] = frozenset()


_STATUSES = frozenset({"ENABLED", "PAUSED", "REMOVED", "UNKNOWN", "UNSPECIFIED"})
_CHANNELS = frozenset({
    "SEARCH", "DISPLAY", "SHOPPING", "HOTEL", "VIDEO", "MULTI_CHANNEL", "LOCAL", "SMART",
    "PERFORMANCE_MAX", "LOCAL_SERVICES", "TRAVEL", "DEMAND_GEN", "UNKNOWN", "UNSPECIFIED",
})
_BIDDING = frozenset({
    "COMMISSION", "ENHANCED_CPC", "INVALID", "MANUAL_CPA", "MANUAL_CPC", "MANUAL_CPM",
    "MANUAL_CPV", "MAXIMIZE_CONVERSIONS", "MAXIMIZE_CONVERSION_VALUE", "PAGE_ONE_PROMOTED",
    "PERCENT_CPC", "TARGET_CPA", "TARGET_CPM", "TARGET_CPV", "TARGET_IMPRESSION_SHARE",
    "TARGET_OUTRANK_SHARE", "TARGET_ROAS", "TARGET_SPEND", "UNKNOWN", "UNSPECIFIED",
})
_AD_GROUP_TYPES = frozenset({
    "SEARCH_STANDARD", "DISPLAY_STANDARD", "SHOPPING_PRODUCT_ADS", "SEARCH_DYNAMIC_ADS",
    "VIDEO_RESPONSIVE", "VIDEO_TRUE_VIEW_IN_STREAM", "HOTEL_ADS", "SHOPPING_SMART_ADS",
    "UNKNOWN", "UNSPECIFIED",
})
_AD_TYPES = frozenset({
    "RESPONSIVE_SEARCH_AD", "EXPANDED_TEXT_AD", "SHOPPING_PRODUCT_AD", "RESPONSIVE_DISPLAY_AD",
    "VIDEO_RESPONSIVE_AD", "EXPANDED_DYNAMIC_SEARCH_AD", "IMAGE_AD", "VIDEO_AD", "TEXT_AD",
    "UNKNOWN", "UNSPECIFIED",
})
_CUSTOMER_STATUSES = frozenset({"ENABLED", "CANCELED", "SUSPENDED", "CLOSED", "UNKNOWN", "UNSPECIFIED"})
_BUDGET_STATUSES = frozenset({"ENABLED", "REMOVED", "UNKNOWN", "UNSPECIFIED"})
_DELIVERY_METHODS = frozenset({"STANDARD", "ACCELERATED", "UNKNOWN", "UNSPECIFIED"})


def _customer_name(row: _Row) -> str:
    return f"customers/{row.customer.account_id}"


def _campaign(row: _Row) -> GoogleCampaign:
    assert row.campaign is not None
    return row.campaign


def _budget(row: _Row) -> GoogleBudget:
    assert row.budget is not None
    return row.budget


def _ad_group(row: _Row) -> GoogleAdGroup:
    assert row.ad_group is not None
    return row.ad_group


def _ad(row: _Row) -> GoogleAd:
    assert row.ad is not None
    return row.ad


def _campaign_name(customer_id: str, campaign_id: int) -> str:
    return f"customers/{customer_id}/campaigns/{campaign_id}"


def _budget_name(customer_id: str, budget_id: int) -> str:
    return f"customers/{customer_id}/campaignBudgets/{budget_id}"


def _ad_group_name(customer_id: str, ad_group_id: int) -> str:
    return f"customers/{customer_id}/adGroups/{ad_group_id}"


def _ad_group_ad_name(row: _Row) -> str:
    return f"customers/{row.customer.account_id}/adGroupAds/{_ad(row).ad_group_id}~{_ad(row).id}"


def _ad_name(row: _Row) -> str:
    return f"customers/{row.customer.account_id}/ads/{_ad(row).id}"


def _build_fields() -> dict[str, _Field]:
    defined = [
        _Field("customer.id", "customer", "int64", lambda row: int(row.customer.account_id)),
        _Field("customer.resource_name", "customer", "string", _customer_name),
        _Field("customer.descriptive_name", "customer", "string", lambda row: row.customer.name),
        _Field("customer.currency_code", "customer", "string", lambda row: row.customer.currency),
        _Field("customer.time_zone", "customer", "string", lambda row: row.customer.time_zone),
        _Field("customer.manager", "customer", "bool", lambda row: row.customer.manager),
        _Field("customer.test_account", "customer", "bool", lambda row: False),
        _Field("customer.status", "customer", "enum", lambda row: "ENABLED", _CUSTOMER_STATUSES),
        _Field("campaign.id", "campaign", "int64", lambda row: _campaign(row).id),
        _Field(
            "campaign.resource_name", "campaign", "string",
            lambda row: _campaign_name(row.customer.account_id, _campaign(row).id),
        ),
        _Field("campaign.name", "campaign", "string", lambda row: _campaign(row).name),
        _Field("campaign.status", "campaign", "enum", lambda row: _campaign(row).status, _STATUSES),
        _Field(
            "campaign.advertising_channel_type", "campaign", "enum",
            lambda row: _campaign(row).advertising_channel_type, _CHANNELS,
        ),
        _Field(
            "campaign.bidding_strategy_type", "campaign", "enum",
            lambda row: _campaign(row).bidding_strategy_type, _BIDDING,
        ),
        _Field(
            "campaign.start_date_time", "campaign", "string",
            lambda row: f"{_campaign(row).start_date.isoformat()} 00:00:00",
        ),
        _Field(
            "campaign.end_date_time", "campaign", "string",
            lambda row: f"{_campaign(row).end_date.isoformat()} 23:59:59",
        ),
        _Field(
            "campaign.campaign_budget", "campaign", "string",
            lambda row: _budget_name(row.customer.account_id, _campaign(row).budget_id),
        ),
        _Field("ad_group.id", "ad_group", "int64", lambda row: _ad_group(row).id),
        _Field(
            "ad_group.resource_name", "ad_group", "string",
            lambda row: _ad_group_name(row.customer.account_id, _ad_group(row).id),
        ),
        _Field("ad_group.name", "ad_group", "string", lambda row: _ad_group(row).name),
        _Field("ad_group.status", "ad_group", "enum", lambda row: _ad_group(row).status, _STATUSES),
        _Field("ad_group.type", "ad_group", "enum", lambda row: _ad_group(row).type, _AD_GROUP_TYPES),
        _Field(
            "ad_group.campaign", "ad_group", "string",
            lambda row: _campaign_name(row.customer.account_id, _ad_group(row).campaign_id),
        ),
        _Field("ad_group_ad.resource_name", "ad_group_ad", "string", _ad_group_ad_name),
        _Field("ad_group_ad.status", "ad_group_ad", "enum", lambda row: _ad(row).status, _STATUSES),
        _Field("ad_group_ad.ad_group", "ad_group_ad", "string",
               lambda row: _ad_group_name(row.customer.account_id, _ad(row).ad_group_id)),
        _Field("ad_group_ad.ad.id", "ad_group_ad", "int64", lambda row: _ad(row).id),
        _Field("ad_group_ad.ad.resource_name", "ad_group_ad", "string", _ad_name),
        _Field("ad_group_ad.ad.name", "ad_group_ad", "string", lambda row: _ad(row).name),
        _Field("ad_group_ad.ad.type", "ad_group_ad", "enum", lambda row: _ad(row).type, _AD_TYPES),
        _Field("ad_group_ad.ad.final_urls", "ad_group_ad", "list", lambda row: list(_ad(row).final_urls)),
        _Field("campaign_budget.id", "campaign_budget", "int64", lambda row: _budget(row).id),
        _Field(
            "campaign_budget.resource_name", "campaign_budget", "string",
            lambda row: _budget_name(row.customer.account_id, _budget(row).id),
        ),
        _Field("campaign_budget.name", "campaign_budget", "string", lambda row: _budget(row).name),
        _Field("campaign_budget.amount_micros", "campaign_budget", "int64", lambda row: _budget(row).amount_micros),
        _Field(
            "campaign_budget.delivery_method", "campaign_budget", "enum",
            lambda row: _budget(row).delivery_method, _DELIVERY_METHODS,
        ),
        _Field(
            "campaign_budget.status", "campaign_budget", "enum",
            lambda row: _budget(row).status, _BUDGET_STATUSES,
        ),
        _Field("segments.date", "segments", "date", lambda row: row.day),
        _Field("metrics.impressions", "metrics", "int64", lambda row: row.totals.impressions),
        _Field("metrics.clicks", "metrics", "int64", lambda row: row.totals.clicks),
        _Field("metrics.cost_micros", "metrics", "int64", lambda row: row.totals.cost_micros),
        _Field("metrics.conversions", "metrics", "double", lambda row: row.totals.conversions_centi / 100),
        _Field(
            "metrics.conversions_value", "metrics", "double",
            lambda row: row.totals.conversions_value_micros / 1_000_000,
        ),
        _Field("metrics.all_conversions", "metrics", "double", lambda row: row.totals.all_conversions_centi / 100),
        _Field(
            "metrics.view_through_conversions", "metrics", "int64",
            lambda row: row.totals.view_through_conversions,
        ),
    ]
    return {item.name: item for item in defined}


FIELDS = _build_fields()

# FROM resource -> resources whose fields it may select, and whether it has metrics.
RESOURCES: dict[str, tuple[frozenset[str], bool]] = {
    "customer": (frozenset({"customer"}), True),
    "campaign": (frozenset({"customer", "campaign", "campaign_budget"}), True),
    "ad_group": (frozenset({"customer", "campaign", "ad_group"}), True),
    "ad_group_ad": (frozenset({"customer", "campaign", "ad_group", "ad_group_ad"}), True),
    "campaign_budget": (frozenset({"customer", "campaign_budget"}), False),
}


# GAQL parsing


@dataclass(frozen=True)
class _Condition:
    field: _Field
    operator: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class _Query:
    select: tuple[_Field, ...]
    resource: str
    conditions: tuple[_Condition, ...]
    order: tuple[tuple[_Field, bool], ...]
    limit: int | None

    @property
    def segmented(self) -> bool:
        return any(item.owner == "segments" for item in self.select)

    @property
    def uses_metrics(self) -> bool:
        """True when rows come from daily metrics rather than from the entity list."""
        referenced = [*self.select]
        referenced += [condition.field for condition in self.conditions]
        referenced += [item for item, _ in self.order]
        return any(item.owner in {"metrics", "segments"} for item in referenced)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<symbol>>=|<=|!=|=|>|<|\(|\)|,)
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({
    "SELECT", "FROM", "WHERE", "AND", "ORDER", "BY", "ASC", "DESC", "LIMIT", "PARAMETERS",
    "BETWEEN", "IN", "NOT", "DURING", "LIKE",
})
_COMPARISONS = frozenset({"=", "!=", ">", ">=", "<", "<="})
_DURING = ("TODAY", "YESTERDAY", "LAST_7_DAYS", "LAST_14_DAYS", "LAST_30_DAYS", "THIS_MONTH", "LAST_MONTH")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    position = 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _QueryError(
                "UNEXPECTED_INPUT",
                f"Error in query: unexpected input at character {position}.",
                trigger=_echo(text[position : position + 20]),
            )
        kind = match.lastgroup or "symbol"
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser for the GAQL subset described in the module docstring."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._position = 0

    def parse(self) -> _Query:
        if not self._take_keyword("SELECT"):
            raise _QueryError("EXPECTED_SELECT", "Error in query: expected SELECT at the start.")
        names = self._field_names()

        if not self._take_keyword("FROM"):
            raise _QueryError("EXPECTED_FROM", "Error in query: expected FROM after the selected fields.")
        resource = self._name("a resource after FROM")
        if resource not in RESOURCES:
            raise _QueryError(
                "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
                f"Error in FROM clause: invalid resource '{_echo(resource)}'; the sandbox serves "
                f"{', '.join(RESOURCES)}.",
                trigger=_echo(resource),
            )
        select = tuple(_resolve(name, resource) for name in names)

        conditions: list[_Condition] = []
        if self._take_keyword("WHERE"):
            conditions.append(self._condition(resource))
            while self._take_keyword("AND"):
                conditions.append(self._condition(resource))

        order: list[tuple[_Field, bool]] = []
        if self._take_keyword("ORDER"):
            if not self._take_keyword("BY"):
                raise _QueryError("EXPECTED_BY", "Error in query: expected BY after ORDER.")
            order.append(self._ordering(resource))
            while self._take_symbol(","):
                order.append(self._ordering(resource))

        limit = self._limit() if self._take_keyword("LIMIT") else None
        if self._take_keyword("PARAMETERS"):
            self._skip_parameters()
        if self._peek() is not None:
            raise _QueryError(
                "UNEXPECTED_INPUT",
                f"Error in query: unexpected input '{_echo(self._peek().text)}'.",  # type: ignore[union-attr]
                trigger=_echo(self._peek().text),  # type: ignore[union-attr]
            )
        return _Query(select, resource, tuple(conditions), tuple(order), limit)

    def _field_names(self) -> list[str]:
        names = [self._name("a field after SELECT")]
        while self._take_symbol(","):
            names.append(self._name("a field after ','"))
        return names

    def _condition(self, resource: str) -> _Condition:
        item = _resolve(self._name("a field in WHERE"), resource)
        token = self._peek()
        if token is None:
            raise _QueryError("UNEXPECTED_END_OF_QUERY", "Error in WHERE clause: expected an operator.")

        if token.kind == "symbol" and token.text in _COMPARISONS:
            self._position += 1
            return _Condition(item, token.text, (self._value(item),))
        word = token.text.upper() if token.kind == "name" else ""
        if word == "BETWEEN":
            self._position += 1
            low = self._value(item)
            if not self._take_keyword("AND"):
                raise _QueryError(
                    "EXPECTED_AND",
                    "Error in WHERE clause: expected AND between the BETWEEN values.",
                )
            return _Condition(item, "BETWEEN", (low, self._value(item)))
        if word == "DURING":
            self._position += 1
            return _Condition(item, "DURING", (self._during(item),))
        negated = False
        if word == "NOT":
            self._position += 1
            negated = True
            word = self._negated_operator()
        elif word in {"IN", "LIKE"}:
            self._position += 1
        if word == "IN":
            return _Condition(item, "NOT IN" if negated else "IN", self._value_list(item))
        if word == "LIKE":
            return _Condition(item, "NOT LIKE" if negated else "LIKE", (self._like_pattern(item),))
        raise _QueryError(
            "BAD_OPERATOR",
            f"Error in WHERE clause: invalid operator '{_echo(token.text)}' after {item.name}.",
            trigger=_echo(token.text),
        )

    def _ordering(self, resource: str) -> tuple[_Field, bool]:
        item = _resolve(self._name("a field in ORDER BY"), resource)
        if self._take_keyword("DESC"):
            return item, True
        self._take_keyword("ASC")
        return item, False

    def _limit(self) -> int:
        token = self._next("a number after LIMIT")
        if token.kind != "number" or not token.text.isdigit() or int(token.text) < 1:
            raise _QueryError(
                "BAD_LIMIT_VALUE",
                f"Error in LIMIT clause: '{_echo(token.text)}' is not a positive integer.",
            )
        return int(token.text)

    def _skip_parameters(self) -> None:
        """Accept `PARAMETERS name = value, ...`; the sandbox ignores them."""
        while True:
            self._name("a parameter name")
            if not self._take_symbol("="):
                raise _QueryError("BAD_PARAMETER_VALUE", "Error in PARAMETERS clause: expected '='.")
            self._next("a parameter value")
            if not self._take_symbol(","):
                return

    def _value(self, item: _Field) -> Any:
        token = self._next(f"a value for {item.name}")
        if token.kind == "symbol":
            raise _QueryError("UNEXPECTED_INPUT", f"Error in WHERE clause: expected a value for {item.name}.")
        return _typed_value(item, token)

    def _negated_operator(self) -> str:
        """Read the IN or LIKE after NOT, which `_name` would reject as keywords."""
        token = self._next("IN or LIKE after NOT")
        word = token.text.upper() if token.kind == "name" else ""
        if word not in {"IN", "LIKE"}:
            raise _QueryError(
                "UNEXPECTED_INPUT",
                f"Error in query: expected IN or LIKE after NOT, found '{_echo(token.text)}'.",
                trigger=_echo(token.text),
            )
        return word

    def _value_list(self, item: _Field) -> tuple[Any, ...]:
        if not self._take_symbol("("):
            raise _QueryError(
                "EXPECTED_LIST",
                f"Error in WHERE clause: IN on {item.name} expects a list in parentheses.",
            )
        values = [self._value(item)]
        while self._take_symbol(","):
            values.append(self._value(item))
        if not self._take_symbol(")"):
            raise _QueryError(
                "EXPECTED_LIST",
                f"Error in WHERE clause: the list for {item.name} is not closed with ')'.",
            )
        return tuple(values)

    def _like_pattern(self, item: _Field) -> _LikePattern:
        if item.type != "string":
            raise _QueryError(
                "BAD_OPERATOR",
                f"Error in WHERE clause: LIKE applies only to text fields, not {item.name}.",
            )
        token = self._next(f"a pattern for {item.name}")
        if token.kind != "string":
            raise _QueryError(
                "BAD_VALUE",
                f"Error in WHERE clause: LIKE on {item.name} expects a quoted pattern.",
            )
        return _LikePattern(_unquote(token.text))

    def _during(self, item: _Field) -> str:
        if item.name != "segments.date":
            raise _QueryError(
                "BAD_OPERATOR",
                f"Error in WHERE clause: DURING applies only to segments.date, not {item.name}.",
            )
        constant = self._name("a date range after DURING").upper()
        if constant not in _DURING:
            raise _QueryError(
                "BAD_ENUM_CONSTANT",
                f"Error in WHERE clause: the sandbox supports DURING {', '.join(_DURING)}, not '{_echo(constant)}'.",
                trigger=_echo(constant),
            )
        return constant

    def _name(self, expected: str) -> str:
        token = self._next(expected)
        if token.kind != "name" or token.text.upper() in _KEYWORDS:
            raise _QueryError(
                "UNEXPECTED_INPUT",
                f"Error in query: expected {expected}, found '{_echo(token.text)}'.",
                trigger=_echo(token.text),
            )
        return token.text

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise _QueryError(
                "UNEXPECTED_END_OF_QUERY",
                f"Error in query: expected {expected}, found the end of the query.",
            )
        self._position += 1
        return token

    def _peek(self) -> _Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take_keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "name" and token.text.upper() == word:
            self._position += 1
            return True
        return False

    def _take_symbol(self, symbol: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "symbol" and token.text == symbol:
            self._position += 1
            return True
        return False


def _resolve(name: str, resource: str) -> _Field:
    """Return the field called `name` if the FROM resource may use it."""
    item = FIELDS.get(name)
    if item is None:
        raise _QueryError(
            "UNRECOGNIZED_FIELD",
            f"Unrecognized field in the query: '{_echo(name)}'.",
            trigger=_echo(name),
        )

    attributed, has_metrics = RESOURCES[resource]
    if item.owner == "metrics" and not has_metrics:
        raise _QueryError(
            "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE",
            f"Cannot select or filter on the metric '{name}' with resource '{resource}'.",
            trigger=name,
        )
    if item.owner == "segments" and not has_metrics:
        raise _QueryError(
            "PROHIBITED_SEGMENT_IN_SELECT_OR_WHERE_CLAUSE",
            f"Cannot select or filter on the segment '{name}' with resource '{resource}'.",
            trigger=name,
        )
    if item.owner not in {"metrics", "segments"} and item.owner not in attributed:
        raise _QueryError(
            "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE",
            f"Cannot select fields of '{item.owner}' in a query FROM '{resource}'.",
            trigger=name,
        )
    return item


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


@dataclass(frozen=True)
class _LikePattern:
    """A GAQL LIKE pattern: `%` matches any run of characters and `_` any one character.

    Every other character matches itself. A backslash-escaped `%` or `_` is still a wildcard,
    because `_unquote` removes the backslash before the pattern is built. NOTE: the real API
    matches a literal `[`, `]`, `%` or `_` written in square brackets, such as `[%]`, which
    the sandbox does not support.
    """

    pattern: str

    def matches(self, text: str) -> bool:
        return self.match_steps(text)[0]

    def match_steps(self, text: str) -> tuple[bool, int]:
        """Match the whole of `text`, and count the loop steps taken.

        This two-pointer wildcard match lets only the latest `%` absorb one more character when
        a later part fails, so it takes at most (len(pattern) + 1) * (len(text) + 1) steps. A
        regular expression with one `.*` per `%` instead tries the ways to split the text among
        the `%`, and it holds the GIL while it does, which also blocks the server's signal handling.
        """
        pattern = self.pattern
        pattern_index = 0
        text_index = 0
        star_index = -1
        star_text_index = 0
        steps = 0

        # On a mismatch, go back to just after the latest % and let it absorb one more
        # character of the text. Characters before that % already matched and stay matched.
        while text_index < len(text):
            steps += 1
            symbol = pattern[pattern_index] if pattern_index < len(pattern) else None
            if symbol == "%":
                star_index = pattern_index
                star_text_index = text_index
                pattern_index += 1
            elif symbol is not None and symbol in {"_", text[text_index]}:
                pattern_index += 1
                text_index += 1
            elif star_index >= 0:
                star_text_index += 1
                pattern_index = star_index + 1
                text_index = star_text_index
            else:
                return False, steps

        # The text is used up, so only trailing % may remain in the pattern.
        while pattern_index < len(pattern) and pattern[pattern_index] == "%":
            steps += 1
            pattern_index += 1
        return pattern_index == len(pattern), steps


def _typed_value(item: _Field, token: _Token) -> Any:
    """Convert a literal to the field's type, raising the query error the real API uses."""
    text = _unquote(token.text) if token.kind == "string" else token.text
    if item.type == "int64":
        if not re.fullmatch(r"-?\d+", text):
            raise _QueryError(
                "BAD_NUMBER",
                f"Error in WHERE clause: '{_echo(text)}' is not an integer for {item.name}.",
            )
        return int(text)
    if item.type == "double":
        try:
            return float(text)
        except ValueError:
            raise _QueryError(
                "BAD_NUMBER",
                f"Error in WHERE clause: '{_echo(text)}' is not a number for {item.name}.",
            ) from None
    if item.type == "bool":
        if text.upper() not in {"TRUE", "FALSE"}:
            raise _QueryError("BAD_VALUE", f"Error in WHERE clause: {item.name} expects TRUE or FALSE.")
        return text.upper() == "TRUE"
    if item.type == "enum":
        if text not in item.enum_values:
            raise _QueryError(
                "BAD_ENUM_CONSTANT",
                f"Error in WHERE clause: '{_echo(text)}' is not a value of {item.name}.",
                trigger=_echo(text),
            )
        return text
    if item.type == "date":
        return _parse_date(text)
    if item.type == "list":
        raise _QueryError(
            "BAD_OPERATOR",
            f"Error in WHERE clause: the sandbox cannot filter on the list field {item.name}.",
        )
    return text


def _parse_date(text: str) -> date:
    compact = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    iso = compact.expand(r"\1-\2-\3") if compact else text
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso):
            raise ValueError
        return date.fromisoformat(iso)
    except ValueError:
        raise _QueryError(
            "BAD_VALUE",
            f"Error in WHERE clause: '{_echo(text)}' is not a date; use 'YYYY-MM-DD'.",
            trigger=_echo(text),
        ) from None


# Query execution


def _execute(world: AdsWorld, customer: AdAccount, query: _Query) -> list[_Row]:
    date_conditions = [c for c in query.conditions if c.field.name == "segments.date"]
    other_conditions = [c for c in query.conditions if c.field.name != "segments.date"]
    today = world.today(customer.account_id)
    date_tests = [_date_test(condition, today) for condition in date_conditions]
    if query.segmented:
        _require_date_range(date_tests)

    entities = _entity_rows(world, customer, query.resource)
    if query.uses_metrics:
        rows = _metric_rows(world, customer, query, entities, date_tests)
    else:
        rows = list(entities.values())

    rows = [row for row in rows if all(_matches(row, condition) for condition in other_conditions)]
    for item, descending in reversed(query.order):
        rows.sort(key=lambda row, item=item: _sort_key(item.getter(row)), reverse=descending)
    return rows[: query.limit] if query.limit is not None else rows


@dataclass(frozen=True)
class _DateTest:
    """A date condition as a predicate plus the bounds it sets (None is open)."""

    accepts: Callable[[date], bool]
    low: date | None
    high: date | None


def _date_test(condition: _Condition, today: date) -> _DateTest:
    values = condition.values
    operator = condition.operator
    if operator == "DURING":
        low, high = _during_range(values[0], today)
        return _DateTest(lambda day: low <= day <= high, low, high)
    if operator == "BETWEEN":
        low, high = values
        if low > high:
            raise _QueryError(
                "DATE_RANGE_TOO_NARROW",
                f"Error in WHERE clause: the date range starts ({low}) after it ends ({high}).",
            )
        return _DateTest(lambda day: low <= day <= high, low, high)
    if operator in {"IN", "NOT IN"}:
        chosen = frozenset(values)
        if operator == "IN":
            return _DateTest(lambda day: day in chosen, min(chosen), max(chosen))
        return _DateTest(lambda day: day not in chosen, None, None)

    value = values[0]
    tests: dict[str, _DateTest] = {
        "=": _DateTest(lambda day: day == value, value, value),
        "!=": _DateTest(lambda day: day != value, None, None),
        ">": _DateTest(lambda day: day > value, value + timedelta(days=1), None),
        ">=": _DateTest(lambda day: day >= value, value, None),
        "<": _DateTest(lambda day: day < value, None, value - timedelta(days=1)),
        "<=": _DateTest(lambda day: day <= value, None, value),
    }
    if operator not in tests:
        raise _QueryError(
            "BAD_OPERATOR",
            f"Error in WHERE clause: {operator} does not apply to segments.date.",
        )
    return tests[operator]


def _during_range(constant: str, today: date) -> tuple[date, date]:
    """Return the days of a DURING constant; ranges of past days end yesterday."""
    yesterday = today - timedelta(days=1)
    if constant == "TODAY":
        return today, today
    if constant == "YESTERDAY":
        return yesterday, yesterday
    if constant.startswith("LAST_") and constant.endswith("_DAYS"):
        days = int(constant.removeprefix("LAST_").removesuffix("_DAYS"))
        return today - timedelta(days=days), yesterday
    first_of_month = today.replace(day=1)
    if constant == "THIS_MONTH":
        return first_of_month, today
    last_month_end = first_of_month - timedelta(days=1)
    return last_month_end.replace(day=1), last_month_end


def _require_date_range(tests: list[_DateTest]) -> None:
    lows = [test.low for test in tests if test.low is not None]
    highs = [test.high for test in tests if test.high is not None]
    if not lows or not highs:
        raise _QueryError(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "A query that selects segments.date needs a finite date range in WHERE, for example "
            "segments.date BETWEEN '2026-01-01' AND '2026-01-31'.",
        )
    if max(lows) > min(highs):
        raise _QueryError(
            "DATE_RANGE_TOO_NARROW",
            f"Error in WHERE clause: the date range starts ({max(lows)}) after it ends ({min(highs)}).",
        )


def _entity_rows(world: AdsWorld, customer: AdAccount, resource: str) -> dict[Any, _Row]:
    """Return one row per entity of the FROM resource, keyed by what groups its metrics."""
    cid = customer.account_id
    if resource == "customer":
        return {cid: _Row(customer)}
    if customer.manager:
        return {}
    budgets = {budget.id: budget for budget in world.google_budgets(cid)}
    campaigns = {campaign.id: campaign for campaign in world.google_campaigns(cid)}
    if resource == "campaign_budget":
        return {budget.id: _Row(customer, budget=budget) for budget in budgets.values()}
    if resource == "campaign":
        return {
            campaign.id: _Row(customer, campaign=campaign, budget=budgets[campaign.budget_id])
            for campaign in campaigns.values()
        }
    groups = {group.id: group for group in world.google_ad_groups(cid)}
    if resource == "ad_group":
        return {
            group.id: _Row(customer, campaign=campaigns[group.campaign_id], ad_group=group)
            for group in groups.values()
        }
    return {
        ad.id: _Row(customer, campaign=campaigns[ad.campaign_id], ad_group=groups[ad.ad_group_id], ad=ad)
        for ad in world.google_ads(cid)
    }


_METRIC_KEYS: dict[str, Callable[[GoogleAdDay], Any]] = {
    "customer": lambda day: None,
    "campaign": lambda day: day.campaign_id,
    "ad_group": lambda day: day.ad_group_id,
    "ad_group_ad": lambda day: day.ad_id,
}


def _metric_rows(
    world: AdsWorld,
    customer: AdAccount,
    query: _Query,
    entities: dict[Any, _Row],
    date_tests: list[_DateTest],
) -> list[_Row]:
    """Sum daily ad metrics per entity (and per day when segmented); drop all-zero rows."""
    entity_key = _METRIC_KEYS[query.resource]
    order = {key: position for position, key in enumerate(entities)}
    totals: dict[tuple[Any, date | None], _Totals] = {}

    for ad_day in world.google_ad_days(customer.account_id) if not customer.manager else ():
        if not all(test.accepts(ad_day.day) for test in date_tests):
            continue
        key = customer.account_id if query.resource == "customer" else entity_key(ad_day)
        group = (key, ad_day.day if query.segmented else None)
        totals[group] = totals.get(group, _Totals()).plus(ad_day)

    rows = [
        _Row(**{**_row_fields(entities[key]), "day": day, "totals": summed})
        for (key, day), summed in totals.items()
        if not summed.is_empty()
    ]
    rows.sort(key=lambda row: (row.day or date.min, order[_row_key(row, query.resource)]))
    return rows


def _row_fields(row: _Row) -> dict[str, Any]:
    return {
        "customer": row.customer,
        "campaign": row.campaign,
        "budget": row.budget,
        "ad_group": row.ad_group,
        "ad": row.ad,
    }


def _row_key(row: _Row, resource: str) -> Any:
    if resource == "customer":
        return row.customer.account_id
    if resource == "campaign":
        return _campaign(row).id
    if resource == "ad_group":
        return _ad_group(row).id
    return _ad(row).id


def _matches(row: _Row, condition: _Condition) -> bool:
    value = condition.field.getter(row)
    expected = condition.values
    operator = condition.operator
    if operator == "=":
        return bool(value == expected[0])
    if operator == "!=":
        return bool(value != expected[0])
    if operator == "IN":
        return value in expected
    if operator == "NOT IN":
        return value not in expected
    if operator == "LIKE":
        return bool(expected[0].matches(value))
    if operator == "NOT LIKE":
        return not expected[0].matches(value)
    if operator == "BETWEEN":
        return bool(expected[0] <= value <= expected[1])
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    return comparisons[operator](value, expected[0])


def _sort_key(value: Any) -> tuple[Any, ...]:
    """Order missing values first, and lists by their items."""
    if value is None:
        return (0,)
    return (1, tuple(value) if isinstance(value, list) else value)


# Rendering


def _batches(rows: list[_Row], query: _Query, request_id: str) -> list[dict[str, Any]]:
    """Render rows as searchStream batches of at most BATCH_SIZE results."""
    field_mask = ",".join(_camel_path(item.name) for item in query.select)
    results = [_render_row(row, query) for row in rows]
    batches: list[dict[str, Any]] = []
    for start in range(0, len(results), BATCH_SIZE):
        batch = {"results": results[start : start + BATCH_SIZE], "fieldMask": field_mask, "requestId": request_id}
        batches.append(batch)
    if not batches:
        batches.append({"fieldMask": field_mask, "requestId": request_id})
    # NOTE: a made-up cost that grows with the rows; the real number is Google's own.
    batches[-1]["queryResourceConsumption"] = str(40 + 3 * len(rows))
    return batches


def _render_row(row: _Row, query: _Query) -> dict[str, Any]:
    """Render one GoogleAdsRow in proto3 JSON: camelCase keys, int64 as strings, defaults left out.

    Every resource object in the row carries its resourceName, and so does the FROM resource
    even when none of its fields is selected.
    """
    rendered: dict[str, Any] = {}
    resources = [query.resource] + [item.owner for item in query.select]
    for resource in dict.fromkeys(resources):
        if resource in {"metrics", "segments"}:
            rendered[_camel(resource)] = {}
        else:
            rendered[_camel(resource)] = {"resourceName": _resource_name(row, resource)}
    if any(item.name.startswith("ad_group_ad.ad.") for item in query.select):
        rendered["adGroupAd"]["ad"] = {"resourceName": _ad_name(row)}

    for item in query.select:
        value = _json_value(item, item.getter(row))
        if value is None:
            continue
        *parents, leaf = _camel_path(item.name).split(".")
        holder = rendered
        for parent in parents:
            holder = holder.setdefault(parent, {})
        holder[leaf] = value
    return rendered


def _resource_name(row: _Row, resource: str) -> str:
    if resource == "customer":
        return _customer_name(row)
    if resource == "campaign":
        return _campaign_name(row.customer.account_id, _campaign(row).id)
    if resource == "campaign_budget":
        return _budget_name(row.customer.account_id, _budget(row).id)
    if resource == "ad_group":
        return _ad_group_name(row.customer.account_id, _ad_group(row).id)
    return _ad_group_ad_name(row)


def _json_value(item: _Field, value: Any) -> Any:
    """Return the proto3 JSON form of a value, or None for a default value (left out)."""
    if value is None or value in (0, 0.0, "", False, []):
        return None
    if item.type == "int64":
        return str(value)
    if item.type == "date":
        return value.isoformat()
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _camel_path(name: str) -> str:
    return ".".join(_camel(part) for part in name.split("."))


def _error_response(error: _GoogleAdsError, version: str, request_id: str) -> Response:
    status, top_message = _STATUS_TEXT.get(error.http_status, ("UNKNOWN", "Unknown error."))
    detail: dict[str, Any] = {"errorCode": error.error_code, "message": error.message}
    if error.trigger is not None:
        detail["trigger"] = {"stringValue": error.trigger}
    if error.details is not None:
        detail["details"] = error.details
    payload = {
        "error": {
            "code": error.http_status,
            "message": top_message,
            "status": status,
            "details": [
                {
                    "@type": f"type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure",
                    "errors": [detail],
                    "requestId": request_id,
                }
            ],
        }
    }
    return error.http_status, _headers(request_id), json.dumps(payload).encode()


def _headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=UTF-8", "request-id": request_id}


def _request_id(seed: int, serial: int) -> str:
    """Return a 22-character id like Google's, derived from the seed and the request's serial."""
    digest = hashlib.sha256(f"spendlake-google-ads:{seed}:{serial}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _same_secret(received: str, expected: str) -> bool:
    return secrets.compare_digest(received.encode("utf-8", "replace"), expected.encode())


def _echo(value: str) -> str:
    """Shorten a client-supplied value before it is echoed in an error message."""
    return value if len(value) <= _ECHO_LIMIT else value[:_ECHO_LIMIT] + "..."

