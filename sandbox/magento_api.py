"""Magento 2 REST responses for a `MagentoWorld`, as a pure function of the request.

`handle_magento_request` serves `/rest/<store_code>/V1/...` (and `/rest/V1/...` for the
default store view) with Magento's search criteria, paging quirks and error bodies:

- `searchCriteria[filter_groups][g][filters][f][field|value|condition_type]`: filters in a
  group are joined by OR, groups by AND; conditions eq, neq, gt, gteq, lt, lteq, in, nin,
  like, null and notnull.
- `searchCriteria[sortOrders][n][field|direction]`, applied in order; without any, entity id order.
- `searchCriteria[pageSize]` and `[currentPage]`: without a page size every match is returned,
  a page past the end returns the last page again, and the `search_criteria` echo leaves out
  `page_size` and `current_page` when they were not sent.
- With Web API input limits on (`MagentoSession.input_limits`), a page size above the maximum
  is refused with HTTP 400 and the default page size is 20.
- A missing or wrong bearer token gets HTTP 401 with Magento's message template.
- Every response states the world's clock (`MagentoWorld.now`) in its `Date` header.
- `MagentoSession.after_search` runs after each search page is served, so a test can update
  a row between two page requests.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sandbox.magento_data import STORE_VIEWS, MagentoWorld

DEMO_TOKEN = "spendlake-magento-demo-token"

# Searchable lists: path under /V1 -> (collection, id key used for sorting by entity id).
SEARCH_ROUTES = {
    "/V1/orders": ("orders", "entity_id"),
    "/V1/invoices": ("invoices", "entity_id"),
    "/V1/creditmemos": ("creditmemos", "entity_id"),
    "/V1/products": ("products", "id"),
    "/V1/customers/search": ("customers", "id"),
}
ENTITY_ROUTES = {
    "/V1/orders/": ("orders", "entity_id"),
    "/V1/invoices/": ("invoices", "entity_id"),
    "/V1/creditmemos/": ("creditmemos", "entity_id"),
}
MAX_PAGE_SIZE = 300
LIMITED_DEFAULT_PAGE_SIZE = 20

_CRITERIA = re.compile(r"^searchCriteria\[(?P<rest>.+)\]$")
_FILTER = re.compile(r"^filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(field|value|condition_type)$")
_SORT = re.compile(r"^sortOrders\]\[(\d+)\]\[(field|direction)$")
_CONDITIONS = frozenset({"eq", "neq", "gt", "gteq", "lt", "lteq", "in", "nin", "like", "null", "notnull"})

Response = tuple[int, dict[str, str], bytes]


@dataclass
class MagentoSession:
    """Per-server behaviour and request log of the emulated store.

    `failures` lists HTTP statuses (429, 503, 500) returned, one per request and in order,
    before any request is served, as a CDN or a busy PHP pool does.
    """

    input_limits: bool = False
    max_page_size: int = MAX_PAGE_SIZE
    developer_mode: bool = False
    failures: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # Called with the world and the number of search pages served so far, after each one.
    after_search: Callable[[MagentoWorld, int], None] | None = None
    searches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _MagentoError(Exception):
    """A Magento error body: a message template with %1 or %name placeholders and its parameters."""

    def __init__(self, status: int, message: str, parameters: list[Any] | dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters


def handles_path(path: str) -> bool:
    """Tell whether a request path belongs to the Magento emulator."""
    return path.startswith("/rest/")


def handle_magento_request(
    world: MagentoWorld,
    session: MagentoSession,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None = None,
) -> Response:
    """Return (status, headers, body) for one request to the emulated Magento REST API."""
    with session.lock:
        session.requests.append((path, query))
        failure = session.failures.pop(0) if session.failures else None
    if failure is not None:
        return _cdn_failure(failure)

    try:
        _authenticate(headers)
        route = _route(path)
        if method != "GET":
            raise _MagentoError(405, "Request does not match any route.")
        status, response_headers, payload = _json(200, _serve(world, session, route, query))
    except _MagentoError as error:
        status, response_headers, payload = _json(error.status, _error_body(error, session.developer_mode))
    response_headers["Date"] = email.utils.formatdate(world.now, usegmt=True)
    return status, response_headers, payload


def responses_callback(world: MagentoWorld, session: MagentoSession | None = None) -> Callable[[Any], Response]:
    """Return a callback for `responses.add_callback` that serves requests from `world`."""
    session = session or MagentoSession()

    def callback(request: Any) -> Response:
        path, _, query = request.path_url.partition("?")
        return handle_magento_request(world, session, request.method, path, query, request.headers, request.body)

    return callback


def _authenticate(headers: Mapping[str, str]) -> None:
    lowered = {name.lower(): value for name, value in headers.items()}
    scheme, _, token = (lowered.get("authorization") or "").strip().partition(" ")
    valid = scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode("utf-8", "replace"), DEMO_TOKEN.encode())
    if not valid:
        raise _MagentoError(401, "The consumer isn't authorized to access %resources.", {"resources": "Magento_Sales::sales"})


def _route(path: str) -> str:
    """Strip `/rest/<store_code>` and return the `/V1/...` part; an unknown store code is refused."""
    rest = path.removeprefix("/rest")
    if rest.startswith("/V1/"):
        return rest
    store_code, _, tail = rest.lstrip("/").partition("/")
    if store_code not in {"all", *(view[1] for view in STORE_VIEWS)}:
        raise _MagentoError(400, "The store that was requested wasn't found. Verify the store and try again.")
    return "/" + tail


def _serve(world: MagentoWorld, session: MagentoSession, route: str, query: str) -> Any:
    if route == "/V1/store/storeConfigs":
        return world.store_configs()
    if route == "/V1/store/storeViews":
        return world.store_views()
    if route in SEARCH_ROUTES:
        collection, id_key = SEARCH_ROUTES[route]
        page = search(world.collection(collection), id_key, parse_qsl(query, keep_blank_values=True), session)
        return _after_search(world, session, page)
    for prefix, (collection, id_key) in ENTITY_ROUTES.items():
        if route.startswith(prefix) and route[len(prefix):].isdigit():
            return _entity(world.collection(collection), id_key, int(route[len(prefix):]))
    if route.startswith("/V1/products/"):
        return _entity(world.collection("products"), "sku", route.removeprefix("/V1/products/"))
    raise _MagentoError(404, "Request does not match any route.")


def _after_search(world: MagentoWorld, session: MagentoSession, page: dict[str, Any]) -> dict[str, Any]:
    """Count a served search page and run the session's hook; return the page as it was before the hook."""
    with session.lock:
        session.searches += 1
        served = session.searches
    if session.after_search is None:
        return page
    # The page is serialised after the hook runs, so it is copied first: an update changes later pages only.
    snapshot = json.loads(json.dumps(page))
    session.after_search(world, served)
    return snapshot


