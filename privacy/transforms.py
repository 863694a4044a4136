"""Generalising transforms: keep a coarse part of an IP, a birth date or a postcode, drop the rest.

Each function returns None for a value it cannot read, so the mapper drops the
value instead of passing it through.
"""

from __future__ import annotations

import ipaddress
import re
import typing as t
import unicodedata
from datetime import date, datetime

from privacy.field_names import ends_with, name_words

IPV4_PREFIX = 24
IPV6_PREFIX = 48

# Outward code and inward code, which is always digit, letter, letter ("GIR 0AA" is Girobank's).
_UK_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?|GIR) ?([0-9][A-Z]{2})")
# Routing key ("D02", or the special "D6W") and a 4-character unique identifier.
_IE_EIRCODE = re.compile(r"([AC-FHKNPRTV-Y][0-9]{2}|D6W) ?([0-9AC-FHKNPRTV-Y]{4})")
# Forward sortation area (letter, digit, letter) and local delivery unit (digit, letter, digit).
_CA_POSTCODE = re.compile(r"([A-Z][0-9][A-Z]) ?([0-9][A-Z][0-9])")
_NL_POSTCODE = re.compile(r"([1-9][0-9]{3}) ?([A-Z]{2})")
# Digit groups joined by at most one dash or space: US ZIP and ZIP+4, DE, FR, JP, PL, ...
_DIGIT_POSTCODE = re.compile(r"[0-9]+(?:[- ][0-9]+)?")

_DAY_FIRST_OR_MONTH_FIRST = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})")
_YEAR = re.compile(r"[0-9]{4}")

_POSTCODE_NAMES = (("postcode",), ("postal", "code"), ("post", "code"), ("zip",), ("zip", "code"), ("zipcode",))


def truncate_ip(value: t.Any) -> str | None:
    """Return the network address of an IP: IPv4 /24 ("203.0.113.0"), IPv6 /48 ("2001:db8:abcd::").

    An IPv4-mapped IPv6 address (`::ffff:203.0.113.77`) is truncated as IPv4,
    and a zone (`%eth0`) is dropped. Anything that is not a string holding one
    address, surrounding whitespace aside, returns None.
    """
    if not isinstance(value, str):
        return None

    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None

    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Network((int(address), IPV4_PREFIX), strict=False).network_address)
    return str(ipaddress.IPv6Network((int(address), IPV6_PREFIX), strict=False).network_address)


def generalize_date_of_birth(value: t.Any) -> int | None:
    """Return the year of a birth date, or None when the year cannot be read without guessing.

    Accepted: `date` and `datetime` objects, ISO 8601 text (`1990-05-17`,
    `19900517`, `1990-05-17T10:00:00Z`, week dates) and a bare year `1990`.
    Also accepted are `17/05/1990` and `05/17/1990` (or with `.` or `-`). Their
    year is certain whichever of day and month comes first, provided one
    reading is a real date.
    """
    if isinstance(value, date):  # datetime is a subclass of date
        return value.year
    if not isinstance(value, str):
        return None

    text = value.strip()
    if _YEAR.fullmatch(text):
        return int(text)
    return _iso_year(text) or _slashed_year(text)


def _iso_year(text: str) -> int | None:
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return parse(text).year
        except ValueError:
            continue
    return None


def _slashed_year(text: str) -> int | None:
    match = _DAY_FIRST_OR_MONTH_FIRST.fullmatch(text)
    if match is None:
        return None

    first, second, year = (int(part) for part in match.groups())
    for month, day in ((second, first), (first, second)):
        try:
            return date(year, month, day).year
        except ValueError:
            continue
    return None


def generalize_postcode(value: t.Any) -> str | None:
    """Return the coarse part of a postcode, upper-case, or None for anything else.

    Rules, tried in this order on the trimmed, upper-cased text (NFKC):

    - UK: outward code, with or without the space ("SW1A 1AA", "sw1a1aa" -> "SW1A");
    - Ireland (Eircode): routing key ("D02 X285" -> "D02");
    - Canada: forward sortation area ("K1A 0B1" -> "K1A");
    - Netherlands: the four digits ("1234 AB" -> "1234");
    - all-digit codes of 4 to 10 digits, with at most one dash or space (US ZIP
      and ZIP+4, DE, FR, ES, IT, JP, PL, ...): the first 3 digits ("94105-1234" -> "941").

    Non-strings return None, because an integer ZIP has already lost its leading zeros.
    """
    if not isinstance(value, str):
        return None

    text = " ".join(unicodedata.normalize("NFKC", value).upper().split())
    for pattern in (_UK_POSTCODE, _IE_EIRCODE, _CA_POSTCODE, _NL_POSTCODE):
        match = pattern.fullmatch(text)
        if match is not None:
            return match.group(1)

    if _DIGIT_POSTCODE.fullmatch(text):
        digits = text.replace("-", "").replace(" ", "")
        if 4 <= len(digits) <= 10:
            return digits[:3]
    return None


def is_postcode_field(name: str) -> bool:
    """Return whether a field name ends with a postcode word: `zip`, `postal_code`, `billingAddressPostcode`, ...

    Words are matched whole, so `zipper` and `zip_archive_url` are not postcodes.
    """
    words = name_words(name)
    return any(ends_with(words, tail) for tail in _POSTCODE_NAMES)
