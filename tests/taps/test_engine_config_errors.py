"""Config validation of declarative taps: a secret setting of the wrong type is named, never quoted."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from singer_sdk.exceptions import ConfigValidationError

from taps.google_analytics import TapGoogleAnalytics
from taps.stripe import TapStripe

BIN = Path(sys.executable).parent
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ-config-error-test"
SERVICE_ACCOUNT_KEY = {
    "type": "service_account",
    "client_email": "reader@spendlake-test.iam.gserviceaccount.com",
    "private_key_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "private_key": f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n",
}
REFRESH_TOKEN = "1//0refresh-token-config-error-test"
STRIPE_KEY = "sk_test_config_error_51HxYz"

# (tap executable, tap class, config, secret fragments, expected message)
CASES: list[tuple[str, t.Any, dict[str, t.Any], list[str], str]] = [
    (
        "tap-google-analytics",
        TapGoogleAnalytics,
        {"property_ids": ["123456789"], "service_account_key": SERVICE_ACCOUNT_KEY},
        [KEY_BODY, "BEGIN PRIVATE KEY", SERVICE_ACCOUNT_KEY["client_email"], SERVICE_ACCOUNT_KEY["private_key_id"]],
        "config['service_account_key'] is an object, but must be string or null; "
        "the value is not shown because setting 'service_account_key' is secret.",
    ),
    (
        "tap-google-analytics",
        TapGoogleAnalytics,
        {"property_ids": ["123456789"], "client_id": "client-1", "client_secret": "s3cr3t-client-value", "refresh_token": [REFRESH_TOKEN]},
        [REFRESH_TOKEN],
        "config['refresh_token'] is an array, but must be string or null; "
        "the value is not shown because setting 'refresh_token' is secret.",
    ),
    (
        "tap-stripe",
        TapStripe,
        {"api_key": {"live": STRIPE_KEY}},
        [STRIPE_KEY],
        "config['api_key'] is an object, but must be string; the value is not shown because setting 'api_key' is secret.",
    ),
    (
        "tap-stripe",
        TapStripe,
        {"api_key": [STRIPE_KEY, 42]},
        [STRIPE_KEY],
        "config['api_key'] is an array, but must be string; the value is not shown because setting 'api_key' is secret.",
    ),
]
IDS = ["ga4-key-object", "ga4-token-array", "stripe-key-object", "stripe-key-array"]


@pytest.mark.parametrize(("executable", "tap_class", "config", "secrets", "expected"), CASES, ids=IDS)
def test_secret_of_wrong_type_not_quoted(
    caplog: pytest.LogCaptureFixture,
    executable: str,
    tap_class: t.Any,
    config: dict[str, t.Any],
    secrets: list[str],
    expected: str,
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigValidationError) as raised:
        tap_class(config=config, parse_env_config=False)

    assert raised.value.errors == [expected]
    visible_text = f"{raised.value} {raised.value.errors} {raised.value.schema} {caplog.text}"
    for secret in secrets:
        assert secret not in visible_text


@pytest.mark.parametrize(("executable", "tap_class", "config", "secrets", "expected"), CASES, ids=IDS)
def test_cli_logs_no_secret_of_wrong_type(
    tmp_path: Path,
    executable: str,
    tap_class: t.Any,
    config: dict[str, t.Any],
    secrets: list[str],
    expected: str,
) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))

    result = subprocess.run(
        [str(BIN / executable), "--config", str(config_file)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 1
    assert expected in result.stderr
    for secret in secrets:
        assert secret not in result.stderr
        assert secret not in result.stdout


def test_non_secret_value_still_quoted() -> None:
    config = {"property_ids": ["123456789"], "refresh_token": REFRESH_TOKEN, "lookback_days": 500}

    with pytest.raises(ConfigValidationError) as raised:
        TapGoogleAnalytics(config=config, parse_env_config=False)

    assert raised.value.errors == ["500 is greater than the maximum of 90 in config['lookback_days']"]


def test_secret_of_right_type_passes() -> None:
    tap = TapStripe(config={"api_key": STRIPE_KEY}, parse_env_config=False)

    assert tap.config["api_key"] == STRIPE_KEY
