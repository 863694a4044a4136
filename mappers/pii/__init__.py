"""mapper-pii: the Singer mapper that hashes or drops personal data per policy."""

from __future__ import annotations

from mappers.pii.mapper import PIIMapper

__all__ = ["PIIMapper"]
