"""Service-account auth (JWT-bearer grant) and `first_of` auth, against the sandbox's token endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import typing as t
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError

from sandbox.ga4_api import ANALYTICS_SCOPE, JWT_BEARER_GRANT, TOKEN_PATH, demo_public_key_pem, demo_service_account_key
from sandbox.server import SandboxServer, start_server
from sandbox.stripe_data import StripeWorld
from taps.engine.auth import build_authenticator
from taps.engine.service_account import ServiceAccountAuth, key_from_file, key_from_text

SCOPES = [ANALYTICS_SCOPE]
AUTH = {
    "type": "first_of",
    "alternatives": [
        {"type": "google_service_account", "key": "{config.service_account_key}", "token_url": "{config.token_url}", "scopes": SCOPES},
        {"type": "oauth2_refresh", "token_url": "{config.oauth_token_url}", "client_id": "{config.client_id}",
         "client_secret": "{config.client_secret}", "refresh_token": "{config.refresh_token}"},
    ],
}


@pytest.fixture(scope="module")
def server() -> t.Iterator[SandboxServer]:
    with start_server(StripeWorld(1, 1_700_000_000)) as running:
        yield running


def demo_key_text() -> str:
    return json.dumps(demo_service_account_key())


def other_key_text() -> str:
    """A well-formed key that the sandbox does not know: its signature cannot verify."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return json.dumps({**demo_service_account_key(), "private_key": pem})


def test_signed_assertion_gets_token(server: SandboxServer) -> None:
    auth = ServiceAccountAuth(source_name="ga4", key=key_from_text(demo_key_text(), setting="service_account_key"), scopes=SCOPES, token_url=server.url + TOKEN_PATH)

    first = requests.get(f"{server.url}/v1beta/properties/312000111", auth=auth, timeout=5)
    second = requests.get(f"{server.url}/v1beta/properties/312000222", auth=auth, timeout=5)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["timeZone"] == "America/New_York"
    assert auth.token_requests == 1
    assert server.ga4_session.counts()["token"] == {"served": 1}


def test_assertion_claims() -> None:
    auth = ServiceAccountAuth(
        source_name="ga4", key=key_from_text(demo_key_text(), setting="k"), scopes=SCOPES, token_url="http://127.0.0.1:1/ga4/oauth2/token", wall_clock=lambda: 1_800_000_000
    )

    token = auth.assertion().reveal()
    claims = jwt.decode(token, demo_public_key_pem(), algorithms=["RS256"], audience="http://127.0.0.1:1/ga4/oauth2/token", options={"verify_exp": False, "verify_iat": False})

    assert claims == {"iss": demo_service_account_key()["client_email"], "scope": ANALYTICS_SCOPE, "aud": "http://127.0.0.1:1/ga4/oauth2/token", "iat": 1_800_000_000, "exp": 1_800_003_600}
    assert jwt.get_unverified_header(token)["kid"] == demo_service_account_key()["private_key_id"]
    assert JWT_BEARER_GRANT == "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_token_refreshed_before_expiry(server: SandboxServer) -> None:
    now = [0.0]
    auth = ServiceAccountAuth(
        source_name="ga4", key=key_from_text(demo_key_text(), setting="k"), scopes=SCOPES, token_url=server.url + TOKEN_PATH, clock=lambda: now[0]
    )

    requests.get(f"{server.url}/v1beta/properties/312000111", auth=auth, timeout=5)
    now[0] = 3599 - 61  # inside the 60 s margin before the 3599 s lifetime ends
    requests.get(f"{server.url}/v1beta/properties/312000111", auth=auth, timeout=5)
    assert auth.token_requests == 1
    now[0] = 3599 - 59
    requests.get(f"{server.url}/v1beta/properties/312000111", auth=auth, timeout=5)
    assert auth.token_requests == 2


def test_unknown_key_rejected(server: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    text = other_key_text()
    auth = ServiceAccountAuth(source_name="ga4", key=key_from_text(text, setting="service_account_key"), scopes=SCOPES, token_url=server.url + TOKEN_PATH)

    with caplog.at_level(logging.DEBUG), pytest.raises(FatalAPIError, match="rejected the service account's signed request with 400 \\(invalid_grant\\)") as raised:
        requests.get(f"{server.url}/v1beta/properties/312000111", auth=auth, timeout=5)

    pem_body = json.loads(text)["private_key"].splitlines()[1]
    assert "service_account_key" in str(raised.value)
    assert pem_body not in str(raised.value)
    assert pem_body not in caplog.text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"type": "authorized_user", "client_email": "a@b", "private_key": "x"}), "is a JSON key of another kind"),
        (json.dumps({"type": "service_account", "private_key": "x"}), "lacks client_email"),
        (json.dumps({"type": "service_account", "client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n"}), "not an unencrypted PEM RSA key"),
    ],
)
def test_invalid_key_names_setting(text: str, problem: str) -> None:
    with pytest.raises(ConfigValidationError) as raised:
        key_from_text(text, setting="service_account_key")

    (message,) = raised.value.errors
    assert message.startswith("Setting 'service_account_key' ")
    assert problem in message
    assert "c2VjcmV0" not in message
    assert "{not json" not in message


def test_unreadable_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as raised:
        key_from_file(str(tmp_path / "missing.json"), setting="service_account_key_file")
    assert raised.value.errors == [
        "Setting 'service_account_key_file' names a key file that cannot be read (FileNotFoundError); "
        "check the path and its permissions."
    ]


def test_first_of_picks_complete_alternative(server: SandboxServer) -> None:
    # Credential values are masked in every later log line of the process, so they must not be common words.
    config = {"service_account_key": demo_key_text(), "token_url": server.url + TOKEN_PATH, "client_id": "c", "client_secret": "sa-test-client-secret", "refresh_token": "sa-test-refresh-token"}
    assert isinstance(build_authenticator(AUTH, config, source_name="ga4"), ServiceAccountAuth)

    refresh_only = {"client_id": "c", "client_secret": "sa-test-client-secret", "refresh_token": "sa-test-refresh-token", "oauth_token_url": "http://127.0.0.1:1/t"}
    assert type(build_authenticator(AUTH, refresh_only, source_name="ga4")).__name__ == "OAuth2RefreshAuth"


def test_first_of_none_complete() -> None:
    with pytest.raises(ConfigValidationError) as raised:
        build_authenticator(AUTH, {"client_id": "c"}, source_name="ga4")

    assert raised.value.errors == [
        "auth: no way to authenticate has all its settings set. Set every setting of one alternative: "
        "(1) google_service_account: service_account_key; "
        "(2) oauth2_refresh: oauth_token_url, client_id, client_secret, refresh_token."
    ]


def test_key_file_alternative(server: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text(demo_key_text())
    auth = build_authenticator(
        {"type": "google_service_account", "key_file": "{config.key_file}", "token_url": "{config.token_url}", "scopes": SCOPES},
        {"key_file": str(path), "token_url": server.url + TOKEN_PATH},
        source_name="ga4",
    )

    assert requests.get(f"{server.url}/v1beta/properties/312000111/metadata", auth=auth, timeout=5).status_code == 200


def test_demo_key_token_uri_stays_local() -> None:
    # Without a token URL setting the key's own token_uri is used: the demo key must name the sandbox, never Google.
    auth = ServiceAccountAuth(source_name="ga4", key=key_from_text(demo_key_text(), setting="service_account_key"), scopes=SCOPES)

    assert auth.token_url == "http://127.0.0.1:12111" + TOKEN_PATH
