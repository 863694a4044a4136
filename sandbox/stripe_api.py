"""Stripe-shaped HTTP responses for a `StripeWorld`, as a pure function of the request.

`handle_request` takes no socket, so tests can drive it through `responses` callbacks and
`sandbox.server` only adapts it to `http.server`. It serves the list endpoints in
`LIST_ROUTES`, one object of each (`GET /v1/<kind>/<id>`) and `GET /v1/events` with
Stripe's list parameters and error bodies, and
`GET /__sandbox/health` without authentication. Every response carries the world's "now" in
its `Date` header, the server clock a client compares event times with.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
import secrets
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sandbox.stripe_data import SortedObjects, StripeWorld

DEMO_API_KEY = "sk_test_spendlake_demo_key"

DEFAULT_STRIPE_VERSION = "2026-08-26.dahlia"
KNOWN_STRIPE_VERSIONS = frozenset(
    {
        "2026-03-25.dahlia",
        "2026-04-22.dahlia",
        "2026-05-27.dahlia",
        "2026-06-24.dahlia",
        "2026-07-29.dahlia",
        "2026-08-26.dahlia",
    }
)

HEALTH_PATH = "/__sandbox/health"

# path -> (kind in the world, object name used in Stripe's messages)
LIST_ROUTES = {
    "/v1/charges": ("charges", "charge"),
    "/v1/customers": ("customers", "customer"),
    "/v1/refunds": ("refunds", "refund"),
    "/v1/invoices": ("invoices", "invoice"),
    "/v1/subscriptions": ("subscriptions", "subscription"),
    "/v1/payment_intents": ("payment_intents", "payment_intent"),
    "/v1/balance_transactions": ("balance_transactions", "balance_transaction"),
    "/v1/products": ("products", "product"),
    "/v1/prices": ("prices", "price"),
}
EVENTS_PATH = "/v1/events"
# Subscription statuses accepted by the `status` filter; the default list leaves out canceled ones.
SUBSCRIPTION_STATUSES = frozenset(
    {"active", "all", "canceled", "ended", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid"}
)
# Event types the sandbox accepts: those it logs and the neighbours a wildcard would also match.
KNOWN_EVENT_TYPES = frozenset(
    {
        "balance.available",
        "charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refunded",
        "charge.succeeded", "charge.updated", "charge.dispute.created", "charge.dispute.closed",
        "charge.refund.updated",
        "customer.created", "customer.updated", "customer.deleted",
        "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
        "customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
        "invoice.created", "invoice.updated", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
        "invoice.payment_failed", "invoice.marked_uncollectible", "invoice.voided", "invoice.deleted",
        "invoice.upcoming", "invoice.sent",
        "payment_intent.created", "payment_intent.succeeded", "payment_intent.payment_failed",
        "payment_intent.canceled", "payment_intent.processing", "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated", "payment_intent.partially_funded",
        "price.created", "price.updated", "price.deleted",
        "product.created", "product.updated", "product.deleted",
        "refund.created", "refund.updated", "refund.failed",
    }
)
MAX_EVENT_TYPES = 20

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
LIST_PARAMETERS = frozenset(
    {
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "created[gt]",
        "created[gte]",
        "created[lt]",
        "created[lte]",
    }
)

_MISSING_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
    "See https://stripe.com/docs/api#authentication for details."
)
_KEY_PREFIX = re.compile(r"^(?:sk|rk|pk)_(?:test|live)_")
_INTEGER = re.compile(r"^-?[0-9]{1,19}$")
_RETRIEVE_PATH = re.compile(r"(/v1/[a-z_]+)/([A-Za-z0-9_]+)")
_ECHO_LIMIT = 100

Response = tuple[int, dict[str, str], bytes]


class _RequestError(Exception):
    """A Stripe-shaped error response (status and `error` object)."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.extra_headers = dict(extra_headers or {})


