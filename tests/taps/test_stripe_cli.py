"""tap-stripe as a plain Singer executable: --about and --discover."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TAP = str(Path(sys.executable).parent / "tap-stripe")


def test_about_lists_capabilities() -> None:
    result = subprocess.run([TAP, "--about", "--format=json"], capture_output=True, text=True, check=True)

    about = json.loads(result.stdout)
    assert about["name"] == "tap-stripe"
    assert {"catalog", "discover", "state", "about"} <= set(about["capabilities"])
    assert "batch" not in about["capabilities"]
    assert about["settings"]["properties"]["api_key"]["secret"] is True


def test_discover_marks_every_field(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": "sk_test_unused"}))

    result = subprocess.run([TAP, "--config", str(config), "--discover"], capture_output=True, text=True, check=True)

    streams = {entry["tap_stream_id"]: entry for entry in json.loads(result.stdout)["streams"]}
    assert sorted(streams) == [
        "balance_transactions", "charges", "customers", "invoices", "payment_intents", "prices", "products",
        "refunds", "subscriptions",
    ]
    for name, entry in streams.items():
        properties = entry["schema"]["properties"]
        unmarked = [field for field, prop in properties.items() if "x-pii" not in prop]
        assert unmarked == [], name
        # Immutable balance transactions bookmark on `created`; the others on the change time.
        assert entry["replication_key"] == ("created" if name == "balance_transactions" else "_sdc_changed_at"), name
        assert entry["key_properties"] == ["id"], name
    assert "client_secret" not in streams["payment_intents"]["schema"]["properties"]
    assert "sk_test_unused" not in result.stdout
    assert "sk_test_unused" not in result.stderr


def test_stream_maps_rejected(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": "sk_test_unused", "stream_maps": {"customers": {"currency": "name"}}}))

    result = subprocess.run([TAP, "--config", str(config)], capture_output=True, text=True, check=False)

    assert result.returncode == 1
    assert "Setting(s) stream_maps cannot be used with tap-stripe" in result.stderr
    assert result.stdout == ""


def test_invalid_expired_events_named(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": "sk_test_unused", "expired_events": "ignore"}))

    result = subprocess.run([TAP, "--config", str(config)], capture_output=True, text=True, check=False)

    assert result.returncode == 1
    assert "expired_events" in result.stderr
    assert "full_refresh|fail" in result.stderr


def test_invalid_start_date_named(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": "sk_test_unused", "start_date": "last tuesday"}))

    result = subprocess.run([TAP, "--config", str(config)], capture_output=True, text=True, check=False)

    assert result.returncode == 1
    assert "Setting 'start_date' is not an ISO-8601 timestamp" in result.stderr
