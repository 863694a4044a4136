"""Resolve mapper-pii's config into what a run needs: tenant, source, policy, keys and erasure list.

Everything is checked before the first message is read, and every problem
found is reported at once.
"""

from __future__ import annotations

import difflib
import os
import re
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from privacy.declarations import installed_source_names
from privacy.erasures import ErasureListError, load_erased
from privacy.keys import KeyringError, TenantKeys, load_tenant_keys
from privacy.policy import Policy, PolicyError, load_policy
from spendlake.paths import InvalidTenantError, policy_path, spendlake_home, validate_tenant

#: SDK settings that would reshape records outside the policy.
RESHAPING_SETTINGS = ("stream_maps", "flattening_enabled")
#: The old name of the strict mode, still accepted in the `unclassified` setting.
LEGACY_UNCLASSIFIED = {"drop": "strict"}

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SettingsError(ValueError):
    """Raised with every problem found in the mapper's config."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


#: Environment variable in which Meltano passes the extractor's load schema (its source name) to a mapper.
LOAD_SCHEMA_ENV = "MELTANO_EXTRACT__LOAD_SCHEMA"


@dataclass(frozen=True)
class MapperSettings:
    """The resolved config of one run. `repr` leaves out the keys."""

    tenant: str
    source: str
    home: Path
    policy: Policy
    keys: TenantKeys = field(repr=False)
    erased: frozenset[str] = field(repr=False)
    warnings: tuple[str, ...] = ()


def resolve_settings(config: t.Mapping[str, t.Any], working_dir: Path) -> MapperSettings:
    """Check the config, load the tenant's policy, keys and erasure list, and return the run's settings."""
    problems = [
        f"Setting {name} cannot be used with mapper-pii, because it would reshape records outside the policy; remove it."
        for name in RESHAPING_SETTINGS
        if config.get(name)
    ]
    # Meltano expands $MELTANO_EXTRACT__LOAD_SCHEMA to "" in a mapper's config, but sets it in the
    # mapper's environment, so the variable is the fallback.
    source = str(config.get("source") or os.environ.get(LOAD_SCHEMA_ENV) or "")
    if source and not _SOURCE_NAME.match(source):
        problems.append("Setting source must be a source name such as stripe (lower-case letters, digits and '_').")
    try:
        tenant = validate_tenant(config["tenant"])
    except InvalidTenantError as error:
        raise SettingsError([*problems, str(error)]) from None

    path, warnings = _policy_file(config, working_dir, tenant)
    policy = _policy(path, tenant, config, problems)
    if policy is not None and policy.streams and not source:
        problems.append(
            f"The policy {policy.origin} has stream rules, so set source to the source name of the input "
            f"(under Meltano, {LOAD_SCHEMA_ENV} holds it)."
        )
    if policy is not None and source:
        problems.extend(unknown_source_problems(policy, source))
    if problems:
        raise SettingsError(problems)

    home = spendlake_home(config.get("home"))
    try:
        keys = load_tenant_keys(home, tenant)
        erased = load_erased(home, tenant)
    except (KeyringError, ErasureListError) as error:
        raise SettingsError([str(error)]) from None
    return MapperSettings(tenant, source, home, t.cast("Policy", policy), keys, erased, warnings)


def unknown_source_problems(policy: Policy, source: str) -> list[str]:
    """Return a problem for each stream or retention rule whose source is neither installed nor this run's source.

    Such a rule would never apply, so a misspelled source name would leave its
    stream mapped by the defaults, or its rows kept without a retention limit.
    """
    known = sorted({*installed_source_names(), source})
    places = [(f"streams.{key}", rules.source) for key, rules in policy.streams.items()]
    places += [(f"retention.streams.{key}", key.split(".", 1)[0]) for key in policy.retention_streams]
    return [
        f"{policy.origin}: {place}: unknown source {rule_source!r}{_suggest(rule_source, known)}; it is neither an "
        f"installed source nor this run's source, so the rule would never apply. Known sources: {', '.join(known)}."
        for place, rule_source in places
        if rule_source not in known
    ]


def _suggest(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _policy_file(config: t.Mapping[str, t.Any], working_dir: Path, tenant: str) -> tuple[Path | None, tuple[str, ...]]:
    """Return the policy file to read: the setting, else `policies/<tenant>.yaml` when it exists, else None."""
    configured = config.get("policy_file")
    if configured:
        return working_dir / Path(configured).expanduser(), ()

    default = policy_path(working_dir, tenant)
    if default.is_file():
        return default, ()
    warning = (
        f"No policy file for tenant {tenant!r} at {default}; using the built-in defaults. "
        "Create that file or set policy_file."
    )
    return None, (warning,)


def _policy(path: Path | None, tenant: str, config: t.Mapping[str, t.Any], problems: list[str]) -> Policy | None:
    """Load the policy and fold in the inline settings; record every problem."""
    try:
        policy = load_policy(path, tenant)
    except PolicyError as error:
        problems.extend(error.problems)
        return None

    unclassified = config.get("unclassified")
    try:
        return policy.with_overrides(
            config.get("policy"),
            LEGACY_UNCLASSIFIED.get(unclassified, unclassified),
            config.get("default_phone_region"),
        )
    except PolicyError as error:
        problems.extend(error.problems)
        return None
