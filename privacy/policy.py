"""Per-tenant PII policy: which action applies to each field, validated before any data moves.

Each tenant has one YAML file, by default `policies/<tenant>.yaml`:

```yaml
version: 1
tenant: demo                  # must equal the run's tenant
unclassified: detect          # detect | strict | fail, for fields without an x-pii class
phone_region: US              # ISO 3166-1 alpha-2 region for phones written without +country
classes:                      # PII class -> action; unset classes keep the built-in defaults
  email: hmac
streams:                      # "<source>.<stream>" -> rules of that stream
  stripe.customers:
    classes: {name: drop}     # class -> action in this stream
    fields: {email: encrypt, address_postal_code: generalize}
retention:                    # how long stored rows are kept: "<n> day(s)|week(s)|month(s)|year(s)"
  default: 25 months          # optional; without it rows are kept until erased
  streams:
    stripe.charges: 10 years  # or {keep: 10 years, date_field: created}
processing:                   # facts for the record of processing (GDPR Art. 30)
  controller: {name: Example Ltd, contact: privacy@example.com}
  processor: {name: Analytics Agency, contact: dpo@agency.example}
  purposes: [marketing performance reporting]
  recipients: [internal analysts]
  transfers: none outside the EEA
  security_measures: [staff training]   # optional; the record adds the technical measures
```

The action of a field is decided in this order: the stream's field rule, the
stream's class rule, the tenant's class default, the built-in default.

Unclassified modes: `detect` classifies a field by its name and otherwise
redacts personal values inside strings and keeps other scalars; `strict` drops
every unclassified field; `fail` stops the run.

Actions and the classes they apply to: `secret` can only be dropped;
`truncate_ip` applies to `ip` only; `generalize` to `date_of_birth`, and to
`address` only as a field rule on a postcode field; `redact` to `free_text`;
`keep`, `drop`, `hmac` and `encrypt` to every class but `secret`.

Every problem in a file is reported at once, each with the file and key path.
Where the declaration of a source is known (a built-in tap or an installed
source plugin), rules naming its streams and fields are checked against it.
"""

from __future__ import annotations

import calendar
import dataclasses
import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

PII_CLASSES = ("none", "email", "phone", "name", "address", "ip", "free_text", "identifier", "date_of_birth", "secret")

ACTIONS = ("keep", "drop", "hmac", "encrypt", "truncate_ip", "generalize", "redact")

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

UNCLASSIFIED_MODES = ("detect", "strict", "fail")
#: Without a policy file, fields without a class are dropped: a tap that classifies nothing loses data, never leaks it.
DEFAULT_UNCLASSIFIED = "strict"
DEFAULT_PHONE_REGION = "US"

DURATION_UNITS = ("day", "week", "month", "year")

#: Actions with a class restriction, and the classes they apply to.
_RESTRICTED_ACTIONS: dict[str, tuple[str, ...]] = {
    "truncate_ip": ("ip",),
    "generalize": ("date_of_birth", "address"),
    "redact": ("free_text",),
}


class PolicyError(ValueError):
    """Raised with every problem found in a policy, one per line, each with its place."""

    def __init__(self, label: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Invalid PII policy {label} ({len(problems)} problem(s)):\n{listing}")


def action_problem(pii_class: str, action: str, field_name: str | None = None) -> str | None:
    """Return why `action` cannot apply to a value of `pii_class`, or None when it can.

    `field_name` is set for a field rule: `generalize` applies to an address only on a
    postcode field.
    """
    if action not in ACTIONS:
        return f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}"
    if pii_class == "secret" and action != "drop":
        return f"'secret' values may only be dropped, never {action!r}"

    allowed = _RESTRICTED_ACTIONS.get(action)
    if allowed is not None and pii_class not in allowed:
        return f"action {action!r} does not apply to class {pii_class!r}; {_ACTION_SCOPE[action]}"
    if action == "generalize" and pii_class == "address":
        return _postcode_problem(field_name)
    return None


_ACTION_SCOPE = {
    "truncate_ip": "it applies to class ip only",
    "generalize": "it applies to class date_of_birth, or to class address as a field rule on a postcode field",
    "redact": "it applies to class free_text only",
}


def _postcode_problem(field_name: str | None) -> str | None:
    if field_name is None:
        return "'generalize' applies to an address only as a field rule on a postcode field; set it under streams.<source>.<stream>.fields"

    from privacy.transforms import is_postcode_field

    if is_postcode_field(field_name):
        return None
    return f"'generalize' applies to an address only on a postcode field, and {field_name!r} is not one; use drop, hmac or encrypt"


