"""Keyed pseudonyms: normalisation, keying and class separation."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.pseudonyms import Pseudonymizer, normalise_phone

KEY = bytes(range(32))


def test_known_answer_for_email() -> None:
    expected = hmac.new(KEY, b"email\x00jane@example.com", hashlib.sha256).hexdigest()

    assert Pseudonymizer(KEY).pseudonym("email", "  Jane@Example.COM ") == expected


def test_phone_variants_share_pseudonym() -> None:
    pseudonymizer = Pseudonymizer(KEY, default_phone_region="US")

    variants = ["+1 415-555-0123", "(415) 555-0123", "415.555.0123", "+14155550123"]
    assert len({pseudonymizer.pseudonym("phone", v) for v in variants}) == 1
    assert normalise_phone("(415) 555-0123", "US") == "+14155550123"


def test_unparsable_phone_still_hashed() -> None:
    assert normalise_phone("ext. 12", "US") == "12"
    assert len(Pseudonymizer(KEY).pseudonym("phone", "ext. 12") or "") == 64


def test_classes_do_not_collide() -> None:
    pseudonymizer = Pseudonymizer(KEY)

    assert pseudonymizer.pseudonym("email", "12345") != pseudonymizer.pseudonym("identifier", "12345")


def test_other_key_gives_other_pseudonym() -> None:
    assert Pseudonymizer(KEY).pseudonym("email", "a@example.com") != Pseudonymizer(bytes(32)).pseudonym("email", "a@example.com")


def test_none_stays_none() -> None:
    assert Pseudonymizer(KEY).pseudonym("email", None) is None


def test_short_key_rejected() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonymizer(b"short")


@settings(deadline=None)  # the shared 2-core machine can stall one example past the default deadline
@given(st.text())
def test_any_text_hashes_to_hex(value: str) -> None:
    digest = Pseudonymizer(KEY).pseudonym("identifier", value)

    assert digest is not None
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_lone_surrogate_and_nul_do_not_crash() -> None:
    pseudonymizer = Pseudonymizer(KEY)

    assert len(pseudonymizer.pseudonym("email", "a\ud800b@example.com") or "") == 64
    assert len(pseudonymizer.pseudonym("identifier", "id\x00with-nul") or "") == 64
    assert pseudonymizer.pseudonym("identifier", 12345) == pseudonymizer.pseudonym("identifier", "12345")
