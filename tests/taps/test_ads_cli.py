"""tap-google-ads and tap-facebook as plain Singer executables: --about and --discover."""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

GOOGLE_CONFIG = {
    "customer_ids": ["456-789-0123"],
    "developer_token": "dev-token-not-shown",
    "client_id": "client-id",
    "client_secret": "client-secret-not-shown",
    "refresh_token": "refresh-token-not-shown",
}
META_CONFIG = {"account_ids": ["act_100200300400500"], "access_token": "meta-token-not-shown"}

TAPS: dict[str, tuple[dict[str, t.Any], set[str], set[str]]] = {
    "tap-google-ads": (
        GOOGLE_CONFIG,
        {"customers", "campaigns", "ad_groups", "ads", "campaign_budgets", "customer_daily_metrics",
         "campaign_daily_metrics", "ad_group_daily_metrics", "ad_daily_metrics"},
        {"developer_token", "client_secret", "refresh_token"},
    ),
    "tap-facebook": (
        META_CONFIG,
        {"ad_accounts", "campaigns", "adsets", "ads", "ads_insights", "ads_insights_country", "ads_insights_product"},
        {"access_token"},
    ),
}


@pytest.mark.parametrize("tap", sorted(TAPS))
def test_about_lists_capabilities_and_secrets(tap: str) -> None:
    result = subprocess.run([str(BIN / tap), "--about", "--format=json"], capture_output=True, text=True, check=True)

    about = json.loads(result.stdout)
    assert about["name"] == tap
    assert {"catalog", "discover", "state", "about"} <= set(about["capabilities"])
    assert "batch" not in about["capabilities"]
    secrets = {name for name, prop in about["settings"]["properties"].items() if prop.get("secret")}
    assert secrets == TAPS[tap][2]
    # Stream maps and flattening are rejected at sync, so --about must not offer them.
    assert {"stream_maps", "stream_map_config", "flattening_enabled"}.isdisjoint(about["settings"]["properties"])


@pytest.mark.parametrize("tap", sorted(TAPS))
def test_discover_marks_every_field(tap: str, tmp_path: Path) -> None:
    config, streams, _ = TAPS[tap]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))

    result = subprocess.run([str(BIN / tap), "--config", str(path), "--discover"], capture_output=True, text=True, check=True)

    catalog = {entry["tap_stream_id"]: entry for entry in json.loads(result.stdout)["streams"]}
    assert set(catalog) == streams
    for name, entry in catalog.items():
        unmarked = [field for field, prop in entry["schema"]["properties"].items() if "x-pii" not in prop]
        assert unmarked == [], name
        assert set(entry["key_properties"]) <= set(entry["schema"]["properties"]), name
    for value in config.values():
        if isinstance(value, str) and "not-shown" in value:
            assert value not in result.stdout + result.stderr


def test_daily_metric_keys_include_every_segment(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GOOGLE_CONFIG))

    result = subprocess.run([str(BIN / "tap-google-ads"), "--config", str(path), "--discover"], capture_output=True, text=True, check=True)

    keys = {entry["tap_stream_id"]: entry["key_properties"] for entry in json.loads(result.stdout)["streams"]}
    assert keys["campaign_daily_metrics"] == ["customer_id", "campaign_id", "date"]
    assert keys["ad_daily_metrics"] == ["customer_id", "ad_group_id", "ad_id", "date"]


def test_insight_keys_include_the_breakdown(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(META_CONFIG))

    result = subprocess.run([str(BIN / "tap-facebook"), "--config", str(path), "--discover"], capture_output=True, text=True, check=True)

    keys = {entry["tap_stream_id"]: entry["key_properties"] for entry in json.loads(result.stdout)["streams"]}
    assert keys["ads_insights"] == ["account_id", "ad_id", "date_start"]
    assert keys["ads_insights_country"] == ["account_id", "ad_id", "date_start", "country"]
    assert keys["ads_insights_product"] == ["account_id", "ad_id", "date_start", "product_id"]


def test_malformed_customer_id_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**GOOGLE_CONFIG, "customer_ids": ["456-789-01"]}))

    result = subprocess.run([str(BIN / "tap-google-ads"), "--config", str(path)], capture_output=True, text=True, check=False)

    assert result.returncode == 1
    assert "customer_ids" in result.stderr
    assert "refresh-token-not-shown" not in result.stderr
