"""Declared field transforms: each format to the type the schema promises."""

from __future__ import annotations

import typing as t
from decimal import Decimal

import pytest

from taps.engine.declaration import FieldSpec
from taps.engine.transforms import TRANSFORMS, FieldTransformError, cut_url


def field(transform: str, json_type: str = "string", timezone: str | None = None) -> FieldSpec:
    return FieldSpec(name="value", type=json_type, pii="none", path=("value",), transform=transform, timezone=timezone)


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        pytest.param(field("epoch_seconds"), 1_700_000_000, "2023-11-14T22:13:20+00:00", id="epoch-seconds"),
        pytest.param(field("epoch_seconds"), "1700000000", "2023-11-14T22:13:20+00:00", id="epoch-seconds-text"),
        pytest.param(field("epoch_milliseconds"), 1_700_000_000_500, "2023-11-14T22:13:20.500000+00:00", id="epoch-ms"),
        pytest.param(field("yyyymmdd"), "20261104", "2026-11-04", id="yyyymmdd"),
        pytest.param(field("local_timestamp"), "2017-08-21 22:22:19", "2017-08-21T22:22:19+00:00", id="zone-less-utc"),
        pytest.param(field("local_timestamp", timezone="America/Los_Angeles"), "2026-11-04 00:30:00", "2026-11-04T08:30:00+00:00", id="zone-less-la"),
        pytest.param(field("local_timestamp", timezone="Europe/Berlin"), "2026-03-29T02:30:00+02:00", "2026-03-29T00:30:00+00:00", id="offset-kept"),
        pytest.param(field("local_timestamp"), "", None, id="empty-timestamp"),
        pytest.param(field("numeric_string", "number"), "14.35", Decimal("14.35"), id="spend-text"),
        pytest.param(field("numeric_string", "integer"), "185", 185, id="impressions-text"),
        pytest.param(field("numeric_string", "integer"), "1061083620", 1_061_083_620, id="cost-micros"),
        pytest.param(field("numeric_string", "number"), 3, Decimal(3), id="already-number"),
        pytest.param(field("numeric_string", "number"), None, None, id="null"),
    ],
)
def test_transform_converts(spec: FieldSpec, raw: t.Any, expected: t.Any) -> None:
    assert TRANSFORMS[spec.transform or ""](raw, spec) == expected


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        pytest.param(field("numeric_string", "integer"), "14.35", "expected a whole number", id="fraction-for-integer"),
        pytest.param(field("numeric_string", "number"), "n/a", "expected a number or numeric string", id="not-a-number"),
        pytest.param(field("numeric_string", "number"), "NaN", "expected a number or numeric string", id="nan"),
        pytest.param(field("numeric_string", "number"), True, "expected a number or numeric string", id="boolean"),
        pytest.param(field("yyyymmdd"), "2026-11-04", "expected a YYYYMMDD date", id="iso-date"),
        pytest.param(field("yyyymmdd"), "20261340", "expected a valid YYYYMMDD date", id="month-13"),
        pytest.param(field("epoch_seconds"), "yesterday", "expected epoch seconds", id="epoch-text"),
        pytest.param(field("local_timestamp"), "21/08/2017", "expected an ISO-8601", id="day-first"),
    ],
)
def test_transform_rejects_with_field_name(spec: FieldSpec, raw: t.Any, message: str) -> None:
    with pytest.raises(FieldTransformError, match=message) as raised:
        TRANSFORMS[spec.transform or ""](raw, spec)

    assert "Field 'value'" in str(raised.value)
    assert str(raw) not in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("/account/confirm?email=a@example.com#top", "/account/confirm", id="query-and-fragment"),
        pytest.param("/unsubscribe/jane.doe@example.com", "/unsubscribe/(redacted)", id="address-segment"),
        pytest.param("/confirm;email=bob@example.com", "/confirm", id="matrix-parameter"),
        pytest.param("/r%3Femail%3Dcarl%40example.com", "/r", id="encoded-query"),
        pytest.param("/r%253Femail%253Dcarl%2540example.com", "/r", id="encoded-twice"),
        pytest.param("/x&email=eve@example.com", "/x", id="ampersand"),
        pytest.param("/reset-password/tok_9f8e7d6c5b4a39281706", "/reset-password/(redacted)", id="token-segment"),
        pytest.param("/order/3f2b8c1e-4a5b-4c6d-8e9f-0a1b2c3d4e5f/done", "/order/(redacted)/done", id="uuid-segment"),
        pytest.param("https://evil.example/path?email=dan@example.com", "/path", id="full-url"),
        pytest.param("//evil.example", "/", id="host-only"),
        pytest.param("/summer-sale-2026-collection-launch/item-0042", "/summer-sale-2026-collection-launch/item-0042", id="slug-kept"),
        pytest.param("/caf%C3%A9/menu", "/café/menu", id="decoded-once"),
        pytest.param("(not set)", "(not set)", id="placeholder"),
    ],
)
def test_url_path_keeps_only_safe_path(raw: str, expected: str) -> None:
    assert TRANSFORMS["url_path"](raw, field("url_path")) == expected


def test_url_path_counts_redacted_segments() -> None:
    assert cut_url("/a/jane@example.com/tok_9f8e7d6c5b4a39281706?x=1") == ("/a/(redacted)/(redacted)", 2)