def handle_request(
    world: StripeWorld, method: str, path: str, query: str, headers: Mapping[str, str]
) -> Response:
    """Return (status, headers, body) for one request to the emulated Stripe API.

    `path` excludes the query string and `query` is the raw text after "?". Header names are
    matched case-insensitively.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    version = DEFAULT_STRIPE_VERSION
    try:
        if path == HEALTH_PATH:
            _require_get(method, path)
            return _json_response(200, {"status": "ok", "now": world.now})

        _authenticate(lowered.get("authorization"))
        version = _stripe_version(lowered.get("stripe-version"))
        if path == EVENTS_PATH:
            _require_get(method, path)
            return 200, _headers(version, world.now), _events_body(world, query)
        route = LIST_ROUTES.get(path)
        one = _RETRIEVE_PATH.fullmatch(path)
        if route is None and one is not None and one.group(1) in LIST_ROUTES:
            _require_get(method, path)
            return 200, _headers(version, world.now), _retrieve_body(world, LIST_ROUTES[one.group(1)], one.group(2), query)
        if route is None:
            raise _RequestError(404, f"Unrecognized request URL ({method}: {_echo(path)}).")
        _require_get(method, path)

        kind, object_name = route
        listing = world.listing(kind)
        if kind == "subscriptions":
            query, listing = _subscription_listing(world, query)
        body = _list_body(listing, path, object_name, query)
        return 200, _headers(version, world.now), body
    except _RequestError as error:
        response_headers = {**_headers(version, world.now), **error.extra_headers}
        return error.status, response_headers, _error_body(error)


def responses_callback(
    world: StripeWorld,
) -> Callable[[Any], tuple[int, dict[str, str], bytes]]:
    """Return a callback for `responses.add_callback` that serves requests from `world`.

    The callback reads `method`, `path_url` and `headers` of a `requests.PreparedRequest`.
    """

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        path, _, query = request.path_url.partition("?")
        return handle_request(world, request.method, path, query, request.headers)

    return callback


def _require_get(method: str, path: str) -> None:
    if method != "GET":
        raise _RequestError(
            405,
            f"Unsupported method {_echo(method)} for {path}: the sandbox serves only GET requests.",
            extra_headers={"Allow": "GET"},
        )


def _authenticate(authorization: str | None) -> None:
    """Raise a 401 unless the Authorization header carries DEMO_API_KEY (Bearer or Basic)."""
    if authorization is None or not authorization.strip():
        raise _RequestError(401, _MISSING_KEY_MESSAGE)

    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        key = credentials
    elif scheme.lower() == "basic":
        key = _basic_username(credentials)
    else:
        raise _RequestError(
            401,
            "Invalid Authorization header: use 'Authorization: Bearer <API key>' or HTTP Basic "
            "auth with the API key as the username.",
        )

    if not key:
        raise _RequestError(401, _MISSING_KEY_MESSAGE)
    if not secrets.compare_digest(key.encode("utf-8", "replace"), DEMO_API_KEY.encode()):
        raise _RequestError(401, f"Invalid API Key provided: {mask_api_key(key)}")


def _basic_username(credentials: str) -> str:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _RequestError(
            401,
            "Invalid HTTP Basic credentials: send base64('<API key>:') with the API key as the "
            "username and an empty password.",
        ) from None
    return decoded.partition(":")[0]


def mask_api_key(key: str) -> str:
    """Mask an API key like Stripe does: keep the `sk_test_` style prefix and the last 4 characters.

    The last 4 characters stay hidden when the rest of the key is 8 characters or shorter.
    """
    match = _KEY_PREFIX.match(key)
    prefix = match.group(0) if match else ""
    secret_part = key[len(prefix) :]
    if len(secret_part) <= 8:
        return f"{prefix}****"
    return f"{prefix}****{secret_part[-4:]}"


def _stripe_version(requested: str | None) -> str:
    if requested is None:
        return DEFAULT_STRIPE_VERSION
    version = requested.strip()
    if version not in KNOWN_STRIPE_VERSIONS:
        known = ", ".join(sorted(KNOWN_STRIPE_VERSIONS))
        raise _RequestError(
            400,
            f"Invalid Stripe-Version header: {_echo(version)} is not a known API version. "
            f"Use one of: {known}, or omit the header for {DEFAULT_STRIPE_VERSION}.",
            param="Stripe-Version",
        )
    return version


def _list_body(listing: SortedObjects, url: str, object_name: str, query: str) -> bytes:
    """Select one page of `listing` and render Stripe's list envelope."""
    parameters = _parse_query(query)
    limit = _limit(parameters)
    start, stop = _created_filter(parameters)
    span_start, span_stop = listing.created_span(start, stop)

    starting_after = parameters.get("starting_after")
    ending_before = parameters.get("ending_before")
    if starting_after is not None and ending_before is not None:
        raise _RequestError(
            400,
            "You may only specify one of these parameters: ending_before, starting_after.",
        )

    if ending_before is not None:
        cursor = _cursor_position(listing, object_name, "ending_before", ending_before)
        page_stop = min(span_stop, cursor)
        page_start = max(span_start, page_stop - limit)
        has_more = page_start > span_start
    else:
        page_start = span_start
        if starting_after is not None:
            cursor = _cursor_position(listing, object_name, "starting_after", starting_after)
            page_start = max(span_start, cursor + 1)
        page_stop = min(span_stop, page_start + limit)
        has_more = page_stop < span_stop

    items = _encoded_objects(listing)[page_start:max(page_start, page_stop)]
    head = json.dumps({"object": "list", "url": url, "has_more": has_more})[:-1]
    return head.encode() + b', "data": [' + b", ".join(items) + b"]}"