def _entity(items: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any]:
    for item in items:
        if item[key] == value:
            return item
    raise _MagentoError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")


@dataclass
class _Criteria:
    filter_groups: dict[int, dict[int, dict[str, str]]] = field(default_factory=dict)
    sort_orders: dict[int, dict[str, str]] = field(default_factory=dict)
    page_size: int | None = None
    current_page: int | None = None
    sent: bool = False


def search(items: list[dict[str, Any]], id_key: str, parameters: list[tuple[str, str]], session: MagentoSession) -> dict[str, Any]:
    """Filter, sort and page `items` as a Magento repository `getList` does."""
    criteria = _parse_criteria(parameters)
    if not criteria.sent:
        raise _MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "searchCriteria"})

    page_size = criteria.page_size
    if session.input_limits:
        if page_size is not None and page_size > session.max_page_size:
            raise _MagentoError(400, "Maximum SearchCriteria pageSize is %max", {"max": session.max_page_size})
        page_size = page_size or LIMITED_DEFAULT_PAGE_SIZE

    matches = [item for item in items if all(_group_matches(item, group) for group in criteria.filter_groups.values())]
    for index in sorted(criteria.sort_orders, reverse=True):
        order = criteria.sort_orders[index]
        # Customers and products send their entity id as `id`, but the collections sort on `entity_id`.
        sort_field = id_key if order.get("field") in (None, "", "entity_id") else order["field"]
        matches.sort(key=lambda item: _sort_key(item.get(sort_field)), reverse=(order.get("direction") or "ASC").upper() == "DESC")

    total = len(matches)
    page = matches
    if page_size:
        # Magento clamps the page number to the last page, so a page past the end repeats it.
        last_page = max(1, math.ceil(total / page_size))
        current = min(max(criteria.current_page or 1, 1), last_page)
        page = matches[(current - 1) * page_size : current * page_size]
    return {"items": page, "search_criteria": _echo(criteria), "total_count": total}