@dataclass(frozen=True)
class Duration:
    """A calendar length of time, such as 25 months."""

    count: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'' if self.count == 1 else 's'}"

    def before(self, moment: datetime) -> datetime:
        """Return `moment` minus this duration; a month end past the target month's last day clamps to it."""
        if self.unit == "day":
            return moment - timedelta(days=self.count)
        if self.unit == "week":
            return moment - timedelta(weeks=self.count)

        months = self.count * (12 if self.unit == "year" else 1)
        index = moment.year * 12 + moment.month - 1 - months
        year, month = divmod(index, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class Retention:
    """How long stored rows of a stream are kept, and the field that dates a row (None: the load time)."""

    keep: Duration
    date_field: str | None = None

    def cutoff(self, now: datetime) -> datetime:
        """Return the time before which rows are past retention; `now` must carry a time zone."""
        if now.tzinfo is None:
            msg = "The retention cutoff needs a time-zone-aware 'now'."
            raise ValueError(msg)
        return self.keep.before(now)


@dataclass(frozen=True)
class StreamRules:
    """The rules of one stream: class actions and field actions that override the tenant's defaults."""

    source: str
    stream: str
    classes: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The stream's name in the policy, `<source>.<stream>`."""
        return f"{self.source}.{self.stream}"


@dataclass(frozen=True)
class Policy:
    """A validated tenant policy. It contains no keys."""

    tenant: str
    origin: str
    unclassified: str = DEFAULT_UNCLASSIFIED
    phone_region: str = DEFAULT_PHONE_REGION
    classes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    streams: dict[str, StreamRules] = field(default_factory=dict)
    retention_default: Retention | None = None
    retention_streams: dict[str, Retention] = field(default_factory=dict)
    processing: dict[str, t.Any] = field(default_factory=dict)

    def action_for(self, source: str, stream: str, field_name: str, pii_class: str) -> str:
        """Return the action for one field: field rule, then stream class rule, then tenant class default."""
        rules = self.streams.get(f"{source}.{stream}")
        if rules is not None:
            if field_name in rules.fields:
                return rules.fields[field_name]
            if pii_class in rules.classes:
                return rules.classes[pii_class]
        return self.classes[pii_class]

    def stream_rules(self, source: str) -> list[StreamRules]:
        """Return the stream rules of one source."""
        return [rules for rules in self.streams.values() if rules.source == source]

    def retention_for(self, source: str, stream: str) -> Retention | None:
        """Return the stream's retention, else the default, else None (kept until erased)."""
        return self.retention_streams.get(f"{source}.{stream}", self.retention_default)

    def effective(self) -> dict[str, t.Any]:
        """Return the whole effective policy as JSON-ready data."""
        return {
            "origin": self.origin,
            "tenant": self.tenant,
            "unclassified": self.unclassified,
            "phone_region": self.phone_region,
            "classes": dict(self.classes),
            "streams": {key: {"classes": dict(rules.classes), "fields": dict(rules.fields)} for key, rules in self.streams.items()},
            "retention": {
                "default": _retention_data(self.retention_default),
                "streams": {key: _retention_data(retention) for key, retention in self.retention_streams.items()},
            },
            "processing": self.processing,
        }

    def with_overrides(
        self,
        classes: t.Mapping[str, t.Any] | None = None,
        unclassified: str | None = None,
        phone_region: str | None = None,
        *,
        label: str = "config",
    ) -> Policy:
        """Return this policy with class actions, unclassified mode or phone region replaced, validated."""
        from privacy.policy_file import check_class_actions, check_phone_region, check_unclassified

        problems: list[str] = []
        merged = dict(self.classes)
        merged.update(check_class_actions(classes or {}, f"{label}: policy", problems))
        mode = self.unclassified if unclassified is None else check_unclassified(unclassified, f"{label}: unclassified", problems)
        region = self.phone_region if phone_region is None else check_phone_region(phone_region, f"{label}: default_phone_region", problems)
        if problems:
            raise PolicyError(label, problems)
        return dataclasses.replace(self, classes=merged, unclassified=mode, phone_region=region)


def _retention_data(retention: Retention | None) -> dict[str, t.Any] | None:
    if retention is None:
        return None
    return {"keep": str(retention.keep), "date_field": retention.date_field}


def default_policy(tenant: str) -> Policy:
    """Return the built-in policy: default class actions, unclassified fields dropped."""
    return Policy(tenant=tenant, origin="built-in defaults")


def load_policy(path: Path | None, tenant: str, *, check_declarations: bool = True) -> Policy:
    """Read and validate a tenant's policy file; None gives the built-in defaults.

    With `check_declarations`, rules naming a stream or field of a source whose
    declaration is known are checked against that declaration.
    """
    from privacy.policy_file import read_policy_file
    from spendlake.paths import validate_tenant

    validate_tenant(tenant)
    if path is None:
        return default_policy(tenant)
    return read_policy_file(Path(path), tenant, check_declarations=check_declarations)


def build_policy(overrides: t.Mapping[str, t.Any] | None = None, unclassified: str | None = None, tenant: str = "inline") -> Policy:
    """Build a policy from inline settings: class overrides on the built-in defaults and an unclassified mode."""
    return default_policy(tenant).with_overrides(overrides, unclassified)