def _retrieve_body(world: StripeWorld, route: tuple[str, str], object_id: str, query: str) -> bytes:
    """Serve one current object by id, or Stripe's 404 `resource_missing` for a deleted or unknown one."""
    kind, object_name = route
    pairs = parse_qsl(query, keep_blank_values=True)
    if pairs:
        name = pairs[0][0]
        raise _RequestError(400, f"Received unknown parameter: {_echo(name)}", param=name)
    found = world.retrieve(kind, object_id)
    if found is None:
        raise _RequestError(404, f"No such {object_name}: '{_echo(object_id)}'", param="id", code="resource_missing")
    return json.dumps(found).encode()


def _parse_query(query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in LIST_PARAMETERS:
            raise _RequestError(400, f"Received unknown parameter: {_echo(name)}", param=name)
        if name in parameters:
            raise _RequestError(
                400, f"Received more than one value for parameter: {name}", param=name
            )
        parameters[name] = value
    return parameters


def _integer(parameters: Mapping[str, str], name: str) -> int | None:
    value = parameters.get(name)
    if value is None:
        return None
    if not _INTEGER.match(value):
        raise _RequestError(400, f"Invalid integer: {_echo(value)}", param=name)
    return int(value)


def _limit(parameters: Mapping[str, str]) -> int:
    limit = _integer(parameters, "limit")
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise _RequestError(
            400, f"Invalid limit: must be between 1 and {MAX_LIMIT}", param="limit"
        )
    return limit


def _created_filter(parameters: Mapping[str, str]) -> tuple[int | None, int | None]:
    """Fold every `created` parameter into one inclusive range [gte, lte] (None is open)."""
    lower_bounds = []
    upper_bounds = []

    exact = _integer(parameters, "created")
    if exact is not None:
        lower_bounds.append(exact)
        upper_bounds.append(exact)

    gte = _integer(parameters, "created[gte]")
    gt = _integer(parameters, "created[gt]")
    lte = _integer(parameters, "created[lte]")
    lt = _integer(parameters, "created[lt]")
    if gte is not None:
        lower_bounds.append(gte)
    if gt is not None:
        lower_bounds.append(gt + 1)
    if lte is not None:
        upper_bounds.append(lte)
    if lt is not None:
        upper_bounds.append(lt - 1)

    return (
        max(lower_bounds) if lower_bounds else None,
        min(upper_bounds) if upper_bounds else None,
    )


def _cursor_position(listing: SortedObjects, object_name: str, param: str, object_id: str) -> int:
    position = listing.position(object_id)
    if position is None:
        raise _RequestError(
            400,
            f"No such {object_name}: '{_echo(object_id)}'",
            param=param,
            code="resource_missing",
        )
    return position


# JSON of each listed object, built on first use. Keyed weakly so a dropped world frees it.
_ENCODED: weakref.WeakKeyDictionary[SortedObjects, list[bytes]] = weakref.WeakKeyDictionary()
_ENCODED_LOCK = threading.Lock()


def _encoded_objects(listing: SortedObjects) -> list[bytes]:
    with _ENCODED_LOCK:
        encoded = _ENCODED.get(listing)
        if encoded is None:
            encoded = [json.dumps(item).encode() for item in listing.objects]
            _ENCODED[listing] = encoded
    return encoded


def _headers(version: str, now: int | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Request-Id": "req_" + secrets.token_hex(7),
        "Stripe-Version": version,
        "Cache-Control": "no-cache, no-store",
    }
    if now is not None:
        headers["Date"] = email.utils.formatdate(now, usegmt=True)
    return headers


def _json_response(status: int, payload: Mapping[str, Any]) -> Response:
    headers = _headers(DEFAULT_STRIPE_VERSION)
    del headers["Stripe-Version"]
    return status, headers, json.dumps(payload).encode()


def _error_body(error: _RequestError) -> bytes:
    details: dict[str, Any] = {"type": "invalid_request_error", "message": error.message}
    if error.param is not None:
        details["param"] = error.param
    if error.code is not None:
        details["code"] = error.code
    return json.dumps({"error": details}).encode()


def _echo(value: str) -> str:
    """Shorten a client-supplied value before it is echoed in an error message."""
    if len(value) <= _ECHO_LIMIT:
        return value
    return value[:_ECHO_LIMIT] + "..."


def _subscription_listing(world: StripeWorld, query: str) -> tuple[str, SortedObjects]:
    """Apply Stripe's `status` filter and return the rest of the query with the filtered list.

    Without `status` the list leaves out canceled subscriptions; `status=all` lists them all.
    """
    pairs = parse_qsl(query, keep_blank_values=True)
    statuses = [value for name, value in pairs if name == "status"]
    rest = urlencode([(name, value) for name, value in pairs if name != "status"])
    if len(statuses) > 1:
        raise _RequestError(400, "Received more than one value for parameter: status", param="status")
    status = statuses[0] if statuses else None
    if status is not None and status not in SUBSCRIPTION_STATUSES:
        allowed = ", ".join(sorted(SUBSCRIPTION_STATUSES))
        raise _RequestError(400, f"Invalid status: must be one of {allowed}", param="status")
    return rest, world.subscriptions_with_status(status)


def _events_body(world: StripeWorld, query: str) -> bytes:
    """Serve `/v1/events`: the last 30 days, newest first, filtered by `type` or `types[]` and `created`."""
    pairs = parse_qsl(query, keep_blank_values=True)
    types = [value for name, value in pairs if name == "types[]"]
    single = [value for name, value in pairs if name == "type"]
    rest = urlencode([(name, value) for name, value in pairs if name not in ("types[]", "type")])
    if types and single:
        raise _RequestError(400, "You may only specify one of these parameters: type, types.", param="types")
    if len(types) > MAX_EVENT_TYPES:
        raise _RequestError(400, f"Invalid array: types must have at most {MAX_EVENT_TYPES} elements", param="types")
    for index, name in enumerate(types):
        if name not in KNOWN_EVENT_TYPES:
            raise _RequestError(400, f"Invalid types[{index}]: {_echo(name)} is not a known event type", param="types")
    if len(single) > 1:
        raise _RequestError(400, "Received more than one value for parameter: type", param="type")
    if single and not _known_pattern(single[0]):
        raise _RequestError(400, f"Invalid type: {_echo(single[0])} is not a known event type", param="type")
    listing = world.events_of_types(frozenset(types) if types else None, single[0] if single else None)
    return _list_body(listing, EVENTS_PATH, "event", rest)


def _known_pattern(pattern: str) -> bool:
    """Tell whether a `type` value names a known type, or ends in `*` and matches one (`charge.*`)."""
    if pattern.endswith("*"):
        return any(name.startswith(pattern[:-1]) for name in KNOWN_EVENT_TYPES)
    return pattern in KNOWN_EVENT_TYPES
