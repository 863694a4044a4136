"""A tenant's reporting currency and time zone: where they come from, how they are checked, what dbt receives.

The marts convert amounts into the reporting currency and date orders in the
reporting time zone. A build takes each setting from, in this order: the
command's option, the dbt `--vars` the caller passed, the environment
(SPENDLAKE_REPORTING_CURRENCY / _TIMEZONE, as Meltano sets them), the
tenant's last build (the table marts.reporting_settings), and otherwise the
dbt project's defaults. So a build by hand keeps what the daily job chose.
"""

from __future__ import annotations

import csv
import json
import os
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from spendlake.currencies import exponents

CURRENCY_ENV = "SPENDLAKE_REPORTING_CURRENCY"
TIMEZONE_ENV = "SPENDLAKE_REPORTING_TIMEZONE"
CURRENCY_VAR = "reporting_currency"
TIMEZONE_VAR = "reporting_timezone"
RATES_SEED = Path("seeds") / "fx_rates.csv"


class ReportingSettingsError(ValueError):
    """Raised for a reporting setting that cannot be used; the message names where it came from and the fix."""


@dataclass(frozen=True)
class ReportingSettings:
    """A reporting currency and time zone, each None where not set, and where they came from."""

    currency: str | None = None
    timezone: str | None = None
    origin: str = ""


def resolve(layers: Sequence[ReportingSettings]) -> tuple[ReportingSettings, str]:
    """Return the first set currency and time zone of `layers`, and a line saying where each came from."""
    currency = next((layer for layer in layers if layer.currency), None)
    timezone = next((layer for layer in layers if layer.timezone), None)
    settings = ReportingSettings(currency.currency if currency else None, timezone.timezone if timezone else None)
    described = (
        f"Reporting currency {currency.currency} ({currency.origin})" if currency else "Reporting currency not set",
        f"time zone {timezone.timezone} ({timezone.origin})" if timezone else "time zone not set",
    )
    return settings, ", ".join(described) + "."


def checked_currency(value: str, place: str) -> str:
    """Return the upper-case ISO 4217 code, or raise naming `place` when it is blank or unknown."""
    code = value.strip().upper()
    if code not in exponents():
        msg = f"Invalid reporting currency {value!r} ({place}): use a three-letter ISO 4217 code such as 'EUR'."
        raise ReportingSettingsError(msg)
    return code


def checked_timezone(value: str, place: str) -> str:
    """Return the IANA name as the time-zone database spells it ('utc' gives 'UTC'), or raise naming `place`."""
    name = _timezone_names().get(value.strip().lower())
    if name is None:
        msg = f"Invalid reporting time zone {value!r} ({place}): use an IANA name such as 'Europe/Berlin' or 'UTC'."
        raise ReportingSettingsError(msg)
    return name


@cache
def _timezone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def from_options(currency: str | None, timezone: str | None) -> ReportingSettings:
    """Return the settings given as command options, checked."""
    return ReportingSettings(
        checked_currency(currency, "option --reporting-currency") if currency is not None else None,
        checked_timezone(timezone, "option --reporting-timezone") if timezone is not None else None,
        "option",
    )


def from_environment() -> ReportingSettings:
    """Return the settings of SPENDLAKE_REPORTING_CURRENCY and SPENDLAKE_REPORTING_TIMEZONE, checked; blank is unset."""
    currency = os.environ.get(CURRENCY_ENV, "").strip()
    timezone = os.environ.get(TIMEZONE_ENV, "").strip()
    return ReportingSettings(
        checked_currency(currency, f"{CURRENCY_ENV}, set by you or by Meltano's reporting_currency") if currency else None,
        checked_timezone(timezone, f"{TIMEZONE_ENV}, set by you or by Meltano's reporting_timezone") if timezone else None,
        "environment",
    )


def project_defaults(project_dir: Path) -> ReportingSettings:
    """Return the reporting vars that the dbt project's dbt_project.yml sets, as the last fallback."""
    try:
        document = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ReportingSettings()
    defaults = document.get("vars") if isinstance(document, dict) else None
    if not isinstance(defaults, dict):
        return ReportingSettings()
    currency, timezone = defaults.get(CURRENCY_VAR), defaults.get(TIMEZONE_VAR)
    return ReportingSettings(
        str(currency).upper() if currency else None, str(timezone) if timezone else None, "the dbt project's default"
    )


def split_vars(dbt_args: Sequence[str]) -> tuple[list[str], dict[str, object]]:
    """Return the dbt arguments without `--vars`, and the vars it gave (a YAML or JSON mapping)."""
    remaining: list[str] = []
    caller_vars: dict[str, object] = {}
    arguments = iter(dbt_args)
    for argument in arguments:
        if argument == "--vars" or argument.startswith("--vars="):
            text = argument.partition("=")[2] if "=" in argument else next(arguments, "")
            caller_vars.update(_parse_vars(text))
            continue
        remaining.append(argument)
    return remaining, caller_vars


def _parse_vars(text: str) -> dict[str, object]:
    try:
        parsed = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict):
        msg = "Invalid --vars for dbt: give a YAML or JSON mapping, such as '{reporting_currency: EUR}'."
        raise ReportingSettingsError(msg)
    return {str(name): value for name, value in parsed.items()}


def from_vars(caller_vars: dict[str, object], options: ReportingSettings) -> ReportingSettings:
    """Return the reporting settings inside the caller's `--vars`, checked; raise if an option sets the same one."""
    currency, timezone = caller_vars.get(CURRENCY_VAR), caller_vars.get(TIMEZONE_VAR)
    for name, value, option in ((CURRENCY_VAR, currency, options.currency), (TIMEZONE_VAR, timezone, options.timezone)):
        if value is not None and option is not None:
            msg = f"Both --vars and the option --{name.replace('_', '-')} set {name}: give it once."
            raise ReportingSettingsError(msg)
    return ReportingSettings(
        checked_currency(str(currency), f"--vars {CURRENCY_VAR}") if currency is not None else None,
        checked_timezone(str(timezone), f"--vars {TIMEZONE_VAR}") if timezone is not None else None,
        "--vars",
    )


def require_rates(currency: str | None, project_dir: Path) -> None:
    """Raise unless the project's rates seed has a row for `currency` (skipped when the project has no such seed)."""
    seed = project_dir / RATES_SEED
    if currency is None or not seed.is_file():
        return
    with seed.open(newline="", encoding="utf-8") as handle:
        known = {str(row.get("currency", "")).strip().upper() for row in csv.DictReader(handle)}
    if currency not in known:
        msg = (
            f"No exchange rate for the reporting currency {currency} in {seed}, so no amount could be converted. "
            f"Add its rates to that file, or report in one of: {', '.join(sorted(known))}."
        )
        raise ReportingSettingsError(msg)


def dbt_vars(settings: ReportingSettings, caller_vars: dict[str, object]) -> list[str]:
    """Return `--vars` and its JSON value for dbt: the caller's vars with the resolved reporting settings."""
    merged = {**caller_vars}
    if settings.currency:
        merged[CURRENCY_VAR] = settings.currency
    if settings.timezone:
        merged[TIMEZONE_VAR] = settings.timezone
    return ["--vars", json.dumps(merged, default=str)] if merged else []
