"""Counts of sandbox responses per kind and outcome, so tests can assert attempts and throttles."""

from __future__ import annotations

import threading
from collections import Counter


class OutcomeCounter:
    """Thread-safe response counts of one sandbox server; the API sessions build on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, kind: str, outcome: str) -> None:
        """Count one response of a kind (an endpoint) with an outcome (served, throttled, ...)."""
        with self._lock:
            self._counts[(kind, outcome)] += 1

    def counts(self) -> dict[str, dict[str, int]]:
        """Return the number of responses per kind and outcome."""
        with self._lock:
            result: dict[str, dict[str, int]] = {}
            for (kind, outcome), number in sorted(self._counts.items()):
                result.setdefault(kind, {})[outcome] = number
            return result
