"""Unkeyed SHA-256 hashes for ad-platform audience uploads (Meta, Google).

These hashes are the same for everyone, so they link a person across
companies and can be reversed with a list of addresses. Compute them only while
building an export, from values read at that moment, and never store them.

Normalisation follows each platform's published rules:

- Meta Conversions API and Custom Audiences: e-mail trimmed and lower-cased.
  Phone as digits only with the country code, without `+` or a trunk-prefix
  zero ("16505551212").
- Google Ads enhanced conversions and Customer Match: e-mail trimmed and
  lower-cased. For gmail.com and googlemail.com the dots are removed from the
  local part, but a `+tag` stays. Phone in E.164 with the `+` ("+12125650000").
"""

from __future__ import annotations

import hashlib
import typing as t
import unicodedata

import phonenumbers

from privacy.pseudonyms import normalise_email, validate_phone_region
from privacy.value_patterns import is_email

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def meta_email_hash(value: t.Any) -> str | None:
    """Return the SHA-256 hex of a Meta-normalised e-mail, or None when the value is not an e-mail."""
    return _sha256(meta_email(value))


def meta_phone_hash(value: t.Any, default_region: str) -> str | None:
    """Return the SHA-256 hex of a Meta-normalised phone, or None when the value is not a possible number."""
    return _sha256(meta_phone(value, default_region))


def google_email_hash(value: t.Any) -> str | None:
    """Return the SHA-256 hex of a Google-normalised e-mail, or None when the value is not an e-mail."""
    return _sha256(google_email(value))


def google_phone_hash(value: t.Any, default_region: str) -> str | None:
    """Return the SHA-256 hex of a Google-normalised phone, or None when the value is not a possible number."""
    return _sha256(google_phone(value, default_region))


def meta_email(value: t.Any) -> str | None:
    """Return the e-mail trimmed and lower-cased (after NFKC), or None when it is not an e-mail."""
    if not isinstance(value, str):
        return None
    text = normalise_email(value)
    return text if is_email(text) else None


def google_email(value: t.Any) -> str | None:
    """Return the e-mail as Meta normalises it, with the dots of a Gmail local part removed."""
    text = meta_email(value)
    if text is None:
        return None

    local, _, domain = text.rpartition("@")
    if domain in GMAIL_DOMAINS:
        return f"{local.replace('.', '')}@{domain}"
    return text


def meta_phone(value: t.Any, default_region: str) -> str | None:
    """Return the phone's E.164 digits without the `+` ("16505551212"), or None."""
    e164 = google_phone(value, default_region)
    return e164[1:] if e164 is not None else None


def google_phone(value: t.Any, default_region: str) -> str | None:
    """Return the phone in E.164 ("+12125650000"), or None when it does not parse to a possible number."""
    validate_phone_region(default_region)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None

    text = unicodedata.normalize("NFKC", str(value)).strip()
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _sha256(text: str | None) -> str | None:
    if text is None:
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
