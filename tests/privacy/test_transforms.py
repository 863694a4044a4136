"""Generalising transforms: IP truncation, birth years, postcode outward codes, postcode field names."""

from __future__ import annotations

import ipaddress
import typing as t
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.transforms import (
    generalize_date_of_birth,
    generalize_postcode,
    is_postcode_field,
    truncate_ip,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.0", "203.0.113.0"),
        (" 198.51.100.255\n", "198.51.100.0"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
        ("2001:DB8:ABCD:FFFF:1:2:3:4", "2001:db8:abcd::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
        ("fe80::1:2:3%eth0", "fe80::"),
        ("::1", "::"),
    ],
)
def test_truncate_ip_known_values(value: str, expected: str) -> None:
    assert truncate_ip(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "not an ip",
        "203.0.113",
        "203.0.113.256",
        "01.2.3.4",
        "1.2.3.4/24",
        "1.2.3.4:80",
        "[::1]",
        "1.2.3.4\x00",
        "a\ud800",
        3405803853,
        b"1.2.3.4",
        ["1.2.3.4"],
    ],
)
def test_truncate_ip_drops_unreadable(value: t.Any) -> None:
    assert truncate_ip(value) is None


@settings(deadline=None)
@given(st.ip_addresses(v=4))
def test_truncate_ipv4_keeps_only_24_bits(address: ipaddress.IPv4Address) -> None:
    truncated = ipaddress.IPv4Address(t.cast(str, truncate_ip(str(address))))

    assert int(truncated) == int(address) & 0xFFFFFF00


@settings(deadline=None)
@given(st.ip_addresses(v=6))
def test_truncate_ipv6_keeps_only_48_bits(address: ipaddress.IPv6Address) -> None:
    result = truncate_ip(str(address))

    assert result is not None
    if address.ipv4_mapped is not None:
        assert int(ipaddress.IPv4Address(result)) == int(address.ipv4_mapped) & 0xFFFFFF00
    else:
        assert int(ipaddress.IPv6Address(result)) == int(address) >> 80 << 80


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1990-05-17", 1990),
        ("19900517", 1990),
        (" 1990-05-17 ", 1990),
        ("1990-05-17T10:00:00Z", 1990),
        ("1990-05-17 23:30:00+02:00", 1990),
        ("1990-W20-1", 1990),
        ("1990", 1990),
        ("17/05/1990", 1990),
        ("05/17/1990", 1990),
        ("1.2.1975", 1975),
        (date(1984, 2, 29), 1984),
        (datetime(2001, 1, 1, tzinfo=UTC), 2001),
    ],
)
def test_date_of_birth_year(value: t.Any, expected: int) -> None:
    assert generalize_date_of_birth(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "yesterday",
        "1990-13-01",
        "1990-02-30",
        "0000-00-00",
        "31/31/1990",
        "17/05/90",
        "May 17, 1990",
        "199",
        19900517,
        True,
        "1990-05-17\x00",
    ],
)
def test_date_of_birth_unreadable(value: t.Any) -> None:
    assert generalize_date_of_birth(value) is None


@settings(deadline=None)
@given(st.dates())
def test_date_of_birth_iso_round_trip(day: date) -> None:
    assert generalize_date_of_birth(day.isoformat()) == day.year
    assert generalize_date_of_birth(f"{day.year:04d}{day.month:02d}{day.day:02d}") == day.year


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SW1A 1AA", "SW1A"),
        ("sw1a1aa", "SW1A"),
        (" ec1a  1bb ", "EC1A"),
        ("M1 1AE", "M1"),
        ("B33 8TH", "B33"),
        ("GIR 0AA", "GIR"),
        ("D02 X285", "D02"),
        ("A65F4E2", "A65"),
        ("K1A 0B1", "K1A"),
        ("k1a0b1", "K1A"),
        ("1234 AB", "1234"),
        ("1234ab", "1234"),
        ("94105", "941"),
        ("02134", "021"),
        ("94105-1234", "941"),
        ("10115", "101"),
        ("75008", "750"),
        ("100-0001", "100"),
        ("1010", "101"),
        ("\uff19\uff14\uff11\uff10\uff15", "941"),  # fullwidth digits
    ],
)
def test_postcode_outward_part(value: str, expected: str) -> None:
    assert generalize_postcode(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "123",
        "12345678901",
        "94105--1234",
        "SW1A 1A",
        "ABC",
        "Main Street 1",
        "1234 ABC",
        "SE-123 45",
        94105,
        "SW1A\x001AA",
    ],
)
def test_postcode_unreadable(value: t.Any) -> None:
    assert generalize_postcode(value) is None


@pytest.mark.parametrize(
    "name",
    [
        "postcode",
        "postal_code",
        "zip",
        "zip_code",
        "zipcode",
        "post_code",
        "billing_address_postal_code",
        "address_postal_code",
        "postalCode",
        "ShippingZIP",
        "billingAddressPostcode",
    ],
)
def test_postcode_field_names(name: str) -> None:
    assert is_postcode_field(name)


@pytest.mark.parametrize(
    "name", ["zipper", "zip_archive_url", "postal_code_count", "code", "postal", "post", "gzip", "campaign_name", ""]
)
def test_not_postcode_field_names(name: str) -> None:
    assert not is_postcode_field(name)


@settings(deadline=None)
@given(st.text(st.characters(exclude_categories=())))  # surrogates included
def test_transforms_never_raise(value: str) -> None:
    assert truncate_ip(value) is None or isinstance(truncate_ip(value), str)
    assert generalize_date_of_birth(value) is None or isinstance(generalize_date_of_birth(value), int)
    assert generalize_postcode(value) is None or isinstance(generalize_postcode(value), str)
