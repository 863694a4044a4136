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


#: Full-match patterns of the values each transforming action emits; anything else is raw input.
_VALUE_PATTERNS = {
    "hmac": r"^[0-9a-f]{64}$",
    "encrypt": FIELD_TOKEN_PATTERN.pattern,
}


def check_schema_actions(stream: str, schema: dict[str, t.Any]) -> None:
    """Raise when the schema keeps a field that the mapper's own marks say must not be stored."""
    for name, prop in schema.get("properties", {}).items():
        action = (prop or {}).get(APPLIED_KEY)
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
    """Raise unless every hmac or encrypt column of the batch holds only pseudonyms or field tokens.

    A value of any other form is a raw value that slipped past the mapper; the
    batch is rejected before anything is written.
    """
    for column in layout.columns:
        pattern = _VALUE_PATTERNS.get(column.pii_action or "")
        if pattern is None:
            continue
        values = table.column(column.name)
        if values.null_count == len(values):
            continue

        matches = pc.match_substring_regex(values, pattern)
        bad = pc.invert(pc.fill_null(matches, True))
        if pc.any(bad).as_py():
            first = pc.index(bad, True).as_py()
            count = pc.sum(bad).as_py()
            msg = (
                f"Stream {layout.stream!r}, field {column.name!r}: {count} value(s) of the batch (first at "
                f"row {first}) are not {column.pii_action} output although the SCHEMA marks the field "
                f"{APPLIED_KEY}={column.pii_action}. Nothing of this batch was written; check the mapper."
            )
            raise UnmappedPersonalDataError(msg)
