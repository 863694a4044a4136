"""Redact personal values inside free text: e-mail addresses, IP addresses, card numbers, phone numbers.

Names and street addresses inside text are NOT detected: "Jane Doe lives at
10 Downing Street" keeps both. Use `drop` or `encrypt` for free text that may
hold them.
"""

from __future__ import annotations

import re
import typing as t

import phonenumbers

from privacy.pseudonyms import validate_phone_region
from privacy.value_patterns import (
    EMAIL_SEARCH_PATTERN,
    IPV4_CANDIDATE_PATTERN,
    IPV6_CANDIDATE_PATTERN,
    card_spans,
    ip_address_span,
)

EMAIL_MARK = "[email]"
PHONE_MARK = "[phone]"
IP_MARK = "[ip]"
CARD_MARK = "[card]"

# POSSIBLE also matches numbers outside the ranges the metadata lists as assigned,
# at the price of also marking some other digit runs of phone length (order numbers).
PHONE_LENIENCY = phonenumbers.Leniency.POSSIBLE

# A "+" and what may follow it in a written international number; E.164 allows at most 15 digits.
_INTERNATIONAL_CANDIDATE = re.compile(r"\+[0-9][0-9 .()/-]*")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_E164_MAX_DIGITS = 15


def redact_text(value: t.Any, *, default_region: str = "US") -> str | None:
    """Return the text with e-mails, IPs, card numbers and phone numbers replaced by marks.

    Marks are `[email]`, `[ip]` (validated by `ipaddress`), `[card]` (13 to 19
    digits, with optional spaces or dashes, passing Luhn) and `[phone]`
    (`phonenumbers`, international formats and the national format of
    `default_region`). None stays None and other types are redacted as their
    text. Names and street addresses are NOT detected.

    Earlier steps remove what later ones would misread: the phone matcher,
    for one, reads digits inside e-mails, IPs and card numbers. Raises
    ValueError for an unknown `default_region`.
    """
    validate_phone_region(default_region)
    if value is None:
        return None

    text = value if isinstance(value, str) else str(value)
    text = EMAIL_SEARCH_PATTERN.sub(EMAIL_MARK, text)
    text = _redact_ips(text)
    text = _replace_spans(text, card_spans(text), CARD_MARK)
    return _redact_phones(text, default_region)


def _redact_ips(text: str) -> str:
    # IPv6 first, so the IPv4 part of "::ffff:192.0.2.1" is not taken on its own.
    for pattern in (IPV6_CANDIDATE_PATTERN, IPV4_CANDIDATE_PATTERN):
        spans = []
        for candidate in pattern.finditer(text):
            span = ip_address_span(candidate.group())
            if span is not None:
                spans.append((candidate.start() + span[0], candidate.start() + span[1]))
        text = _replace_spans(text, spans, IP_MARK)
    return text


def _redact_phones(text: str, default_region: str) -> str:
    spans = [
        (match.start, match.end)
        for match in phonenumbers.PhoneNumberMatcher(text, default_region, leniency=PHONE_LENIENCY)
    ]
    text = _replace_spans(text, spans, PHONE_MARK)
    return _replace_spans(text, _international_phone_spans(text), PHONE_MARK)


def _international_phone_spans(text: str) -> list[tuple[int, int]]:
    # The matcher rejects "+44 20 7946 0958 12" whole, because the trailing digits make the number too long.
    # Here the longest run of whole digit groups after the "+" that is a possible number is taken.
    spans = []
    for candidate in _INTERNATIONAL_CANDIDATE.finditer(text):
        group_ends = [candidate.start() + group.end() for group in _DIGIT_GROUP.finditer(candidate.group())]
        for end in reversed(group_ends):
            if _is_possible_international(text[candidate.start() : end]):
                spans.append((candidate.start(), end))
                break
    return spans


def _is_possible_international(text: str) -> bool:
    if sum(character.isdigit() for character in text) > _E164_MAX_DIGITS:
        return False
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return False


def _replace_spans(text: str, spans: list[tuple[int, int]], mark: str) -> str:
    if not spans:
        return text

    pieces: list[str] = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        pieces.append(mark)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
