"""PII policy: which action applies to each PII class, validated before any data moves."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

PII_CLASSES = ("none", "email", "phone", "name", "address", "ip", "free_text", "identifier", "date_of_birth", "secret")

#: Actions the mapper applies today.
ACTIONS = ("keep", "drop", "hmac")
#: Actions in the design that the mapper does not apply yet; asking for one is an error.
PLANNED_ACTIONS = ("encrypt", "truncate_ip", "generalize", "redact")

DEFAULT_ACTIONS: dict[str, str] = {
    "none": "keep",
    "email": "hmac",
    "phone": "hmac",
    "identifier": "hmac",
    "name": "drop",
    "address": "drop",
    "ip": "drop",
    "free_text": "drop",
    "date_of_birth": "drop",
    "secret": "drop",
}

#: Actions a class may never get, whatever the config requests.
FORBIDDEN: dict[str, tuple[str, ...]] = {"secret": ("keep", "hmac")}

UNCLASSIFIED_MODES = ("drop", "fail")


class PolicyError(ValueError):
    """Raised when a policy setting cannot be applied; lists every problem."""


@dataclass(frozen=True)
class Policy:
    """A validated class-to-action table and the rule for fields without a class."""

    actions: dict[str, str]
    unclassified: str = "drop"

    def action_for(self, pii_class: str) -> str:
        """Return the action for a known class."""
        return self.actions[pii_class]


def build_policy(overrides: t.Mapping[str, t.Any] | None, unclassified: str = "drop") -> Policy:
    """Merge config overrides onto the defaults and reject anything that cannot be applied."""
    problems: list[str] = []
    actions = dict(DEFAULT_ACTIONS)

    for pii_class, action in (overrides or {}).items():
        place = f"policy.{pii_class}"
        if pii_class not in PII_CLASSES:
            problems.append(f"{place}: unknown PII class; use one of: {', '.join(PII_CLASSES)}")
        elif action in PLANNED_ACTIONS:
            problems.append(f"{place}: action {action!r} is not available yet; use one of: {', '.join(ACTIONS)}")
        elif action not in ACTIONS:
            problems.append(f"{place}: unknown action {action!r}; use one of: {', '.join(ACTIONS)}")
        elif action in FORBIDDEN.get(pii_class, ()):
            problems.append(f"{place}: {pii_class!r} values may only be dropped, never {action!r}")
        else:
            actions[pii_class] = action

    if unclassified not in UNCLASSIFIED_MODES:
        problems.append(f"unclassified: unknown mode {unclassified!r}; use one of: {', '.join(UNCLASSIFIED_MODES)}")

    if problems:
        raise PolicyError("Invalid PII policy:\n" + "\n".join(f"  - {problem}" for problem in problems))
    return Policy(actions=actions, unclassified=unclassified)