def _parse_criteria(parameters: list[tuple[str, str]]) -> _Criteria:
    criteria = _Criteria()
    for name, value in parameters:
        match = _CRITERIA.match(name)
        if match is None:
            continue
        criteria.sent = True
        rest = match["rest"]
        if rest in ("pageSize", "currentPage"):
            if not value.strip().lstrip("-").isdigit():
                raise _MagentoError(400, 'The "%1" value is invalid. Enter a valid integer.', [rest])
            number = int(value)
            if rest == "pageSize":
                criteria.page_size = number
            else:
                criteria.current_page = number
        elif filter_match := _FILTER.match(rest):
            group, index, key = int(filter_match[1]), int(filter_match[2]), filter_match[3]
            criteria.filter_groups.setdefault(group, {}).setdefault(index, {})[key] = value
        elif sort_match := _SORT.match(rest):
            criteria.sort_orders.setdefault(int(sort_match[1]), {})[sort_match[2]] = value
    for group in criteria.filter_groups.values():
        for condition in group.values():
            kind = condition.get("condition_type", "eq")
            if kind not in _CONDITIONS:
                raise _MagentoError(400, 'Invalid condition type "%1" was provided.', [kind])
    return criteria


def _group_matches(item: dict[str, Any], group: dict[int, dict[str, str]]) -> bool:
    return any(_condition_holds(item, condition) for condition in group.values())


def _condition_holds(item: dict[str, Any], condition: dict[str, str]) -> bool:
    kind = condition.get("condition_type", "eq")
    actual = item.get(condition.get("field", ""))
    expected = condition.get("value", "")
    if kind == "null":
        return actual is None
    if kind == "notnull":
        return actual is not None
    if actual is None:
        return False
    if kind in ("in", "nin"):
        found = any(_compare(actual, part.strip()) == 0 for part in expected.split(","))
        return found if kind == "in" else not found
    if kind == "like":
        pattern = "^" + re.escape(expected).replace("%", ".*").replace("_", ".") + "$"
        return re.match(pattern, str(actual), re.IGNORECASE) is not None
    order = _compare(actual, expected)
    return {"eq": order == 0, "neq": order != 0, "gt": order > 0, "gteq": order >= 0, "lt": order < 0, "lteq": order <= 0}[kind]


def _compare(actual: Any, expected: str) -> int:
    """Compare like MySQL: numbers as numbers, everything else as text."""
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            number = float(expected)
        except ValueError:
            return 1
        return (actual > number) - (actual < number)
    text = str(actual)
    return (text > expected) - (text < expected)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def _echo(criteria: _Criteria) -> dict[str, Any]:
    echo: dict[str, Any] = {
        "filter_groups": [
            {"filters": [_filter_echo(criteria.filter_groups[g][f]) for f in sorted(criteria.filter_groups[g])]}
            for g in sorted(criteria.filter_groups)
        ]
    }
    if criteria.sort_orders:
        echo["sort_orders"] = [
            {"field": criteria.sort_orders[i].get("field"), "direction": (criteria.sort_orders[i].get("direction") or "ASC").upper()}
            for i in sorted(criteria.sort_orders)
        ]
    if criteria.page_size is not None:
        echo["page_size"] = criteria.page_size
    if criteria.current_page is not None:
        echo["current_page"] = criteria.current_page
    return echo


def _filter_echo(condition: dict[str, str]) -> dict[str, str]:
    return {"field": condition.get("field", ""), "value": condition.get("value", ""), "condition_type": condition.get("condition_type", "eq")}


def _error_body(error: _MagentoError, developer_mode: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"message": error.message}
    if error.parameters is not None:
        body["parameters"] = error.parameters
    if developer_mode:
        body["trace"] = "#0 /var/www/html/vendor/magento/framework/Webapi/ErrorProcessor.php(205): Magento\\Framework\\Webapi\\ErrorProcessor->maskException()"
    return body


def _cdn_failure(status: int) -> Response:
    """Return an HTML error page as a CDN in front of the store sends it, with a short Retry-After."""
    page = f"<html><body><h1>Error {status}</h1><p>Varnish cache server</p></body></html>".encode()
    return status, {"Content-Type": "text/html", "Retry-After": "1"}, page


def _json(status: int, payload: Any) -> Response:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode()
