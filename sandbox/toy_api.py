"""A toy lead-form API for testing sources installed as plugins.

`GET /toy/v1/leads` lists one lead per sandbox customer (newest first), with
Stripe-style `limit` / `starting_after` paging and a `created[gte]` filter.
It checks the same demo key as the Stripe emulator, sent as a bearer token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from sandbox.stripe_api import DEMO_API_KEY
from sandbox.stripe_data import StripeWorld

LEADS_PATH = "/toy/v1/leads"
MAX_LIMIT = 100


def handle_toy_request(
    world: StripeWorld,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
) -> tuple[int, dict[str, str], bytes]:
    """Serve the toy API: a status, headers and a JSON body."""
    if path != LEADS_PATH:
        return _error(404, f"Unknown path {path}; the toy API serves {LEADS_PATH}.")
    if method != "GET":
        return _error(405, "The toy API serves only GET requests.")
    if headers.get("Authorization") != f"Bearer {DEMO_API_KEY}":
        return _error(401, "Missing or invalid bearer token.")

    try:
        parameters = {name: values[-1] for name, values in parse_qs(query, strict_parsing=False).items()}
        limit = min(int(parameters.get("limit", "10")), MAX_LIMIT)
        since = int(parameters["created[gte]"]) if "created[gte]" in parameters else None
    except ValueError:
        return _error(400, "limit and created[gte] must be integers.")

    leads = [lead for lead in (_lead(customer) for customer in world.customers) if since is None or lead["created"] >= since]
    after = parameters.get("starting_after")
    if after is not None:
        ids = [lead["id"] for lead in leads]
        if after not in ids:
            return _error(400, "starting_after names no lead.")
        leads = leads[ids.index(after) + 1 :]

    body = {"data": leads[:limit], "has_more": len(leads) > limit}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _lead(customer: Mapping[str, Any]) -> dict[str, Any]:
    metadata = customer.get("metadata") or {}
    return {
        "id": "lead_" + str(customer["id"]).removeprefix("cus_"),
        "created": customer["created"],
        "email": customer.get("email"),
        "full_name": customer.get("name"),
        "campaign": metadata.get("signup_source"),
    }


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps({"error": {"message": message}}).encode()
