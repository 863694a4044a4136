"""Meta Graph API (Marketing API) responses for an `AdsWorld`.

`handle_meta_request` takes no socket, like the Stripe handler. Under `/{version}` for v24.0,
v25.0 and v26.0 it serves:
- `GET act_{id}`: the ad account;
- `GET act_{id}/campaigns|adsets|ads`: cursor-paged entity lists with `fields`, `limit`,
  `after` and `effective_status` (or a `filtering` on effective_status);
- `GET act_{id}/insights`: daily ad-level insights, cursor-paged;
- `POST act_{id}/insights`, `GET {report_run_id}` and `GET {report_run_id}/insights`: async
  report jobs.

It keeps the real API's quirks that taps must survive:
- throttling returned as HTTP 400 with a code in the body;
- "reduce the amount of data" (HTTP 500) for insights pages over 100 rows;
- a `paging.next` link on an empty page when rows end exactly on a page boundary;
- report jobs that fail or stall on a schedule.

A `MetaSession` contains the request counter that drives the throttle schedule, the report
jobs and the response counts for tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sandbox.ads_data import META, AdAccount, AdsWorld, MetaAd, MetaAdDay, MetaAdSet, MetaCampaign
from sandbox.outcomes import OutcomeCounter

DEMO_ACCESS_TOKEN = "spendlake-demo-meta-token"
SUPPORTED_VERSIONS = ("v24.0", "v25.0", "v26.0")

DEFAULT_LIMIT = 25
MAX_LIST_LIMIT = 500
# Insights requests for larger pages fail with "Please reduce the amount of data".
MAX_INSIGHTS_LIMIT = 100

# Request numbers 4, 24, 44, ... fail with code 80000, and 7, 30, 53, ... with code 17.
# A number on both schedules fails with code 80000.
BUC_THROTTLE_FIRST = 4
BUC_THROTTLE_EVERY = 20
USER_THROTTLE_FIRST = 7
USER_THROTTLE_EVERY = 23

# Report jobs of these accounts over more days than the limit fail or stall.
FAILING_JOB_ACCOUNT = "act_600700800900100"
FAILING_JOB_MAX_DAYS = 31
FAILED_JOB_PERCENT = 20
STALLING_JOB_ACCOUNT = "act_100200300400500"
STALLING_JOB_MAX_DAYS = 45
STALLED_JOB_PERCENT = 35
# (async_status, async_percent_completion) after each poll of a job that completes.
JOB_PROGRESS = (
    ("Job Not Started", 0),
    ("Job Completed", 100),
)

INSIGHTS_DIMENSIONS = (
    "account_id", "account_currency", "campaign_id", "campaign_name", "adset_id", "adset_name",
    "ad_id", "ad_name", "date_start", "date_stop",
)
INSIGHTS_FIELDS = frozenset({
    *INSIGHTS_DIMENSIONS, "account_name", "spend", "impressions", "clicks", "reach", "frequency",
    "cpc", "ctr", "cpm", "inline_link_clicks", "actions", "action_values",
    "cost_per_action_type", "conversions",
})
ATTRIBUTION_WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view")
DATE_PRESETS = ("today", "yesterday", "last_7d", "last_14d", "last_30d", "last_90d")

CAMPAIGN_FIELDS = (
    "id", "account_id", "name", "objective", "status", "effective_status", "buying_type",
    "daily_budget", "lifetime_budget", "start_time", "stop_time", "created_time", "updated_time",
)
ADSET_FIELDS = (
    "id", "account_id", "campaign_id", "name", "optimization_goal", "billing_event",
    "bid_strategy", "daily_budget", "lifetime_budget", "targeting", "status", "effective_status",
    "created_time", "updated_time",
)
AD_FIELDS = (
    "id", "account_id", "campaign_id", "adset_id", "name", "creative", "status",
    "effective_status", "created_time", "updated_time",
)
ACCOUNT_FIELDS = (
    "id", "account_id", "name", "currency", "timezone_name", "timezone_offset_hours_utc",
    "account_status", "business_country_code",
)

_EDGE_STATUSES = {
    "campaigns": ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"),
    "adsets": ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES", "CAMPAIGN_PAUSED"),
    "ads": (
        "ACTIVE", "PAUSED", "DELETED", "PENDING_REVIEW", "DISAPPROVED", "PREAPPROVED",
        "PENDING_BILLING_INFO", "CAMPAIGN_PAUSED", "ARCHIVED", "ADSET_PAUSED", "IN_PROCESS",
        "WITH_ISSUES",
    ),
}
# Without an effective_status filter the API leaves archived and deleted objects out.
_HIDDEN_BY_DEFAULT = frozenset({"ARCHIVED", "DELETED"})
_NODE_TYPES = {"campaigns": "Campaign", "adsets": "AdSet", "ads": "Ad"}

_VERSION_PATH = re.compile(r"^/(?P<version>v\d+\.\d+)(?P<rest>/.*)?$")
_ECHO_LIMIT = 100

Response = tuple[int, dict[str, str], bytes]


def handles_path(path: str) -> bool:
    """Return True for Graph API paths, which start with a dotted version such as /v26.0/."""
    return bool(_VERSION_PATH.match(path))


@dataclass(frozen=True)
class InsightsRequest:
    """Validated insights parameters. `daily` is time_increment=1; otherwise one row per ad."""

    account_id: str
    since: date
    until: date
    fields: tuple[str, ...]
    windows: tuple[str, ...]
    by_country: bool
    daily: bool
    by_product: bool = False

    @property
    def span_days(self) -> int:
        return (self.until - self.since).days + 1


@dataclass
class _ReportJob:
    run_id: str
    request: InsightsRequest
    fate: str
    polls: int = 0


class MetaSession(OutcomeCounter):
    """Mutable state of one sandbox server for Meta: request numbers, report jobs and counters."""

    def __init__(self) -> None:
        super().__init__()
        self._requests = 0
        self._serial = 0
        self._jobs: dict[str, _ReportJob] = {}

    def next_serial(self) -> int:
        """Return the 1-based serial number of any request, used for its trace id."""
        with self._lock:
            self._serial += 1
            return self._serial

    @property
    def request_count(self) -> int:
        """Number of authenticated requests so far."""
        with self._lock:
            return self._requests

    def next_request(self) -> int:
        """Return the 1-based number of an authenticated request, which the throttle schedule uses."""
        with self._lock:
            self._requests += 1
            return self._requests


    def create_job(self, request: InsightsRequest, fate: str) -> str:
        with self._lock:
            run_id = str(1_200_000_000_000_000 + len(self._jobs) + 1)
            self._jobs[run_id] = _ReportJob(run_id, request, fate)
            return run_id

    def poll_job(self, run_id: str) -> tuple[_ReportJob, str, int] | None:
        """Advance a job by one poll and return it with its status and percent, or None."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None:
                return None
            job.polls += 1
            status, percent = _job_progress(job)
            return job, status, percent

    def peek_job(self, run_id: str) -> tuple[_ReportJob, str, int] | None:
        """Return a job with its status and percent without advancing it, or None."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None:
                return None
            status, percent = _job_progress(job)
            return job, status, percent

    def job_account(self, run_id: str) -> str | None:
        with self._lock:
            job = self._jobs.get(run_id)
            return job.request.account_id if job else None


def _job_progress(job: _ReportJob) -> tuple[str, int]:
    if job.polls <= 1:
        return JOB_PROGRESS[0] if job.polls == 1 else ("Job Not Started", 0)
    if job.fate == "fail":
        return "Job Failed", FAILED_JOB_PERCENT
    if job.fate == "stall":
        return "Job Running", STALLED_JOB_PERCENT
    return JOB_PROGRESS[min(job.polls, len(JOB_PROGRESS)) - 1]


class _MetaError(Exception):
    """A Graph API error: HTTP status, the `error` object and extra response headers."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        transient: bool | None = None,
        headers: Mapping[str, str] | None = None,
        outcome: str = "failed",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode
        self.transient = transient
        self.headers = dict(headers or {})
        self.outcome = outcome


