"""Deterministic random draws for the sandbox worlds.

The worlds must serve the same objects on every Python version for one seed.
Only `random.Random.random()` carries that guarantee, so every helper here is
built on it instead of on `randint`, `choice` or `sample`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


class Draw:
    """Integer, choice and sampling helpers on one seeded `random.Random`."""

    def __init__(self, label: str) -> None:
        self._random = random.Random(label)

    def chance(self, probability: float) -> bool:
        return self._random.random() < probability

    def integer(self, low: int, high: int) -> int:
        """Return an integer in [low, high], both ends included."""
        return low + int(self._random.random() * (high - low + 1))

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.integer(0, len(items) - 1)]

    def pick_weighted(self, items: Sequence[Any], weights: Sequence[float]) -> Any:
        point = self._random.random() * sum(weights)
        for item, weight in zip(items, weights):
            point -= weight
            if point < 0:
                return item
        return items[-1]

    def sample(self, items: Sequence[Any], count: int) -> list[Any]:
        """Return `count` distinct items in a random order (a partial Fisher-Yates shuffle)."""
        pool = list(items)
        count = min(count, len(pool))
        for i in range(count):
            j = self.integer(i, len(pool) - 1)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:count]

    def hex(self, length: int) -> str:
        """Return `length` lowercase hexadecimal digits."""
        return "".join(self.pick("0123456789abcdef") for _ in range(length))
