"""`spendlake privacy audit verify`: the hash chain and signed head of the audit log, intact, edited, cut and deleted."""

from __future__ import annotations

import json
import stat
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


def test_verify_detects_removed_last_line(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:-1]))

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "broken at line 3: the log contains 2 events but its head records event 2 (seq starts at 0)" in result.output


def test_verify_detects_emptied_log(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    log.write_text("")

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "the log contains 0 events but its head records event 2" in result.output


def test_verify_detects_deleted_log(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    log.unlink()

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "or it was emptied or deleted" in result.output
    assert not log.exists()


def test_verify_detects_tampered_head(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    head_path = log.with_name("audit.head")
    head = json.loads(head_path.read_text())
    events = [json.loads(line) for line in log.read_text().splitlines()]
    # Cut the last event and point the head at the new last one, keeping the old MAC.
    log.write_text("".join(json.dumps(event) + "\n" for event in events[:-1]))
    head_path.write_text(json.dumps({**head, "seq": 1, "hash": events[1]["hash"]}))

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "has a wrong MAC (it was edited, or written without the tenant's key)" in result.output


def test_verify_rejects_unsigned_head(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    head_path = log.with_name("audit.head")
    head_path.write_text(json.dumps({**json.loads(head_path.read_text()), "mac": None}))

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "carries no MAC although the tenant has a keyring" in result.output


def test_verify_warns_without_head(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    log.with_name("audit.head").unlink()

    result = loaded_tenant.cli("audit", "verify")

    assert result.exit_code == 1
    assert "3 events, hash chain intact, but the head" in result.output
    assert "is missing, so lines cut from the end of the log cannot be detected" in result.output
    assert "NOT OK" in result.output
    assert len(read_audit_events(loaded_tenant.home, TENANT)) == 3


def test_head_is_private_and_signed(loaded_tenant: LoadedTenant) -> None:
    log = log_after_operations(loaded_tenant)
    head_path = log.with_name("audit.head")

    head = json.loads(head_path.read_text())

    assert stat.S_IMODE(head_path.stat().st_mode) == 0o600
    last = read_audit_events(loaded_tenant.home, TENANT)[-1]
    assert (head["seq"], head["hash"]) == (last["seq"], last["hash"])
    assert len(head["mac"]) == 64
