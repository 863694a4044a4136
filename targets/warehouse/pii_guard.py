"""Fail closed on data that did not pass through mapper-pii for this tenant.

mapper-pii marks every field it emits with `x-pii-applied`, and the stream's
schema with `x-pii-tenant` and `x-pii-key-id`: the tenant whose key made the
pseudonyms and a fingerprint of that key. A field
without the mark may be raw personal data, and pseudonyms made under another
tenant's key would link people across tenants, so both stop the load.
"""

from __future__ import annotations

import typing as t

import pyarrow as pa
import pyarrow.compute as pc

from privacy.field_crypto import FIELD_TOKEN_PATTERN
from targets.warehouse.arrow_schema import StreamLayout
from targets.warehouse.errors import UnmappedPersonalDataError

APPLIED_KEY = "x-pii-applied"
TENANT_KEY = "x-pii-tenant"
KEY_ID_KEY = "x-pii-key-id"


def check_pii_mapped(stream: str, schema: dict[str, t.Any], tenant: str, key_id: str) -> None:
    """Raise unless every property carries `x-pii-applied` and the schema names this tenant and its key."""
    unmapped = sorted(name for name, prop in schema.get("properties", {}).items() if APPLIED_KEY not in (prop or {}))
    if unmapped:
        msg = (
            f"Stream {stream!r}: field(s) {', '.join(unmapped)} did not pass through mapper-pii "
            f"(no {APPLIED_KEY} mark), so they may hold raw personal data. Put mapper-pii between the tap "
            "and target-warehouse."
        )
        raise UnmappedPersonalDataError(msg)

    mapped_for = schema.get(TENANT_KEY)
    if mapped_for != tenant:
        msg = (
            f"Stream {stream!r}: mapper-pii pseudonymised this stream for tenant {mapped_for!r}, but this "
            f"target loads tenant {tenant!r}. Give mapper-pii and target-warehouse the same tenant."
        )
        raise UnmappedPersonalDataError(msg)

    if schema.get(KEY_ID_KEY) != key_id:
        msg = (
            f"Stream {stream!r}: mapper-pii made the pseudonyms with a different key than tenant {tenant!r} "
            "has in this target's keyring. Give both plugins the same spendlake home and master key."
        )
        raise UnmappedPersonalDataError(msg)


#: Actions mapper-pii writes into `x-pii-applied`; any other mark comes from something else.
KNOWN_ACTIONS = frozenset({"keep", "drop", "hmac", "encrypt", "truncate_ip", "generalize", "redact"})

#: Hex digits of a pseudonym (an HMAC-SHA-256).
PSEUDONYM_LENGTH = 64
_HEX_DIGITS = b"0123456789abcdef"
#: Full-match patterns of the text each transforming action emits; anything else is raw input.
_VALUE_PATTERNS = {
    "hmac": rf"^[0-9a-f]{{{PSEUDONYM_LENGTH}}}$",
    "encrypt": FIELD_TOKEN_PATTERN.pattern,
    # IPv4 /24 or IPv6 /48 network addresses: the host part is zero.
    "truncate_ip": r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.0|[0-9a-f]{1,4}(:[0-9a-f]{1,4}){0,2}::|::)$",
    # The outward part of a postcode; a generalised date of birth is an integer column.
    "generalize": r"^[A-Za-z0-9]{1,4}$",
}
#: Patterns that must not occur inside the text of an action's output.
_FORBIDDEN_PATTERNS = {
    # NOTE: only e-mail addresses are checked here; a forged mark on text with phone numbers passes.
    "redact": r"[^\s@\[\]]+@[^\s@\[\]]+\.[A-Za-z]{2,}",
}


def check_schema_actions(stream: str, schema: dict[str, t.Any]) -> None:
    """Raise when the schema keeps a field that the mapper's own marks exclude from storage."""
    for name, prop in schema.get("properties", {}).items():
        action = (prop or {}).get(APPLIED_KEY)
        if action not in KNOWN_ACTIONS:
            msg = (
                f"Stream {stream!r}: field {name!r} carries the unknown mark {APPLIED_KEY}={action!r}; "
                f"mapper-pii writes one of: {', '.join(sorted(KNOWN_ACTIONS))}. Use mapper-pii in front of this target."
            )
            raise UnmappedPersonalDataError(msg)
        if action == "drop":
            msg = (
                f"Stream {stream!r}: field {name!r} is marked {APPLIED_KEY}=drop but is still in the SCHEMA, "
                "so its values would be stored. The mapper in front of this target is faulty; use mapper-pii."
            )
            raise UnmappedPersonalDataError(msg)
        if (prop or {}).get("x-pii") == "secret" and action != "drop":
            msg = (
                f"Stream {stream!r}: field {name!r} is classed secret, which is never stored, but arrives "
                f"with {APPLIED_KEY}={action!r}. Use mapper-pii, which drops secrets."
            )
            raise UnmappedPersonalDataError(msg)


def check_mapped_values(layout: StreamLayout, table: pa.Table) -> None:
    """Raise unless every transformed text column of the batch has the form its action emits.

    A pseudonym column must contain only pseudonyms, an encrypted column only
    field tokens, and so on. A value of any other form is a raw value that
    slipped past the mapper, so the batch is rejected before anything is written.
    """
    for column in layout.columns:
        action = column.pii_action or ""
        if column.type.kind != "string" or action not in _VALUE_PATTERNS.keys() | _FORBIDDEN_PATTERNS.keys():
            continue
        values = table.column(column.name)
        if values.null_count == len(values):
            continue

        if action == "hmac" and _all_pseudonyms(values):
            continue
        if action in _VALUE_PATTERNS:
            bad = pc.invert(pc.fill_null(pc.match_substring_regex(values, _VALUE_PATTERNS[action]), True))
        else:
            bad = pc.fill_null(pc.match_substring_regex(values, _FORBIDDEN_PATTERNS[action]), False)
        if pc.any(bad).as_py():
            _raise_unmapped_values(layout.stream, column.name, action, bad)


def _all_pseudonyms(values: pa.ChunkedArray) -> bool:
    """Return True when every non-null value is 64 lower-case hex digits; False means: check with the pattern.

    The bytes of all values are tested at once. A null slot may contain bytes
    too, so a False can be wrong, but a True never is. This takes a fifth of
    the regular expression's time.
    """
    if values.type != pa.string() or pc.any(pc.not_equal(pc.binary_length(values), PSEUDONYM_LENGTH)).as_py():
        return False
    for chunk in values.chunks:
        offsets, data = chunk.buffers()[1:3]
        if data is None:
            continue
        bounds = memoryview(offsets).cast("i")
        text = memoryview(data)[bounds[chunk.offset] : bounds[chunk.offset + len(chunk)]]
        if bytes(text).translate(None, _HEX_DIGITS):
            return False
    return True


def _raise_unmapped_values(stream: str, name: str, action: str, bad: t.Any) -> None:
    first = pc.index(bad, True).as_py()
    count = pc.sum(bad).as_py()
    msg = (
        f"Stream {stream!r}, field {name!r}: {count} value(s) of the batch (first at row {first}) are not "
        f"{action} output although the SCHEMA marks the field {APPLIED_KEY}={action}. Nothing of this batch "
        "was written; check the mapper."
    )
    raise UnmappedPersonalDataError(msg)
