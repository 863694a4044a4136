"""Value transforms of the policy actions, and the schema each action's output has.

A transform takes the raw JSON text of one value (`msgspec.Raw`) and returns the
value to emit. Only fields with a transforming action are decoded, so kept
fields travel as the bytes they arrived in.

Pseudonyms are cached by value, because customers recur across records. Each computed pseudonym and field token is checked against
its pattern before it is cached or emitted, so a value that is not the
action's output can never be written under that action.
"""

from __future__ import annotations

import decimal
import re
import typing as t

import msgspec

from mappers.pii.errors import MappingError
from privacy.field_crypto import FIELD_TOKEN_PATTERN, FieldCipher
from privacy.pseudonyms import Pseudonymizer
from privacy.redaction import redact_text
from privacy.transforms import generalize_date_of_birth, generalize_postcode, truncate_ip

Transform = t.Callable[[msgspec.Raw], t.Any]

KEEP = "keep"
DROP = "drop"
HMAC = "hmac"
ENCRYPT = "encrypt"
TRUNCATE_IP = "truncate_ip"
GENERALIZE = "generalize"
REDACT = "redact"

PSEUDONYM_PATTERN = re.compile(r"[0-9a-f]{64}")
#: Distinct values remembered per PII class before the cache starts afresh (an estimated 60 MB when full).
PSEUDONYM_CACHE_SIZE = 1 << 18
#: Classes whose pseudonyms (hmac values and encrypt blind indexes) locate an erased person.
ERASURE_CLASSES = frozenset({"email", "phone", "identifier"})

#: Numbers with a fraction are read as Decimal, as singer-sdk reads them, so encrypted values keep every digit.
_decode = msgspec.json.Decoder(float_hook=decimal.Decimal).decode
_SCHEMA_KEYWORDS_OF_INPUT = frozenset(
    {"type", "format", "enum", "const", "pattern", "maxLength", "minLength", "minimum", "maximum", "properties",
     "items", "additionalProperties", "required", "anyOf", "oneOf"}
)


class ActionOutputError(RuntimeError):
    """Raised when a transform produced something other than its action's output, which stops the run."""


class Transforms:
    """Build the transform of each action for one tenant: its pseudonymizer, field cipher and phone region."""

    def __init__(
        self,
        pseudonymizer: Pseudonymizer,
        *,
        phone_region: str,
        cipher_factory: t.Callable[[], FieldCipher],
    ) -> None:
        self._pseudonymizer = pseudonymizer
        self._phone_region = phone_region
        self._cipher_factory = cipher_factory
        self._cipher: FieldCipher | None = None
        self._caches: dict[str, dict[t.Any, str]] = {}

    def build(self, action: str, *, source: str, stream: str, field: str, pii_class: str | None) -> Transform:
        """Return the transform of a transforming action other than hmac (see `pseudonym_cache`) for one field."""
        if action == ENCRYPT:
            return self._encrypt(source, stream, field, t.cast("str", pii_class))
        if action == TRUNCATE_IP:
            return _decoded(truncate_ip)
        if action == GENERALIZE:
            return _decoded(generalize_date_of_birth if pii_class == "date_of_birth" else generalize_postcode)
        if action == REDACT:
            region = self._phone_region
            return _decoded(lambda value: redact_text(value, default_region=region))
        msg = f"Action {action!r} has no transform."
        raise ValueError(msg)

    def pseudonym_cache(self, pii_class: str, field: str) -> tuple[dict[t.Any, str], t.Callable[[t.Any], str]]:
        """Return the class's cache (decoded value to pseudonym) and the function that fills it on a miss.

        The record loop reads the cache itself, which saves a call per value on a hit. Values are
        text or integers, which never compare equal to each other, so they share one cache.
        """
        cache = self._caches.setdefault(pii_class, {})
        pseudonym = self._pseudonymizer.pseudonym

        def compute(value: t.Any) -> str:
            computed = pseudonym(pii_class, value)
            if computed is None or not PSEUDONYM_PATTERN.fullmatch(computed):
                msg = f"Field {field!r}: the hmac action produced a value that is not a pseudonym; nothing was written."
                raise ActionOutputError(msg)
            if len(cache) >= PSEUDONYM_CACHE_SIZE:
                cache.clear()
            cache[value] = computed
            return computed

        return cache, compute

    def _encrypt(self, source: str, stream: str, field: str, pii_class: str) -> Transform:
        cipher = self.cipher()
        # The blind index hashes the value's text, so in an erasure class it must be text or a number
        # for an erasure request to match it; the text of an object or true/false never matches.
        indexed = pii_class in ERASURE_CLASSES

        def transform(raw: msgspec.Raw) -> str | None:
            value = _decode(raw)
            if indexed and isinstance(value, (bool, dict, list)):
                msg = (
                    f"Stream {stream!r}: the value of encrypt field {field!r} (class {pii_class}) is not text or a "
                    "number, so its blind index could never match an erasure request. Nothing of the record "
                    "was written; fix the field's type in the tap."
                )
                raise MappingError(msg)
            token = cipher.encrypt(source, stream, field, pii_class, value)
            if token is not None and not FIELD_TOKEN_PATTERN.fullmatch(token):
                msg = f"Field {field!r}: the encrypt action produced a value that is not a field token; nothing was written."
                raise ActionOutputError(msg)
            return token

        return transform

    def cipher(self) -> FieldCipher:
        """Return the tenant's field cipher, created on first use."""
        if self._cipher is None:
            self._cipher = self._cipher_factory()
        return self._cipher


def _decoded(function: t.Callable[[t.Any], t.Any]) -> Transform:
    """Wrap a value transform so that it takes the raw JSON text of the value."""

    def transform(raw: msgspec.Raw) -> t.Any:
        return function(_decode(raw))

    return transform


def output_schema(action: str, prop: dict[str, t.Any], pii_class: str | None) -> dict[str, t.Any]:
    """Return the JSON Schema of a field after `action`, marked with `x-pii-applied`."""
    if action == KEEP:
        return {**prop, "x-pii-applied": KEEP}

    # Keep descriptive keywords (x-pii, description, title); drop those that describe the input value.
    described = {key: value for key, value in prop.items() if key not in _SCHEMA_KEYWORDS_OF_INPUT}
    nullable = _is_nullable(prop) or action in (TRUNCATE_IP, GENERALIZE)
    json_type = "integer" if action == GENERALIZE and pii_class == "date_of_birth" else "string"
    described["type"] = [json_type, "null"] if nullable else json_type
    described["x-pii-applied"] = action
    return described


def _is_nullable(prop: dict[str, t.Any]) -> bool:
    declared = prop.get("type")
    if isinstance(declared, list):
        return "null" in declared
    members = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(members, list):
        return any(isinstance(member, dict) and member.get("type") == "null" for member in members)
    return declared is None

