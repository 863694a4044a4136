"""Tests of the Stripe-shaped request handler, driven without a socket."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from typing import Any

import pytest
import requests
import responses

from sandbox.stripe_api import (
    DEFAULT_STRIPE_VERSION,
    DEMO_API_KEY,
    handle_request,
    mask_api_key,
    responses_callback,
)
from sandbox.stripe_data import StripeWorld

SEED = 11
ANCHOR = 1_780_000_000
TICKS = (ANCHOR + 86_400,)
AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}
KINDS = {"/v1/charges": "charges", "/v1/customers": "customers", "/v1/refunds": "refunds"}


@pytest.fixture(scope="module")
def world() -> StripeWorld:
    return StripeWorld(SEED, ANCHOR, TICKS)


def call(
    world: StripeWorld,
    query: str = "",
    path: str = "/v1/charges",
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> tuple[int, dict[str, str], Any]:
    status, response_headers, body = handle_request(
        world, method, path, query, AUTH if headers is None else headers
    )
    return status, response_headers, json.loads(body)


def error_of(world: StripeWorld, expected_status: int, **request: Any) -> dict[str, Any]:
    status, _, payload = call(world, **request)
    assert status == expected_status, payload
    assert set(payload) == {"error"}
    assert payload["error"]["type"] == "invalid_request_error"
    return payload["error"]


def walk_forward(world: StripeWorld, path: str, query: str, limit: int) -> list[dict[str, Any]]:
    """Follow `starting_after` from the first page to the last and return every object."""
    collected: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(10_000):
        status, _, page = call(world, f"{query}&limit={limit}{cursor}", path=path)
        assert status == 200, page
        assert len(page["data"]) <= limit
        collected.extend(page["data"])
        if not page["has_more"]:
            return collected
        assert len(page["data"]) == limit
        cursor = f"&starting_after={page['data'][-1]['id']}"
    raise AssertionError("pagination did not end")


def filtered(world: StripeWorld, kind: str, keep: Any) -> list[str]:
    return [item["id"] for item in getattr(world, kind) if keep(item["created"])]


# Health and response headers


def test_health_needs_no_key(world: StripeWorld) -> None:
    status, headers, payload = call(world, path="/__sandbox/health", headers={})

    assert status == 200
    assert payload == {"status": "ok", "now": TICKS[-1]}
    assert headers["Content-Type"] == "application/json"


def test_health_rejects_post(world: StripeWorld) -> None:
    error = error_of(world, 405, path="/__sandbox/health", headers={}, method="POST")

    assert "Unsupported method POST" in error["message"]


@pytest.mark.parametrize(
    ("path", "query", "headers"),
    [
        ("/v1/charges", "", AUTH),
        ("/v1/charges", "limit=0", AUTH),
        ("/v1/charges", "", {}),
        ("/v1/nothing", "", AUTH),
        ("/__sandbox/health", "", {}),
    ],
)
def test_every_response_json_with_request_id(
    world: StripeWorld, path: str, query: str, headers: dict[str, str]
) -> None:
    status, response_headers, body = handle_request(world, "GET", path, query, headers)

    assert response_headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"req_[0-9a-f]{14}", response_headers["Request-Id"])
    assert isinstance(json.loads(body), dict)
    assert status in {200, 400, 401, 404}


def test_request_ids_differ(world: StripeWorld) -> None:
    ids = {handle_request(world, "GET", "/v1/charges", "", AUTH)[1]["Request-Id"] for _ in range(5)}

    assert len(ids) == 5


# Authentication


def test_missing_key_401(world: StripeWorld) -> None:
    error = error_of(world, 401, headers={})

    assert error["message"].startswith("You did not provide an API key.")


def test_empty_bearer_401(world: StripeWorld) -> None:
    error = error_of(world, 401, headers={"Authorization": "Bearer "})

    assert error["message"].startswith("You did not provide an API key.")


def test_wrong_key_masked(world: StripeWorld) -> None:
    wrong_key = "sk_test_abcdefghijklmn9876"
    status, _, body = handle_request(
        world, "GET", "/v1/charges", "", {"Authorization": f"Bearer {wrong_key}"}
    )

    assert status == 401
    assert json.loads(body)["error"]["message"] == "Invalid API Key provided: sk_test_****9876"
    assert b"abcdefghijklmn" not in body


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("sk_test_abcdefghijklmn9876", "sk_test_****9876"),
        ("rk_live_0123456789abcdef", "rk_live_****cdef"),
        ("sk_test_short", "sk_test_****"),
        ("plain-secret-value-wxyz", "****wxyz"),
        ("tiny", "****"),
    ],
)
def test_mask_api_key(key: str, masked: str) -> None:
    assert mask_api_key(key) == masked


def test_basic_auth_accepted(world: StripeWorld) -> None:
    token = base64.b64encode(f"{DEMO_API_KEY}:".encode()).decode()

    status, _, payload = call(world, headers={"authorization": f"Basic {token}"})

    assert status == 200
    assert len(payload["data"]) == 10


def test_basic_auth_wrong_key_401(world: StripeWorld) -> None:
    token = base64.b64encode(b"sk_test_notthedemokey42:").decode()

    error = error_of(world, 401, headers={"Authorization": f"Basic {token}"})

    assert error["message"] == "Invalid API Key provided: sk_test_****ey42"


def test_basic_auth_malformed_401(world: StripeWorld) -> None:
    error = error_of(world, 401, headers={"Authorization": "Basic !!not-base64!!"})

    assert error["message"].startswith("Invalid HTTP Basic credentials")


def test_unknown_auth_scheme_401(world: StripeWorld) -> None:
    error = error_of(world, 401, headers={"Authorization": f"Token {DEMO_API_KEY}"})

    assert error["message"].startswith("Invalid Authorization header: use 'Authorization: Bearer")


def test_bearer_scheme_case_insensitive(world: StripeWorld) -> None:
    status, _, _ = call(world, headers={"AUTHORIZATION": f"bearer {DEMO_API_KEY}"})

    assert status == 200


def test_auth_checked_before_routing(world: StripeWorld) -> None:
    error_of(world, 401, path="/v1/nothing", headers={})


# Stripe-Version


@pytest.mark.parametrize("version", ["2026-08-26.dahlia", "2026-03-25.dahlia"])
def test_known_version_echoed(world: StripeWorld, version: str) -> None:
    status, headers, _ = call(world, headers={**AUTH, "Stripe-Version": version})

    assert status == 200
    assert headers["Stripe-Version"] == version


def test_default_version_echoed(world: StripeWorld) -> None:
    _, headers, _ = call(world)

    assert headers["Stripe-Version"] == DEFAULT_STRIPE_VERSION == "2026-08-26.dahlia"


@pytest.mark.parametrize("version", ["2020-08-27", "2026-08-26.acacia", ""])
def test_unknown_version_400(world: StripeWorld, version: str) -> None:
    error = error_of(world, 400, headers={**AUTH, "stripe-version": version})

    assert error["message"].startswith("Invalid Stripe-Version header")
    assert "2026-08-26.dahlia" in error["message"]
    assert error["param"] == "Stripe-Version"


# Routing and methods


@pytest.mark.parametrize("path", ["/v1/x", "/v1/charges/", "/v1/disputes", "/"])
def test_unknown_path_404(world: StripeWorld, path: str) -> None:
    error = error_of(world, 404, path=path)

    assert error["message"] == f"Unrecognized request URL (GET: {path})."


@pytest.mark.parametrize("method", ["POST", "DELETE", "HEAD"])
def test_non_get_405(world: StripeWorld, method: str) -> None:
    status, headers, body = handle_request(world, method, "/v1/charges", "", AUTH)

    assert status == 405
    assert headers["Allow"] == "GET"
    assert json.loads(body)["error"]["message"].startswith(f"Unsupported method {method}")


# List envelope and limit


@pytest.mark.parametrize("path", sorted(KINDS))
def test_first_page_default_limit(world: StripeWorld, path: str) -> None:
    status, _, page = call(world, path=path)

    assert status == 200
    assert list(page) == ["object", "url", "has_more", "data"]
    assert page["object"] == "list"
    assert page["url"] == path
    assert page["has_more"] is True
    assert page["data"] == getattr(world, KINDS[path])[:10]


def test_limit_max_100(world: StripeWorld) -> None:
    _, _, page = call(world, "limit=100")

    assert page["data"] == world.charges[:100]


@pytest.mark.parametrize("value", ["0", "101", "-1", "100000"])
def test_limit_out_of_range_400(world: StripeWorld, value: str) -> None:
    error = error_of(world, 400, query=f"limit={value}")

    assert error["message"] == "Invalid limit: must be between 1 and 100"
    assert error["param"] == "limit"


@pytest.mark.parametrize("value", ["abc", "1.5", "", "+5", " 5", "1_0", "9" * 40])
def test_limit_not_integer_400(world: StripeWorld, value: str) -> None:
    error = error_of(world, 400, query=f"limit={requests.utils.quote(value)}")

    assert error["message"].startswith("Invalid integer: ")
    assert error["param"] == "limit"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("foo=1", "foo"),
        ("expand[]=data.customer", "expand[]"),
        ("expand%5B%5D=data.customer", "expand[]"),
        ("created[ne]=5", "created[ne]"),
        ("limit=5&status=all", "status"),
    ],
)
def test_unknown_parameter_400(world: StripeWorld, query: str, param: str) -> None:
    error = error_of(world, 400, query=query)

    assert error["message"] == f"Received unknown parameter: {param}"
    assert error["param"] == param


def test_repeated_parameter_400(world: StripeWorld) -> None:
    error = error_of(world, 400, query="limit=5&limit=6")

    assert error["message"] == "Received more than one value for parameter: limit"
    assert error["param"] == "limit"


# Cursors


@pytest.mark.parametrize("path", sorted(KINDS))
def test_pagination_walks_every_object_once(world: StripeWorld, path: str) -> None:
    collected = walk_forward(world, path, "", limit=100)
    ids = [item["id"] for item in collected]

    assert ids == [item["id"] for item in getattr(world, KINDS[path])]
    assert max(Counter(ids).values()) == 1


def test_pagination_through_ties(world: StripeWorld) -> None:
    tie, size = Counter(c["created"] for c in world.charges).most_common(1)[0]
    query = f"created[gte]={tie - 3 * 3_600}&created[lte]={tie + 3 * 3_600}"
    expected = filtered(world, "charges", lambda created: tie - 10_800 <= created <= tie + 10_800)

    assert size >= 2
    for limit in (1, 2, 3, 7):
        ids = [item["id"] for item in walk_forward(world, "/v1/charges", query, limit)]
        assert ids == expected, limit


def test_ending_before_walks_backward(world: StripeWorld) -> None:
    refunds = world.refunds
    pages = []
    cursor = refunds[-1]["id"]
    for _ in range(1_000):
        status, _, page = call(world, f"limit=25&ending_before={cursor}", path="/v1/refunds")
        assert status == 200
        pages.append(page["data"])
        if not page["has_more"]:
            break
        cursor = page["data"][0]["id"]

    collected = [item for page in reversed(pages) for item in page]
    assert collected == refunds[:-1]
    assert all(len(page) == 25 for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= 25


def test_starting_after_last_empty(world: StripeWorld) -> None:
    _, _, page = call(world, f"starting_after={world.charges[-1]['id']}")

    assert page["data"] == []
    assert page["has_more"] is False


def test_ending_before_first_empty(world: StripeWorld) -> None:
    _, _, page = call(world, f"ending_before={world.charges[0]['id']}")

    assert page["data"] == []
    assert page["has_more"] is False


@pytest.mark.parametrize(
    ("path", "param", "object_name"),
    [
        ("/v1/charges", "starting_after", "charge"),
        ("/v1/customers", "ending_before", "customer"),
        ("/v1/refunds", "starting_after", "refund"),
    ],
)
def test_unknown_cursor_400(world: StripeWorld, path: str, param: str, object_name: str) -> None:
    error = error_of(world, 400, path=path, query=f"{param}=xx_doesnotexist")

    assert error["message"] == f"No such {object_name}: 'xx_doesnotexist'"
    assert error["param"] == param
    assert error["code"] == "resource_missing"


def test_cursor_of_other_kind_400(world: StripeWorld) -> None:
    customer_id = world.customers[0]["id"]

    error = error_of(world, 400, query=f"starting_after={customer_id}")

    assert error["message"] == f"No such charge: '{customer_id}'"


def test_both_cursors_400(world: StripeWorld) -> None:
    first, second = world.charges[0]["id"], world.charges[5]["id"]

    error = error_of(world, 400, query=f"starting_after={first}&ending_before={second}")

    assert error["message"] == (
        "You may only specify one of these parameters: ending_before, starting_after."
    )


# Created filters


@pytest.mark.parametrize(
    ("operator", "keep"),
    [
        ("created[gte]", lambda created, t: created >= t),
        ("created[gt]", lambda created, t: created > t),
        ("created[lte]", lambda created, t: created <= t),
        ("created[lt]", lambda created, t: created < t),
        ("created", lambda created, t: created == t),
    ],
)
def test_created_filter_bounds(world: StripeWorld, operator: str, keep: Any) -> None:
    tie = Counter(c["created"] for c in world.charges).most_common(1)[0][0]

    collected = walk_forward(world, "/v1/charges", f"{operator}={tie}", limit=100)

    assert [item["id"] for item in collected] == filtered(
        world, "charges", lambda created: keep(created, tie)
    )


def test_created_range_matches_count(world: StripeWorld) -> None:
    query = f"created[gt]={ANCHOR}&created[lte]={TICKS[0]}"

    for path, kind in KINDS.items():
        collected = walk_forward(world, path, query, limit=100)
        assert len(collected) == world.count(kind, gte=ANCHOR + 1, lte=TICKS[0])
        assert len(collected) > 0


def test_created_empty_range(world: StripeWorld) -> None:
    status, _, page = call(world, f"created[gt]={ANCHOR}&created[lt]={ANCHOR}")

    assert status == 200
    assert page["data"] == []
    assert page["has_more"] is False


def test_created_filter_with_cursor(world: StripeWorld) -> None:
    query = f"created[lte]={ANCHOR}&limit=5"
    expected = filtered(world, "charges", lambda created: created <= ANCHOR)

    _, _, first = call(world, query)
    _, _, second = call(world, f"{query}&starting_after={first['data'][-1]['id']}")

    assert [item["id"] for item in first["data"] + second["data"]] == expected[:10]


@pytest.mark.parametrize("param", ["created", "created[gte]", "created[gt]", "created[lt]"])
def test_created_not_integer_400(world: StripeWorld, param: str) -> None:
    error = error_of(world, 400, query=f"{param}=yesterday")

    assert error["message"] == "Invalid integer: yesterday"
    assert error["param"] == param


def test_error_echo_shortened(world: StripeWorld) -> None:
    error = error_of(world, 400, query="created=" + "x" * 500)

    assert error["message"] == "Invalid integer: " + "x" * 100 + "..."


# Driven through `responses`, as tap tests do


def test_responses_callback_pages_with_requests(world: StripeWorld) -> None:
    base_url = "http://127.0.0.1:1"
    collected: list[dict[str, Any]] = []

    with responses.RequestsMock() as mock:
        mock.add_callback(
            responses.GET,
            re.compile(r"http://127\.0\.0\.1:1/v1/.*"),
            callback=responses_callback(world),
        )
        params: dict[str, Any] = {"limit": 100}
        while True:
            response = requests.get(
                f"{base_url}/v1/customers", params=params, auth=(DEMO_API_KEY, ""), timeout=5
            )
            assert response.status_code == 200
            page = response.json()
            collected.extend(page["data"])
            if not page["has_more"]:
                break
            params["starting_after"] = page["data"][-1]["id"]

        rejected = requests.get(f"{base_url}/v1/customers", params={"limit": 0}, timeout=5)

    assert collected == world.customers
    assert rejected.status_code == 401
