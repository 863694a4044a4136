"""Field paths in declarations: dotted steps, plus a step that picks a list element by a key.

`custom_attributes[attribute_code=special_price].value` reads the `value` of the
first element of the `custom_attributes` list whose `attribute_code` is
`special_price`. Magento sends EAV attributes this way, as
`[{"attribute_code": ..., "value": ...}]`.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

_PLAIN_STEP = re.compile(r"^[^.\[\]=]+$")
_MATCH_STEP = re.compile(r"^(?P<name>[^.\[\]=]+)\[(?P<key>[^.\[\]=]+)=(?P<value>[^\[\]]+)\]$")

PATH_SYNTAX = "dotted keys such as 'billing_details.email', where a step may be 'list[key=value]'"


@dataclass(frozen=True)
class ListMatch:
    """A path step that picks the first element of a list whose `key` equals `value` (compared as text)."""

    key: str
    value: str

    def pick(self, elements: list[t.Any]) -> t.Any:
        """Return the first matching element, or None when no element matches."""
        for element in elements:
            if isinstance(element, dict) and str(element.get(self.key)) == self.value:
                return element
        return None


PathStep = t.Union[str, ListMatch]


def parse_field_path(text: str) -> tuple[PathStep, ...]:
    """Split a declared path into steps; `name[key=value]` becomes `name` followed by a `ListMatch`.

    Raises ValueError naming the step that is not valid.
    """
    steps: list[PathStep] = []
    for index, part in enumerate(_split_steps(text)):
        if _PLAIN_STEP.match(part):
            steps.append(part)
            continue
        match = _MATCH_STEP.match(part)
        if match is None:
            msg = f"step {index + 1} ({part!r}) is not valid; write {PATH_SYNTAX}"
            raise ValueError(msg)
        steps.extend((match["name"], ListMatch(match["key"], match["value"])))
    return tuple(steps)


def _split_steps(text: str) -> list[str]:
    """Split on dots outside brackets, so a matched value may contain a dot."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for character in text:
        if character == "[":
            depth += 1
        elif character == "]":
            depth -= 1
        if character == "." and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return parts
