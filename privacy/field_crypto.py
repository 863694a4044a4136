"""Reversible field encryption for the `encrypt` action: AES-256-GCM tokens with a blind index.

A token reads `spl1e.<blind index>.<payload>`:

- the blind index is the tenant's keyed pseudonym of the value (64 hex), so
  erase and export find a subject's values without decrypting every token;
- the payload is base64url without padding of nonce (12 random bytes),
  ciphertext and the 16-byte GCM tag.

The plaintext is the value's JSON text, so strings, integers, booleans, lists,
objects and exact decimals come back with their type. The associated data binds
a format tag, the tenant, source, stream, field and the blind index, so a token
copied to another tenant or field, or given another blind index, fails to
decrypt. No error message carries a token, a value or key bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import typing as t
from decimal import Decimal

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if t.TYPE_CHECKING:
    from privacy.pseudonyms import Pseudonymizer

FORMAT_TAG = "spendlake-field-v1"
TOKEN_PREFIX = "spl1e"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

#: A whole token, for `.fullmatch` or a JSON Schema `pattern`. The payload contains at least a nonce, a tag and one byte (39 characters).
FIELD_TOKEN_PATTERN = re.compile(r"^spl1e\.([0-9a-f]{64})\.([A-Za-z0-9_-]{39,})$")

# Numbers with a fraction arrive as Decimal from the Singer readers, so write them as exact JSON numbers.
_ENCODER = msgspec.json.Encoder(decimal_format="number")
# Types a decoded Singer record holds; msgspec would also write bytes or dates, but they would come back as strings.
_JSON_TYPES = (str, int, float, Decimal, list, dict)


class FieldEncryptionError(ValueError):
    """Raised when a value cannot be encrypted. The message names the field and the value's type, never the value."""


class FieldDecryptionError(ValueError):
    """Raised when a token cannot be decrypted. The message names the field and the likely cause, never the token."""


def is_field_token(text: t.Any) -> bool:
    """Return whether `text` is a whole, well-formed field token (no check of its tag)."""
    return isinstance(text, str) and FIELD_TOKEN_PATTERN.fullmatch(text) is not None


def blind_index(token: str) -> str:
    """Return the blind index (the value's 64-hex pseudonym) of a token, without decrypting it."""
    match = FIELD_TOKEN_PATTERN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        msg = "The text is not a field token; expected 'spl1e.<64 hex>.<base64url>'."
        raise ValueError(msg)
    return match.group(1)


class FieldCipher:
    """Encrypt and decrypt field values under one tenant's field key."""

    def __init__(self, key: bytes, tenant: str, pseudonymizer: Pseudonymizer) -> None:
        if len(key) != KEY_BYTES:
            msg = f"The field encryption key must be {KEY_BYTES} bytes (AES-256)."
            raise ValueError(msg)
        _check_name("tenant", tenant)
        self._aead = AESGCM(key)
        self._tenant = tenant
        self._pseudonymizer = pseudonymizer

    def __repr__(self) -> str:
        return f"FieldCipher(tenant={self._tenant!r})"

    def encrypt(self, source: str, stream: str, field: str, pii_class: str, value: t.Any) -> str | None:
        """Return the token of `value` for this field, or None for None; each call draws a new nonce."""
        if value is None:
            return None

        place = _place(source, stream, field)
        plaintext = _encode_plaintext(value, place)
        # pseudonym() returns None only for None, which returned above.
        index = t.cast(str, self._pseudonymizer.pseudonym(pii_class, value))

        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, self._associated_data(source, stream, field, index))
        payload = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{TOKEN_PREFIX}.{index}.{payload}"

    def decrypt(self, source: str, stream: str, field: str, token: str | None) -> t.Any:
        """Return the value sealed in `token` for this field, or None for None."""
        if token is None:
            return None

        place = _place(source, stream, field)
        match = FIELD_TOKEN_PATTERN.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            msg = (
                f"The value of {place} is not a field token (expected 'spl1e.<64 hex>.<base64url>'); "
                "it was never encrypted or its text is damaged."
            )
            raise FieldDecryptionError(msg)

        index, payload = match.groups()
        sealed = _decode_payload(payload, place)
        try:
            plaintext = self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._associated_data(source, stream, field, index)
            )
        except InvalidTag:
            msg = (
                f"The token in {place} failed authentication: it was encrypted under another tenant's key, "
                "moved from another source, stream or field, or its text is damaged."
            )
            raise FieldDecryptionError(msg) from None
        return _decode_plaintext(plaintext, place)

    def _associated_data(self, source: str, stream: str, field: str, index: str) -> bytes:
        parts = (FORMAT_TAG, self._tenant, source, stream, field, index)
        return "\x00".join(parts).encode("utf-8", "surrogatepass")


def _place(source: str, stream: str, field: str) -> str:
    for role, name in (("source", source), ("stream", stream), ("field", field)):
        _check_name(role, name)
    return f"{source}.{stream}.{field}"


def _check_name(role: str, name: t.Any) -> None:
    # NUL separates the parts of the associated data, so a name holding one could forge another's.
    if not isinstance(name, str) or not name or "\x00" in name:
        msg = f"The {role} name must be a non-empty string without NUL characters."
        raise ValueError(msg)


def _encode_plaintext(value: t.Any, place: str) -> bytes:
    if not isinstance(value, _JSON_TYPES):
        kind = type(value).__name__
        msg = f"The value of {place} (type {kind}) is not a JSON value; send a string, number, boolean, list or object."
        raise FieldEncryptionError(msg)
    if isinstance(value, float) and not math.isfinite(value):
        msg = f"The value of {place} is a non-finite float, which JSON cannot hold; send a finite number or null."
        raise FieldEncryptionError(msg)

    try:
        return _ENCODER.encode(value)
    except UnicodeEncodeError:
        pass
    except (TypeError, ValueError):
        msg = f"The value of {place} (type {type(value).__name__}) cannot be written as JSON; send a JSON value."
        raise FieldEncryptionError(msg) from None

    # msgspec cannot write a lone UTF-16 surrogate, but `json` escapes it as \udXXX and reads it back.
    try:
        return json.dumps(value, ensure_ascii=True, default=_decimal_as_text).encode("ascii")
    except (TypeError, ValueError):
        msg = f"The value of {place} (type {type(value).__name__}) cannot be written as JSON; send a JSON value."
        raise FieldEncryptionError(msg) from None


def _decimal_as_text(value: t.Any) -> str:
    # NOTE: only on the lone-surrogate path, a Decimal nested in a list or object comes back as a string.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def _decode_payload(payload: str, place: str) -> bytes:
    try:
        sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        sealed = b""
    if len(sealed) <= NONCE_BYTES + TAG_BYTES:
        msg = f"The token in {place} has a damaged payload; restore the text as it was written."
        raise FieldDecryptionError(msg)
    return sealed


def _decode_plaintext(plaintext: bytes, place: str) -> t.Any:
    try:
        return json.loads(plaintext.decode("utf-8", "surrogatepass"), parse_float=Decimal)
    except ValueError:
        msg = f"The token in {place} decrypted to text that is not JSON; it was not written by this format."
        raise FieldDecryptionError(msg) from None
