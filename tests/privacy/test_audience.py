"""Ad-platform audience hashes: each platform's normalisation, then unkeyed SHA-256."""

from __future__ import annotations

import hashlib
import typing as t

import pytest

from privacy.audience import (
    google_email,
    google_email_hash,
    google_phone,
    google_phone_hash,
    meta_email,
    meta_email_hash,
    meta_phone,
    meta_phone_hash,
)

#: SHA-256 of "jane.doe@example.com", computed once with the standard library.
PINNED_JANE_DOE = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_meta_email_known_answer() -> None:
    assert meta_email_hash("  Jane.Doe@Example.COM ") == sha256_hex("jane.doe@example.com")


def test_meta_email_pinned_digest() -> None:
    assert meta_email_hash(" JANE.DOE@example.com") == PINNED_JANE_DOE


def test_google_email_known_answers() -> None:
    assert google_email_hash(" Jane.Doe+Promo@GMail.com ") == sha256_hex("janedoe+promo@gmail.com")
    assert google_email_hash("j.a.n.e@googlemail.com") == sha256_hex("jane@googlemail.com")
    assert google_email_hash("Jane.Doe@Example.COM") == sha256_hex("jane.doe@example.com")


def test_gmail_dots_only_for_google() -> None:
    assert meta_email("Jane.Doe@gmail.com") == "jane.doe@gmail.com"
    assert google_email("Jane.Doe@gmail.com") == "janedoe@gmail.com"
    assert google_email("jane.doe@gmail.com.evil.example") == "jane.doe@gmail.com.evil.example"


@pytest.mark.parametrize(
    ("value", "region", "meta", "google"),
    [
        ("+1 (650) 555-1212", "US", "16505551212", "+16505551212"),
        ("650.555.1212", "US", "16505551212", "+16505551212"),
        ("(212) 565-0000", "US", "12125650000", "+12125650000"),
        ("020 7946 0958", "GB", "442079460958", "+442079460958"),
        ("07911 123456", "GB", "447911123456", "+447911123456"),
        ("+44 (0)7911 123456", "US", "447911123456", "+447911123456"),
        ("06 12 34 56 78", "FR", "33612345678", "+33612345678"),
        (16505551212, "US", "16505551212", "+16505551212"),
    ],
)
def test_phone_known_answers(value: t.Any, region: str, meta: str, google: str) -> None:
    assert meta_phone(value, region) == meta
    assert google_phone(value, region) == google
    assert meta_phone_hash(value, region) == sha256_hex(meta)
    assert google_phone_hash(value, region) == sha256_hex(google)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "not an email",
        "jane@",
        "@example.com",
        "jane@localhost",
        "a b@example.com",
        "a\ud800@example.com",
        42,
        ["jane@example.com"],
    ],
)
def test_email_not_normalisable(value: t.Any) -> None:
    assert meta_email_hash(value) is None
    assert google_email_hash(value) is None


@pytest.mark.parametrize("value", [None, "", "call me", "12", "+1 23", True, 4.5, "+999 1234 5678"])
def test_phone_not_normalisable(value: t.Any) -> None:
    assert meta_phone_hash(value, "US") is None
    assert google_phone_hash(value, "US") is None


def test_unknown_region_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown phone region 'XX'"):
        google_phone_hash("650 555 1212", "XX")


def test_hashes_are_lower_hex() -> None:
    digests = [
        meta_email_hash("a@example.com"),
        google_email_hash("a@example.com"),
        meta_phone_hash("+16505551212", "US"),
        google_phone_hash("+16505551212", "US"),
    ]

    for digest in digests:
        assert digest is not None
        assert len(digest) == 64
        assert digest == digest.lower()
        int(digest, 16)
