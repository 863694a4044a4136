"""The error that stops a mapper-pii run."""

from __future__ import annotations


class MappingError(RuntimeError):
    """Raised when a stream cannot be mapped safely; the run must stop."""
