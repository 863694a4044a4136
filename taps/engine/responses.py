"""Parsed response bodies, decoded once per response and shared by the parser and paginator."""

from __future__ import annotations

import typing as t

import requests
import simplejson

_CACHE_ATTRIBUTE = "_spendlake_body"


class InvalidResponseError(ValueError):
    """Raised when a response body is not the JSON the declaration expects."""


def response_json(response: requests.Response) -> t.Any:
    """Return the response body parsed as JSON (floats as Decimal), caching it on the response."""
    cached = getattr(response, _CACHE_ATTRIBUTE, None)
    if cached is not None:
        return cached

    try:
        body = simplejson.loads(response.content, use_decimal=True) if response.content else None
    except ValueError:
        path = requests.utils.urlparse(response.url).path
        msg = f"The response from {path} is not valid JSON (status {response.status_code})."
        raise InvalidResponseError(msg) from None

    setattr(response, _CACHE_ATTRIBUTE, body)
    return body


def read_dotted(body: t.Any, dotted: str) -> t.Any:
    """Read a dotted path (`paging.next`) from a parsed body; None when any step is absent."""
    value = body
    for step in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value

