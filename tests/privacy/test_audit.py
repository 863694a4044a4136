"""`spendlake privacy audit verify`: the hash chain of the audit log, intact, edited and cut."""

from __future__ import annotations

from pathlib import Path

from privacy.audit import read_audit_events
from tests.privacy.gdpr_support import (
    TENANT,
    LoadedTenant,
    customer_with_charges,
    loaded_template,  # noqa: F401 - fixture
    loaded_tenant,  # noqa: F401 - fixture
)


def log_after_operations(tenant: LoadedTenant) -> Path:
    """Run an erase dry run, an export and a record, and return the audit log they wrote."""
    customer = customer_with_charges(tenant.world)
    for arguments in (("erase", "--email", customer["email"], "--dry-run"), ("export", "--email", customer["email"]), ("record",)):
        result = tenant.cli(*arguments)
        assert result.exit_code == 0, result.output
    return tenant.home / "privacy" / TENANT / "audit.jsonl"


def test_verify_intact_log(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 0, result.output
    assert result.output == f"Audit log {log}: 3 events, hash chain intact. OK\n"
    assert [event["action"] for event in read_audit_events(loaded_tenant.home, TENANT)] == [
        "privacy.erase",
        "privacy.export",
        "privacy.record",
        "privacy.audit_verify",
    ]


def test_verify_detects_edited_byte(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    data = bytearray(log.read_bytes())
    second_line = data.index(b"\n") + 1
    position = data.index(b'"privacy.export"', second_line) + len('"privacy.')
    data[position] = ord("X")
    log.write_bytes(bytes(data))

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "broken at line 2: its content does not match its 'hash' (the line was edited)" in result.output
    assert "The 1 events before that line are intact" in result.output
    assert len(log.read_bytes().splitlines()) == 3


def test_verify_detects_removed_line(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    first, _second, third = log.read_text().splitlines()
    log.write_text(f"{first}\n{third}\n")

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "broken at line 2: its 'prev' does not match the hash of the line before" in result.output


def test_verify_empty_log(loaded_tenant: LoadedTenant) -> None:
    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 0, result.output
    assert ": 0 events, hash chain intact. OK" in result.output


def test_verify_rejects_bad_tenant(loaded_tenant: LoadedTenant) -> None:
    from click.testing import CliRunner

    from spendlake.cli import main

    result = CliRunner().invoke(main, ["privacy", "audit", "verify", "--tenant", "../acme", "--home", str(loaded_tenant.home)])

    assert result.exit_code == 1
    assert "Invalid tenant id" in result.output
