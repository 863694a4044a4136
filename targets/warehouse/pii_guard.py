"""Fail closed on data that did not pass through mapper-pii for this tenant.

mapper-pii marks every field it emits with `x-pii-applied`, and the stream's
schema with `x-pii-tenant` and `x-pii-key-id`: the tenant whose key made the
pseudonyms and a fingerprint of that key. A field
without the mark may be raw personal data, and pseudonyms made under another
tenant's key would link people across tenants, so both stop the load.
"""

from __future__ import annotations

import typing as t

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