def _invalid_parameter(message: str) -> _MetaError:
    return _MetaError(400, 100, f"(#100) {message}", transient=False)


def _unsupported_request(method: str, object_id: str) -> _MetaError:
    return _MetaError(
        400,
        100,
        f"Unsupported {method.lower()} request. Object with ID '{_echo(object_id)}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        subcode=33,
        transient=False,
    )


@dataclass(frozen=True)
class _Request:
    """One parsed request: the world, the session, parameters and what next links need."""

    world: AdsWorld
    session: MetaSession
    method: str
    path: str
    params: dict[str, str]
    query_pairs: list[tuple[str, str]]
    host: str


def handle_meta_request(
    world: AdsWorld,
    session: MetaSession,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Response:
    """Return (status, headers, body) for one request to the emulated Graph API.

    Parameters come from the query string, and for POST also from a form-encoded body.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    trace_id = _trace_id(world.seed, session.next_serial())
    query_pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(query_pairs)
    if method == "POST" and body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    request = _Request(world, session, method, path, params, query_pairs, lowered.get("host") or "127.0.0.1")

    kind = "unauthenticated"
    try:
        _authenticate(params.get("access_token"), lowered.get("authorization"))
        kind = "unknown"
        version, parts = _split_path(path)
        kind = _request_kind(method, parts)
        number = session.next_request()
        account_digits = _usage_account(session, parts)
        _throttle(number, account_digits)
        payload = _route(request, version, parts)
    except _MetaError as error:
        session.record(kind, error.outcome)
        return _error_response(error, trace_id)

    session.record(kind, "served")
    response_headers = {**_json_headers(trace_id), **_usage_headers(number, kind, account_digits)}
    return 200, response_headers, json.dumps(payload).encode()


def _authenticate(query_token: str | None, authorization: str | None) -> None:
    token = query_token
    if token is None and authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else None
    if not token or not secrets.compare_digest(token.encode("utf-8", "replace"), DEMO_ACCESS_TOKEN.encode()):
        raise _MetaError(400, 190, "Invalid OAuth access token.")


def _split_path(path: str) -> tuple[str, list[str]]:
    match = _VERSION_PATH.match(path)
    if match is None:
        raise _unsupported_request("get", path)
    version = match.group("version")
    if version not in SUPPORTED_VERSIONS:
        raise _MetaError(
            400,
            2635,
            f"(#2635) You are calling a deprecated or unknown version of the Ads API ({_echo(version)}). "
            f"Please update to one of: {', '.join(SUPPORTED_VERSIONS)}.",
            transient=False,
        )
    parts = [part for part in (match.group("rest") or "").split("/") if part]
    return version, parts


def _request_kind(method: str, parts: Sequence[str]) -> str:
    """Name the kind of request for the counters, without validating it."""
    if len(parts) == 1 and parts[0].startswith("act_"):
        return "ad_account"
    if len(parts) == 2 and parts[0].startswith("act_"):
        if parts[1] == "insights":
            return "report_run_create" if method == "POST" else "insights"
        return parts[1] if parts[1] in _EDGE_STATUSES else "unknown"
    if len(parts) == 1 and parts[0].isdigit():
        return "report_run_status"
    if len(parts) == 2 and parts[0].isdigit() and parts[1] == "insights":
        return "report_run_insights"
    return "unknown"


def _usage_account(session: MetaSession, parts: Sequence[str]) -> str | None:
    """Return the ad account digits a request is charged to, when the path names one."""
    if parts and parts[0].startswith("act_"):
        return parts[0].removeprefix("act_")
    if parts and parts[0].isdigit():
        account = session.job_account(parts[0])
        return account.removeprefix("act_") if account else None
    return None


def _throttle(number: int, account_digits: str | None) -> None:
    if number >= BUC_THROTTLE_FIRST and (number - BUC_THROTTLE_FIRST) % BUC_THROTTLE_EVERY == 0:
        usage = [{
            "type": "ads_insights",
            "call_count": 100,
            "total_cputime": 40,
            "total_time": 60,
            "estimated_time_to_regain_access": 0,
            "ads_api_access_tier": "standard_access",
        }]
        raise _MetaError(
            400,
            80000,
            "(#80000) There have been too many calls from this ad-account. Wait a bit and try again.",
            subcode=2446079,
            headers={
                "X-Business-Use-Case-Usage": json.dumps({account_digits or "0": usage}),
                "X-App-Usage": json.dumps({"call_count": 95, "total_time": 20, "total_cputime": 20}),
            },
            outcome="throttled",
        )
    if number >= USER_THROTTLE_FIRST and (number - USER_THROTTLE_FIRST) % USER_THROTTLE_EVERY == 0:
        raise _MetaError(
            400,
            17,
            "(#17) User request limit reached",
            subcode=2446079,
            transient=True,
            headers={"X-App-Usage": json.dumps({"call_count": 12, "total_time": 8, "total_cputime": 6})},
            outcome="throttled",
        )


def _route(request: _Request, version: str, parts: list[str]) -> dict[str, Any]:
    method = request.method
    if not parts:
        raise _unsupported_request(method, "/")
    node = parts[0]

    if node.startswith("act_"):
        account = request.world.account(node)
        if account is None or account.platform != META or not node.removeprefix("act_").isdigit():
            raise _unsupported_request(method, node)
        if len(parts) == 1 and method == "GET":
            return _account_body(request.world, account, request.params)
        if len(parts) == 2 and parts[1] == "insights" and method == "GET":
            insights = _insights_request(request.world, account, request.params)
            return _insights_page(request, insights)
        if len(parts) == 2 and parts[1] == "insights" and method == "POST":
            return _create_job(request, account)
        if len(parts) == 2 and parts[1] in _EDGE_STATUSES and method == "GET":
            return _list_page(request, account, parts[1])
        raise _unsupported_request(method, "/".join(parts))

    if node.isdigit() and method == "GET":
        if len(parts) == 1:
            return _job_status(request, node)
        if len(parts) == 2 and parts[1] == "insights":
            return _job_results(request, node)
    raise _unsupported_request(method, "/".join(parts))


# Ad account and entity lists


def _account_body(world: AdsWorld, account: AdAccount, params: Mapping[str, str]) -> dict[str, Any]:
    offset = datetime.fromtimestamp(world.now, account.zone).utcoffset() or timedelta(0)
    hours = offset.total_seconds() / 3600
    values = {
        "id": account.account_id,
        "account_id": account.digits,
        "name": account.name,
        "currency": account.currency,
        "timezone_name": account.time_zone,
        "timezone_offset_hours_utc": int(hours) if hours.is_integer() else hours,
        "account_status": 1,
        "business_country_code": account.country,
    }
    requested = _requested_fields(params.get("fields", ""), ACCOUNT_FIELDS, "AdAccount")
    return _select(values, requested)


def _list_page(request: _Request, account: AdAccount, edge: str) -> dict[str, Any]:
    world = request.world
    params = request.params
    requested = _requested_fields(params.get("fields", ""), _edge_fields(edge), _NODE_TYPES[edge])
    statuses = _status_filter(params, edge)
    limit = _limit(params, MAX_LIST_LIMIT, clamp=True)
    if "before" in params:
        raise _invalid_parameter("The sandbox pages only forward: use 'after', not 'before'.")

    entities = _edge_entities(world, account, edge)
    items = [entity for entity in entities if entity.effective_status in statuses]
    start = 0
    if "after" in params:
        ids = [item.id for item in items]
        after_id = _decode_cursor(params["after"])
        if after_id not in ids:
            raise _invalid_parameter(f"The 'after' cursor '{_echo(params['after'])}' is not valid for this list.")
        start = ids.index(after_id) + 1

    page = items[start : start + limit]
    data = [_select(_entity_values(entity, account), requested) for entity in page]
    body: dict[str, Any] = {"data": data}
    if page:
        body["paging"] = {"cursors": {"before": _encode_cursor(page[0].id), "after": _encode_cursor(page[-1].id)}}
        if start + limit < len(items):
            body["paging"]["next"] = _next_url(request, _encode_cursor(page[-1].id), limit)
    return body


def _edge_fields(edge: str) -> tuple[str, ...]:
    return {"campaigns": CAMPAIGN_FIELDS, "adsets": ADSET_FIELDS, "ads": AD_FIELDS}[edge]


def _edge_entities(
    world: AdsWorld, account: AdAccount, edge: str
) -> Sequence[MetaCampaign | MetaAdSet | MetaAd]:
    if edge == "campaigns":
        return world.meta_campaigns(account.account_id)
    if edge == "adsets":
        return world.meta_adsets(account.account_id)
    return world.meta_ads(account.account_id)


def _status_filter(params: Mapping[str, str], edge: str) -> frozenset[str]:
    """Return the effective statuses to list, from `effective_status` or `filtering`."""
    allowed = _EDGE_STATUSES[edge]
    chosen: list[str] | None = None
    if "effective_status" in params:
        chosen = _list_param(params["effective_status"], "effective_status")
    if "filtering" in params:
        chosen = _filtering_statuses(params["filtering"], edge)
    if chosen is None:
        return frozenset(allowed) - _HIDDEN_BY_DEFAULT

    for position, status in enumerate(chosen):
        if status not in allowed:
            raise _invalid_parameter(
                f"Param effective_status[{position}] must be one of {{{', '.join(allowed)}}} - got "
                f"'{_echo(status)}'."
            )
    return frozenset(chosen)


def _filtering_statuses(text: str, edge: str) -> list[str]:
    singular = {"campaigns": "campaign", "adsets": "adset", "ads": "ad"}[edge]
    try:
        filters = json.loads(text)
    except json.JSONDecodeError:
        filters = None
    if not isinstance(filters, list):
        raise _invalid_parameter("Param filtering must be a JSON array of {field, operator, value} objects.")

    statuses: list[str] = []
    for item in filters:
        supported = (
            isinstance(item, dict)
            and item.get("field") in {"effective_status", f"{singular}.effective_status"}
            and item.get("operator") == "IN"
            and isinstance(item.get("value"), list)
        )
        if not supported:
            raise _invalid_parameter(
                "The sandbox supports only filtering=[{\"field\": \"effective_status\", "
                "\"operator\": \"IN\", \"value\": [...]}]."
            )
        statuses.extend(str(value) for value in item["value"])
    return statuses


def _entity_values(entity: MetaCampaign | MetaAdSet | MetaAd, account: AdAccount) -> dict[str, Any]:
    """Return every field of an entity as the API writes it; unset budgets and stops are left out."""
    zone = account.zone
    values: dict[str, Any] = {
        "id": entity.id,
        "account_id": entity.account_id,
        "name": entity.name,
        "status": entity.status,
        "effective_status": entity.effective_status,
        "created_time": _timestamp(entity.created_time, zone),
        "updated_time": _timestamp(entity.updated_time, zone),
    }
    if isinstance(entity, MetaCampaign):
        values.update(
            objective=entity.objective,
            buying_type=entity.buying_type,
            start_time=_timestamp(entity.start_time, zone),
        )
        if entity.stop_time is not None:
            values["stop_time"] = _timestamp(entity.stop_time, zone)
    elif isinstance(entity, MetaAdSet):
        values.update(
            campaign_id=entity.campaign_id,
            optimization_goal=entity.optimization_goal,
            billing_event=entity.billing_event,
            bid_strategy=entity.bid_strategy,
            targeting=_targeting(entity),
        )
    else:
        values.update(
            campaign_id=entity.campaign_id,
            adset_id=entity.adset_id,
            creative={"id": entity.creative_id},
        )
    if not isinstance(entity, MetaAd):
        if entity.daily_budget is not None:
            values["daily_budget"] = str(entity.daily_budget)
        if entity.lifetime_budget is not None:
            values["lifetime_budget"] = str(entity.lifetime_budget)
    return values


def _targeting(adset: MetaAdSet) -> dict[str, Any]:
    targeting: dict[str, Any] = {
        "age_min": adset.age_min,
        "age_max": adset.age_max,
        "geo_locations": {"countries": list(adset.countries), "location_types": ["home", "recent"]},
    }
    if adset.custom_audiences:
        targeting["custom_audiences"] = [
            {"id": audience_id, "name": name} for audience_id, name in adset.custom_audiences
        ]
    return targeting


def _requested_fields(text: str, allowed: Sequence[str], node_type: str) -> dict[str, tuple[str, ...] | None]:
    """Parse `a,b,creative{id}` into {field: subfields or None}; `id` is always included."""
    requested: dict[str, tuple[str, ...] | None] = {"id": None}
    for name, subfields in _split_fields(text):
        if name not in allowed:
            raise _invalid_parameter(f"Tried accessing nonexisting field ({_echo(name)}) on node type ({node_type})")
        if subfields is not None and (name != "creative" or not set(subfields) <= {"id"}):
            raise _invalid_parameter(f"Field {name} does not support the subfields {{{_echo(','.join(subfields))}}}.")
        requested[name] = subfields
    return requested


def _split_fields(text: str) -> list[tuple[str, tuple[str, ...] | None]]:
    """Split a fields parameter at top-level commas, reading `name{a,b}` as subfields."""
    fields: list[tuple[str, tuple[str, ...] | None]] = []
    for match in re.finditer(r"\s*([A-Za-z0-9_.]+)\s*(?:\{([^{}]*)\})?\s*(?:,|$)", text):
        if not match.group(1):
            continue
        inner = match.group(2)
        subfields = tuple(part.strip() for part in inner.split(",") if part.strip()) if inner is not None else None
        fields.append((match.group(1), subfields))
    leftover = re.sub(r"\s*([A-Za-z0-9_.]+)\s*(?:\{([^{}]*)\})?\s*(?:,|$)", "", text)
    if leftover.strip():
        raise _invalid_parameter(f"Syntax error in the fields parameter near '{_echo(leftover.strip())}'.")
    return fields


def _select(values: Mapping[str, Any], requested: Mapping[str, tuple[str, ...] | None]) -> dict[str, Any]:
    selected = {}
    for name in requested:
        if name in values:
            selected[name] = values[name]
    return selected


# Insights parameters


def _insights_request(world: AdsWorld, account: AdAccount, params: Mapping[str, str]) -> InsightsRequest:
    level = params.get("level")
    if level != "ad":
        raise _invalid_parameter(f"The sandbox serves insights only with level=ad, not level='{_echo(level or '')}'.")

    fields = _insights_fields(params.get("fields"))
    since, until = _time_range(world, account, params)
    increment = params.get("time_increment", "all_days")
    if increment not in {"1", "all_days"}:
        raise _invalid_parameter(f"The sandbox supports time_increment 1 or all_days, not '{_echo(increment)}'.")

    breakdowns = _list_param(params.get("breakdowns", ""), "breakdowns")
    if breakdowns not in ([], ["country"], ["product_id"]):
        raise _invalid_parameter("The sandbox supports only breakdowns=country or breakdowns=product_id.")
    windows = _list_param(params.get("action_attribution_windows", ""), "action_attribution_windows")
    for position, window in enumerate(windows):
        if window not in (*ATTRIBUTION_WINDOWS, "default"):
            raise _invalid_parameter(
                f"Param action_attribution_windows[{position}] must be one of "
                f"{{{', '.join((*ATTRIBUTION_WINDOWS, 'default'))}}} - got '{_echo(window)}'."
            )

    return InsightsRequest(
        account_id=account.account_id,
        since=since,
        until=until,
        fields=fields,
        windows=tuple(window for window in windows if window != "default"),
        by_country=breakdowns == ["country"],
        by_product=breakdowns == ["product_id"],
        daily=increment == "1",
    )


def _insights_fields(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ("impressions", "spend")
    fields = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in fields:
        if name not in INSIGHTS_FIELDS:
            allowed = ", ".join(sorted(INSIGHTS_FIELDS))
            raise _invalid_parameter(f"fields must be one of the following values: {allowed} - got '{_echo(name)}'.")
    return fields


def _time_range(world: AdsWorld, account: AdAccount, params: Mapping[str, str]) -> tuple[date, date]:
    """Return (since, until) from time_range, or from date_preset (default last_30d)."""
    today = world.today(account.account_id)
    if "time_range" in params:
        try:
            value = json.loads(params["time_range"])
            since = date.fromisoformat(value["since"])
            until = date.fromisoformat(value["until"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise _invalid_parameter(
                'Param time_range must be JSON {"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}.'
            ) from None
        if since > until:
            raise _invalid_parameter(f"Param time_range has since {since} after until {until}.")
        return since, until

    preset = params.get("date_preset", "last_30d")
    if preset not in DATE_PRESETS:
        presets = ", ".join(DATE_PRESETS)
        raise _invalid_parameter(f"The sandbox supports date_preset {presets}, not '{_echo(preset)}'.")
    yesterday = today - timedelta(days=1)
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return yesterday, yesterday
    days = int(preset.removeprefix("last_").removesuffix("d"))
    return today - timedelta(days=days), yesterday


def _list_param(text: str, name: str) -> list[str]:
    """Read a list parameter given as a JSON array or as comma-separated words."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise _invalid_parameter(f"Param {name} is not a valid JSON array.") from None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _invalid_parameter(f"Param {name} must be an array of strings.")
        return value
    return [item.strip() for item in text.split(",") if item.strip()]


def _limit(params: Mapping[str, str], maximum: int, *, clamp: bool) -> int:
    text = params.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise _invalid_parameter(f"Param limit must be a positive integer, not '{_echo(text)}'.")
    limit = int(text)
    if limit > maximum and not clamp:
        raise _MetaError(
            500,
            1,
            "Please reduce the amount of data you're asking for, then retry your request",
            subcode=99,
            transient=False,
        )
    return min(limit, maximum)


# Insights rows and pages


def _insights_page(request: _Request, insights: InsightsRequest) -> dict[str, Any]:
    """Return one page of insights rows; `after` is a row offset cursor."""
    limit = _limit(request.params, MAX_INSIGHTS_LIMIT, clamp=False)
    rows = _insights_rows(request.world, insights)
    start = 0
    after = request.params.get("after")
    if after is not None:
        offset = _decode_cursor(after)
        if not offset.isdigit():
            raise _invalid_parameter(f"The 'after' cursor '{_echo(after)}' is not valid for these insights.")
        start = int(offset) + 1

    if not rows:
        return {"data": []}
    if start >= len(rows):
        # Rows ended exactly on the previous page, which still linked here like the real API.
        # This empty page links to itself, so a client that does not stop here loops forever.
        cursors = {"before": after, "after": after}
        return {"data": [], "paging": {"cursors": cursors, "next": _next_url(request, after, limit)}}

    page = rows[start : start + limit]
    account = request.world.account(insights.account_id)
    assert account is not None
    names = _entity_names(request.world, account)
    data = [_insights_row(row, insights, account, names) for row in page]
    last = start + len(page) - 1
    paging: dict[str, Any] = {"cursors": {"before": _encode_cursor(str(start)), "after": _encode_cursor(str(last))}}
    if last + 1 < len(rows) or len(page) == limit:
        paging["next"] = _next_url(request, _encode_cursor(str(last)), limit)
    return {"data": data, "paging": paging}


def _insights_rows(world: AdsWorld, insights: InsightsRequest) -> list[MetaAdDay]:
    """Return the ad-days (or ad totals) in the range, ordered by day, ad id and country."""
    days = [
        row
        for row in world.meta_ad_days(insights.account_id)
        if insights.since <= row.day <= insights.until
    ]
    if insights.by_country:
        days = [split for row in days for split in world.meta_country_rows(row)]
    if insights.by_product:
        days = [split for row in days for split in world.meta_product_rows(row)]
    if insights.daily:
        return sorted(days, key=lambda row: (row.day, row.ad_id, row.country or "", row.product_id or ""))

    totals: dict[tuple[str, str | None, str | None], MetaAdDay] = {}
    for row in days:
        key = (row.ad_id, row.country, row.product_id)
        totals[key] = _add_days(totals[key], row) if key in totals else replace(row, day=insights.since)
    return sorted(totals.values(), key=lambda row: (row.ad_id, row.country or "", row.product_id or ""))


def _add_days(left: MetaAdDay, right: MetaAdDay) -> MetaAdDay:
    """Sum two rows of one ad.

    NOTE: reach is summed too, so it overstates the people reached over several days.
    """

    def pairwise(first: tuple[int, int, int], second: tuple[int, int, int]) -> tuple[int, int, int]:
        return (first[0] + second[0], first[1] + second[1], first[2] + second[2])

    return replace(
        left,
        impressions=left.impressions + right.impressions,
        reach=left.reach + right.reach,
        clicks=left.clicks + right.clicks,
        link_clicks=left.link_clicks + right.link_clicks,
        landing_page_views=left.landing_page_views + right.landing_page_views,
        spend_minor=left.spend_minor + right.spend_minor,
        add_to_cart=pairwise(left.add_to_cart, right.add_to_cart),
        add_to_cart_value=pairwise(left.add_to_cart_value, right.add_to_cart_value),
        purchases=pairwise(left.purchases, right.purchases),
        purchase_value=pairwise(left.purchase_value, right.purchase_value),
    )


def _entity_names(world: AdsWorld, account: AdAccount) -> dict[str, str]:
    entities: list[MetaCampaign | MetaAdSet | MetaAd] = [
        *world.meta_campaigns(account.account_id),
        *world.meta_adsets(account.account_id),
        *world.meta_ads(account.account_id),
    ]
    return {entity.id: entity.name for entity in entities}


def _insights_row(
    row: MetaAdDay, insights: InsightsRequest, account: AdAccount, names: Mapping[str, str]
) -> dict[str, Any]:
    """Render one insights row: the dimensions, the requested metrics, all as strings."""
    date_start = row.day if insights.daily else insights.since
    date_stop = row.day if insights.daily else insights.until
    values: dict[str, Any] = {
        "account_id": account.digits,
        "account_currency": account.currency,
        "campaign_id": row.campaign_id,
        "campaign_name": names[row.campaign_id],
        "adset_id": row.adset_id,
        "adset_name": names[row.adset_id],
        "ad_id": row.ad_id,
        "ad_name": names[row.ad_id],
        "date_start": date_start.isoformat(),
        "date_stop": date_stop.isoformat(),
    }
    if row.country is not None:
        values["country"] = row.country
    if row.product_id is not None:
        values["product_id"] = row.product_id
    metrics = _metric_values(row, insights.windows, account)
    for name in insights.fields:
        if name == "account_name":
            values["account_name"] = account.name
        elif name in metrics:
            values[name] = metrics[name]
    return dict(sorted(values.items()))


def _metric_values(row: MetaAdDay, windows: Sequence[str], account: AdAccount) -> dict[str, Any]:
    """Return every metric of a row that has a value; ratios with a zero divisor are left out."""
    spend = Decimal(row.spend_minor) / 100
    metrics: dict[str, Any] = {
        "spend": _decimal_text(spend, 2),
        "impressions": str(row.impressions),
        "clicks": str(row.clicks),
        "reach": str(row.reach),
        "inline_link_clicks": str(row.link_clicks),
    }
    if row.reach:
        metrics["frequency"] = _decimal_text(Decimal(row.impressions) / row.reach)
    if row.clicks:
        metrics["cpc"] = _decimal_text(spend / row.clicks)
    if row.impressions:
        metrics["ctr"] = _decimal_text(Decimal(100 * row.clicks) / row.impressions)
        metrics["cpm"] = _decimal_text(spend * 1000 / row.impressions)

    counts = {
        "link_click": (row.link_clicks, 0, 0),
        "landing_page_view": (row.landing_page_views, 0, 0),
        "offsite_conversion.fb_pixel_add_to_cart": row.add_to_cart,
        "offsite_conversion.fb_pixel_purchase": row.purchases,
    }
    money = {
        "offsite_conversion.fb_pixel_add_to_cart": row.add_to_cart_value,
        "offsite_conversion.fb_pixel_purchase": row.purchase_value,
    }
    actions = [_action(kind, parts, windows, str) for kind, parts in counts.items() if sum(parts)]
    values = [_action(kind, parts, windows, _minor_text) for kind, parts in money.items() if sum(parts)]
    costs = [_cost_per_action(kind, parts, windows, spend) for kind, parts in counts.items() if sum(parts)]
    purchases = [entry for entry in actions if entry["action_type"] == "offsite_conversion.fb_pixel_purchase"]
    lists = {"actions": actions, "action_values": values, "cost_per_action_type": costs, "conversions": purchases}
    for name, entries in lists.items():
        if entries:
            metrics[name] = entries
    return metrics


def _window_value(parts: tuple[int, int, int], window: str) -> int:
    """Return the count of one attribution window from (1-day click, days 2 to 7 click, 1-day view)."""
    one_day_click, later_click, one_day_view = parts
    if window == "1d_click":
        return one_day_click
    if window == "1d_view":
        return one_day_view
    return one_day_click + later_click


def _action(
    kind: str, parts: tuple[int, int, int], windows: Sequence[str], render: Callable[[int], str]
) -> dict[str, str]:
    """Render one action entry; `value` is the default attribution (7-day click + 1-day view)."""
    entry = {"action_type": kind, "value": render(sum(parts))}
    for window in windows:
        entry[window] = render(_window_value(parts, window))
    return entry


def _cost_per_action(
    kind: str, parts: tuple[int, int, int], windows: Sequence[str], spend: Decimal
) -> dict[str, str]:
    entry = {"action_type": kind, "value": _decimal_text(spend / sum(parts))}
    for window in windows:
        count = _window_value(parts, window)
        if count:
            entry[window] = _decimal_text(spend / count)
    return entry


def _minor_text(amount: int) -> str:
    return _decimal_text(Decimal(amount) / 100, 2)


def _decimal_text(value: Decimal, places: int = 6) -> str:
    """Round half up to `places` decimals and drop trailing zeros, as in "1.594444" or "14.3"."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return format(rounded.normalize(), "f")


# Report jobs


def _create_job(request: _Request, account: AdAccount) -> dict[str, Any]:
    insights = _insights_request(request.world, account, request.params)
    fate = "complete"
    if account.account_id == FAILING_JOB_ACCOUNT and insights.span_days > FAILING_JOB_MAX_DAYS:
        fate = "fail"
    if account.account_id == STALLING_JOB_ACCOUNT and insights.span_days > STALLING_JOB_MAX_DAYS:
        fate = "stall"
    return {"report_run_id": request.session.create_job(insights, fate)}


def _job_status(request: _Request, run_id: str) -> dict[str, Any]:
    polled = request.session.poll_job(run_id)
    if polled is None:
        raise _unsupported_request("get", run_id)
    job, status, percent = polled
    account = request.world.account(job.request.account_id)
    assert account is not None
    body: dict[str, Any] = {
        "id": run_id,
        "account_id": account.digits,
        "async_status": status,
        "async_percent_completion": percent,
        "date_start": job.request.since.isoformat(),
        "date_stop": job.request.until.isoformat(),
        "time_ref": request.world.now,
    }
    if status == "Job Failed":
        body["error_code"] = 2
        body["error_message"] = "Service temporarily unavailable"
    return body


def _job_results(request: _Request, run_id: str) -> dict[str, Any]:
    peeked = request.session.peek_job(run_id)
    if peeked is None:
        raise _unsupported_request("get", f"{run_id}/insights")
    job, status, _ = peeked
    if status != "Job Completed":
        raise _invalid_parameter(
            f"Report run {run_id} is not complete (async_status '{status}'): poll it until "
            "'Job Completed' before reading its insights."
        )
    return _insights_page(request, job.request)


# Responses


def _next_url(request: _Request, after: str, limit: int) -> str:
    """Return the request's own URL with `after` (and `limit`) set, on the request's Host.

    The access token is in the link only when the request sent it as a query parameter.
    """
    pairs = [(name, value) for name, value in request.query_pairs if name not in {"after", "limit"}]
    pairs.extend([("limit", str(limit)), ("after", after)])
    return f"http://{request.host}{request.path}?{urlencode(pairs)}"


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid_parameter(f"The cursor '{_echo(cursor)}' is not valid.") from None


def _timestamp(epoch: int, zone: Any) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%dT%H:%M:%S%z")


def _json_headers(trace_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=UTF-8", "x-fb-trace-id": trace_id}


def _usage_headers(number: int, kind: str, account_digits: str | None) -> dict[str, str]:
    """Return low usage percentages, so a client never has a reason to slow down."""
    low = 1 + number % 10
    headers = {"X-App-Usage": json.dumps({"call_count": low, "total_time": low, "total_cputime": 1})}
    if account_digits is not None:
        usage_type = "ads_insights" if "insights" in kind or kind == "report_run_create" else "ads_management"
        usage = [{
            "type": usage_type,
            "call_count": low,
            "total_cputime": 1,
            "total_time": low,
            "estimated_time_to_regain_access": 0,
            "ads_api_access_tier": "standard_access",
        }]
        headers["X-Business-Use-Case-Usage"] = json.dumps({account_digits: usage})
    return headers


def _error_response(error: _MetaError, trace_id: str) -> Response:
    payload: dict[str, Any] = {"message": error.message, "type": "OAuthException", "code": error.code}
    if error.subcode is not None:
        payload["error_subcode"] = error.subcode
    if error.transient is not None:
        payload["is_transient"] = error.transient
    payload["fbtrace_id"] = trace_id
    headers = {**_json_headers(trace_id), **error.headers}
    return error.status, headers, json.dumps({"error": payload}).encode()


def _trace_id(seed: int, serial: int) -> str:
    """Return an fbtrace_id-like string derived from the seed and the request's serial."""
    digest = hashlib.sha256(f"spendlake-meta:{seed}:{serial}".encode()).digest()
    return base64.b64encode(digest[:8]).decode().rstrip("=").replace("+", "A").replace("/", "B")


def _echo(value: str) -> str:
    """Shorten a client-supplied value before it is echoed in an error message."""
    return value if len(value) <= _ECHO_LIMIT else value[:_ECHO_LIMIT] + "..."
