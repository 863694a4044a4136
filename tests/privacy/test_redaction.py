"""Free-text redaction: e-mails, IPs, card numbers and phones never survive, other text does."""

from __future__ import annotations

import typing as t

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from privacy.redaction import redact_text
from privacy.value_patterns import luhn_valid

SEPARATORS = [" ", "\n", "\t", ", ", "; ", " (", ") ", ": ", " - ", ". "]
PHONE_FORMATS = [
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.NATIONAL,
]
PHONE_TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Contact Jane.Doe@Example.COM today", "Contact [email] today"),
        ("mail: jane+promo@mail.example.co.uk.", "mail: [email]."),
        ("élodie@exemple.fr, ok", "[email], ok"),
        ("call +1 415-555-0123 now", "call [phone] now"),
        ("call (415) 555-0123 now", "call [phone] now"),
        ("UK office +44 20 7946 0958.", "UK office [phone]."),
        ("from 203.0.113.77 at 10:30", "from [ip] at 10:30"),
        ("v6 2001:db8:abcd:12::1, done", "v6 [ip], done"),
        ("ip:2001:db8::1", "ip:[ip]"),
        ("loopback ::1.", "loopback [ip]."),
        ("mapped ::ffff:203.0.113.77 here", "mapped [ip] here"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [card] exp 12/29"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("card 378282246310005!", "card [card]!"),
        ("ref 12 4111 1111 1111 1111", "ref 12 [card]"),
    ],
)
def test_redact_known_texts(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Spend 1234.56 EUR on 2024-01-15 for campaign Summer Sale",
        "Version 1.2.3 shipped at 10:30:45",
        "card 4111 1111 1111 1112 fails Luhn",
        "not an ip 999.1.1.1",
        "Jane Doe lives at 10 Downing Street",
        "",
    ],
)
def test_redact_keeps_other_text(text: str) -> None:
    assert redact_text(text) == text


def test_redact_national_format_uses_region() -> None:
    assert redact_text("ring 020 7946 0958 please", default_region="GB") == "ring [phone] please"
    assert redact_text("ring 06 12 34 56 78 please", default_region="FR") == "ring [phone] please"


def test_redact_unknown_region_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown phone region 'us'"):
        redact_text("call 415 555 0123", default_region="us")


def test_redact_non_strings() -> None:
    assert redact_text(None) is None
    assert redact_text(12345) == "12345"
    assert redact_text(4111111111111111) == "[card]"


@pytest.mark.parametrize(
    "text",
    ["nul\x00jane@example.com\x00", "lone \ud800 surrogate +1 415 555 0123", "😀👩‍💻 203.0.113.7 😀", "\U0010ffff" * 3],
)
def test_redact_odd_unicode(text: str) -> None:
    result = redact_text(text)

    assert result is not None
    assert "jane@example.com" not in result
    assert "415 555 0123" not in result
    assert "203.0.113.7" not in result


def luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("no Luhn check digit")  # pragma: no cover - one digit always fits


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    digits = luhn_complete(draw(st.text("0123456789", min_size=length - 1, max_size=length - 1)))
    separator = draw(st.sampled_from(["", " ", "-"]))
    return separator.join(digits[start : start + 4] for start in range(0, len(digits), 4))


@st.composite
def phone_numbers(draw: st.DrawFn) -> tuple[str, str, bool]:
    """Draw a valid number near a region's example number: its text, its region, whether it is national format."""
    region = draw(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(PHONE_TYPES)))
    assume(example is not None)
    national = str(t.cast(phonenumbers.PhoneNumber, example).national_number)
    tail = draw(st.text("0123456789", min_size=2, max_size=2))
    number = phonenumbers.parse(f"+{t.cast(phonenumbers.PhoneNumber, example).country_code}{national[:-2]}{tail}")
    assume(phonenumbers.is_valid_number(number))
    number_format = draw(st.sampled_from(PHONE_FORMATS))
    return (
        phonenumbers.format_number(number, number_format),
        region,
        number_format == phonenumbers.PhoneNumberFormat.NATIONAL,
    )


surroundings = st.text(max_size=40)
separators = st.sampled_from(SEPARATORS)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    before=surroundings,
    after=surroundings,
    left=separators,
    right=separators,
    kind=st.sampled_from(["email", "ip", "card", "phone"]),
    data=st.data(),
)
def test_generated_values_never_survive(
    before: str, after: str, left: str, right: str, kind: str, data: st.DataObject
) -> None:
    region = "US"
    if kind == "email":
        secret = data.draw(st.emails())
    elif kind == "ip":
        secret = str(data.draw(st.ip_addresses()))
    elif kind == "card":
        secret = data.draw(card_numbers())
    else:
        secret, region, national = data.draw(phone_numbers())
        # A digit one space away continues a national number ("312 300 0"), so no reader can split them.
        assume(not national or not (before[-1:].isdecimal() or after[:1].isdecimal() or before.endswith("+")))

    result = redact_text(before + left + secret + right + after, default_region=region)

    assert result is not None
    assert secret not in result


@settings(deadline=None)
@given(st.text(st.characters(exclude_categories=())))  # surrogates included
def test_redact_never_raises(text: str) -> None:
    assert isinstance(redact_text(text), str)
