"""Keyed pseudonyms: HMAC-SHA256 over a normalised value, one key per tenant.

An unkeyed hash of an email can be reversed with a list of addresses and links
a person across companies; a tenant key prevents both. The PII class is part of
the hashed message, so an email and a phone with equal text never collide.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import typing as t
import unicodedata

import phonenumbers

HASHED_CLASSES = ("email", "phone", "identifier")


def normalise_email(value: str) -> str:
    """Apply NFKC, trim and lower-case, so case and spacing variants hash alike."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def normalise_identifier(value: str) -> str:
    """Apply NFKC and trim; identifiers keep their case."""
    return unicodedata.normalize("NFKC", value).strip()


def normalise_name(value: str) -> str:
    """Apply NFKC, case-fold and collapse whitespace runs to one space, so "ÉLODIE  Dupont" equals "élodie dupont"."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    return " ".join(folded.split())


def validate_phone_region(region: str) -> str:
    """Return `region` if it is in phonenumbers' supported regions, else raise ValueError naming the expected form."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        msg = f"Unknown phone region {region!r}; use an ISO 3166 alpha-2 code in upper case, such as 'US' or 'GB'."
        raise ValueError(msg)
    return region


def normalise_phone(value: str, default_region: str) -> str:
    """Return E.164 (`+14155550123`) when the number parses, else its digits and a leading `+`."""
    text = unicodedata.normalize("NFKC", value).strip()
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    prefix = "+" if text.startswith("+") else ""
    return prefix + "".join(character for character in text if character.isdigit())


class Pseudonymizer:
    """Compute hex HMAC-SHA256 pseudonyms under one tenant's key."""

    def __init__(self, key: bytes, *, default_phone_region: str = "US") -> None:
        if len(key) < 32:
            msg = "The pseudonym key must be at least 32 bytes."
            raise ValueError(msg)
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self._default_region = default_phone_region
        # Customers recur across records, so recent pseudonyms are cached per instance.
        self._cached = functools.lru_cache(maxsize=65_536)(self._compute)

    def __repr__(self) -> str:
        return f"Pseudonymizer(default_phone_region={self._default_region!r})"

    def normalise(self, pii_class: str, value: t.Any) -> str:
        """Return the normalised text of a value for its PII class.

        Emails are lower-cased, phones become E.164 in the default region and
        names are case-folded. Every other class (identifier, address, ip,
        date_of_birth, free_text) gets NFKC and a trim only.
        """
        text = value if isinstance(value, str) else str(value)
        if pii_class == "email":
            return normalise_email(text)
        if pii_class == "phone":
            return normalise_phone(text, self._default_region)
        if pii_class == "name":
            return normalise_name(text)
        return normalise_identifier(text)

    def pseudonym(self, pii_class: str, value: t.Any) -> str | None:
        """Return the pseudonym of `value`, or None for None."""
        if value is None:
            return None
        return self._cached(pii_class, value if isinstance(value, str) else str(value))

    def _compute(self, pii_class: str, value: str) -> str:
        message = f"{pii_class}\x00{self.normalise(pii_class, value)}"
        digest = self._base.copy()
        digest.update(message.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()
