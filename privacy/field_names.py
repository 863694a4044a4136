"""Split field names into lower-case words, so rules match words and never substrings."""

from __future__ import annotations

import functools
import re

# One word: "IPv4"/"ipv6" kept whole, an acronym before a capitalised word ("IP" in "IPAddress"),
# a capitalised or lower-case word, an acronym, or a run of digits.
_WORD = re.compile(r"[Ii][Pp][Vv][46]|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_SEPARATORS = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=4096)
def name_words(name: str) -> tuple[str, ...]:
    """Return the lower-case words of a snake_case, kebab-case, camelCase or PascalCase name.

    `billingAddressPostalCode` and `billing_address_postal_code` both give
    ("billing", "address", "postal", "code"); `IPAddress` gives ("ip", "address");
    `address_line1` gives ("address", "line", "1"). A part with non-ASCII
    letters (`código`) is kept whole and case-folded, without a camelCase split.
    """
    words: list[str] = []
    for part in _SEPARATORS.split(name):
        if part.isascii():
            words.extend(word.lower() for word in _WORD.findall(part))
        elif part:
            words.append(part.casefold())
    return tuple(words)


def ends_with(words: tuple[str, ...], tail: tuple[str, ...]) -> bool:
    """Return whether `words` ends with the word sequence `tail`."""
    return len(words) >= len(tail) and words[len(words) - len(tail) :] == tail


def contains_sequence(words: tuple[str, ...], sequence: tuple[str, ...]) -> bool:
    """Return whether the word sequence `sequence` occurs in `words`."""
    size = len(sequence)
    return any(words[start : start + size] == sequence for start in range(len(words) - size + 1))
