"""Recognise personal values in text: e-mail addresses, payment card numbers and IP addresses.

Shared by the free-text redactor and the value detector. Phone numbers are
left to `phonenumbers`, IP validity to `ipaddress`.
"""

from __future__ import annotations

import ipaddress
import re

CARD_MIN_DIGITS = 13
CARD_MAX_DIGITS = 19

# The dot-atom form of RFC 5322 for the local part, with Unicode letters allowed (RFC 6531);
# quoted local parts and IP-literal domains are not matched.
_LOCAL_CHARACTER = r"[\w!#$%&'*+/=?^`{|}~-]"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
EMAIL_PATTERN = re.compile(rf"{_LOCAL_CHARACTER}+(?:\.{_LOCAL_CHARACTER}+)*@{_LABEL}(?:\.{_LABEL})+")
# For searching text: at most 64 local-part characters (RFC 5321), dots anywhere, so that the
# search stays linear in the text length and stray dots next to an address are covered too.
EMAIL_SEARCH_PATTERN = re.compile(rf"[\w!#$%&'*+/=?^`{{|}}~.-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")

# Digit groups separated by one space or dash; a card number is a run of such groups.
DIGIT_GROUPS_PATTERN = re.compile(r"(?<![0-9])[0-9]+(?:[ -][0-9]+)*(?![0-9])")
_DIGIT_GROUP = re.compile(r"[0-9]+")

IPV4_CANDIDATE_PATTERN = re.compile(r"(?<![0-9])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9])")
# Hex digits, colons and dots with at least two colons, and an optional zone.
# The lookbehind starts a match only at the start of a run, which keeps the search linear.
IPV6_CANDIDATE_PATTERN = re.compile(
    r"(?<![0-9A-Fa-f:.])[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.-]+)?"
)


def is_email(text: str) -> bool:
    """Return whether the whole text is one e-mail address."""
    return EMAIL_PATTERN.fullmatch(text) is not None


def luhn_valid(digits: str) -> bool:
    """Return whether a string of ASCII digits passes the Luhn checksum (ISO/IEC 7812-1)."""
    total = 0
    for position, character in enumerate(reversed(digits)):
        digit = ord(character) - 48
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def is_card_number(text: str) -> bool:
    """Return whether the whole text is 13 to 19 digits, in groups split by spaces or dashes or not, passing Luhn."""
    if DIGIT_GROUPS_PATTERN.fullmatch(text) is None:
        return False
    digits = text.replace(" ", "").replace("-", "")
    return CARD_MIN_DIGITS <= len(digits) <= CARD_MAX_DIGITS and luhn_valid(digits)


def card_spans(text: str) -> list[tuple[int, int]]:
    """Return the (start, end) spans of card numbers in text, merged where they overlap.

    Inside each run of digit groups every window of whole groups holding 13 to
    19 digits is checked, so a card next to other numbers ("ref 12 4111 1111
    1111 1111") is still found. The union of the Luhn-valid windows is returned.
    """
    spans: list[tuple[int, int]] = []
    for run in DIGIT_GROUPS_PATTERN.finditer(text):
        groups = [
            (run.start() + group.start(), run.start() + group.end()) for group in _DIGIT_GROUP.finditer(run.group())
        ]
        spans.extend(_card_windows(text, groups))
    return _merge(spans)


def _card_windows(text: str, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    windows: list[tuple[int, int]] = []
    for first in range(len(groups)):
        digits = ""
        for last in range(first, len(groups)):
            digits += text[groups[last][0] : groups[last][1]]
            if len(digits) > CARD_MAX_DIGITS:
                break
            if len(digits) >= CARD_MIN_DIGITS and luhn_valid(digits):
                windows.append((groups[first][0], groups[last][1]))
    return windows


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def ip_address_span(candidate: str) -> tuple[int, int] | None:
    """Return the span of the part of a candidate that `ipaddress` accepts once edge punctuation is trimmed, or None."""
    for start, end in _trimmed_spans(candidate):
        try:
            ipaddress.ip_address(candidate[start:end])
        except ValueError:
            continue
        return start, end
    return None


def _trimmed_spans(candidate: str) -> list[tuple[int, int]]:
    # Longest span first. A colon or dot at either end may be punctuation ("ip:2001:db8::1", "::1: blocked", "at ::1.");
    # `ipaddress` decides which reading is an address.
    end = len(candidate)
    dotless = len(candidate.rstrip("."))
    starts = (0, 1) if candidate.startswith(":") else (0,)
    ends = sorted({end, dotless, end - 1 if candidate.endswith(":") else end}, reverse=True)
    return sorted(((start, stop) for start in starts for stop in ends), key=lambda span: span[0] - span[1])
