"""mapper-pii: the Singer mapper that applies the tenant's PII policy to every field."""

from __future__ import annotations

from mappers.pii.mapper import PIIMapper

__all__ = ["PIIMapper"]
