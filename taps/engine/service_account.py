"""Google service-account auth: a JWT signed with the account's key, exchanged for access tokens.

The tap reads the JSON key that Google Cloud issues (`client_email`,
`private_key`, `token_uri`), from a secret setting that contains its text or
from a file named by a setting. Each token request carries a fresh RS256
assertion (RFC 7523, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`)
signed with PyJWT. Tokens are cached and refreshed by `AccessTokenAuth`.
Errors name the setting the key came from, never the key or its contents.
"""

from __future__ import annotations

import json
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from taps.engine.auth import OAUTH_ERROR_CODES, AccessTokenAuth, Secret, register_secret

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google accepts assertions that live at most one hour.
ASSERTION_LIFETIME_SECONDS = 3600
KEY_FIELDS = ("client_email", "private_key")


@dataclass(frozen=True)
class ServiceAccountKey:
    """The parts of a service-account JSON key the grant needs. `private_key` stays wrapped."""

    client_email: str
    private_key: Secret
    token_uri: str | None
    private_key_id: str | None
    setting: str

    def __repr__(self) -> str:
        return f"ServiceAccountKey(client_email={self.client_email!r}, private_key=****, setting={self.setting!r})"


def key_from_text(text: str | Secret, *, setting: str) -> ServiceAccountKey:
    """Parse the JSON text of a key; raise `ConfigValidationError` naming `setting`, never the text."""
    raw = text.reveal() if isinstance(text, Secret) else text
    register_secret(raw)
    try:
        document = json.loads(raw)
    except ValueError:
        _invalid(setting, "is not valid JSON; paste the whole JSON key file that Google Cloud created for the service account")
    if not isinstance(document, dict):
        _invalid(setting, "is not a JSON object; paste the whole JSON key file that Google Cloud created for the service account")
    return _key_from_document(document, setting=setting)


def key_from_file(path: str, *, setting: str) -> ServiceAccountKey:
    """Read a key file; raise `ConfigValidationError` naming `setting` when it cannot be read or parsed."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _invalid(setting, f"names a key file that cannot be read ({type(error).__name__}); check the path and its permissions")
    return key_from_text(text, setting=setting)


def _key_from_document(document: dict[str, t.Any], *, setting: str) -> ServiceAccountKey:
    kind = document.get("type")
    if kind is not None and kind != "service_account":
        _invalid(setting, "is a JSON key of another kind; create a key for a service account (type service_account)")
    missing = [name for name in KEY_FIELDS if not isinstance(document.get(name), str) or not document.get(name)]
    if missing:
        _invalid(setting, f"lacks {', '.join(missing)}; use the JSON key file as Google Cloud created it")

    pem = document["private_key"]
    register_secret(pem)
    try:
        loaded = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        loaded = None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        _invalid(setting, "has a private_key that is not an unencrypted PEM RSA key; create a new JSON key")

    token_uri = document.get("token_uri")
    key_id = document.get("private_key_id")
    return ServiceAccountKey(
        client_email=document["client_email"],
        private_key=Secret(pem),
        token_uri=token_uri if isinstance(token_uri, str) and token_uri else None,
        private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        setting=setting,
    )


def _invalid(setting: str, problem: str) -> t.NoReturn:
    raise ConfigValidationError("Auth config validation failed", errors=[f"Setting {setting!r} {problem}."])


class ServiceAccountAuth(AccessTokenAuth):
    """Bearer auth from the JWT-bearer grant of a Google service account.

    `wall_clock` gives the epoch seconds written into each assertion; `clock`
    (monotonic) decides when the access token is refreshed.
    """

    def __init__(
        self,
        *,
        source_name: str,
        key: ServiceAccountKey,
        scopes: t.Sequence[str],
        token_url: str | None = None,
        refresh_margin_seconds: float = 60,
        clock: t.Callable[[], float] = time.monotonic,
        wall_clock: t.Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        target = token_url or key.token_uri
        if not target:
            msg = (
                f"Setting {key.setting!r} holds a key without token_uri, and no token URL is set; "
                "set the token URL setting or use the key file as Google Cloud created it."
            )
            raise ConfigValidationError("Auth config validation failed", errors=[msg])
        super().__init__(
            source_name=source_name,
            token_url=target,
            scopes=scopes,
            refresh_margin_seconds=refresh_margin_seconds,
            clock=clock,
            session=session,
        )
        self.key = key
        self.wall_clock = wall_clock

    def assertion(self) -> Secret:
        """Return a fresh signed assertion for the token endpoint."""
        issued = int(self.wall_clock())
        claims = {
            "iss": self.key.client_email,
            "scope": " ".join(self.scopes),
            "aud": self.token_url,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_SECONDS,
        }
        headers = {"kid": self.key.private_key_id} if self.key.private_key_id else None
        signed = Secret(jwt.encode(claims, self.key.private_key.reveal(), algorithm="RS256", headers=headers))
        register_secret(signed)
        return signed

    def _post_token_request(self) -> requests.Response:
        return self._post_form({"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion().reveal()})

    def _token_error(self, response: requests.Response) -> Exception:
        status = response.status_code
        if status == 429 or status >= 500:
            msg = f"The token endpoint of source {self.source_name!r} returned {status}; the request can be retried."
            return RetriableAPIError(msg)

        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("error") if isinstance(body, dict) else None
        detail = f" ({code})" if code in OAUTH_ERROR_CODES else ""
        msg = (
            f"The token endpoint of source {self.source_name!r} rejected the service account's signed request "
            f"with {status}{detail}. Check that the key in setting {self.key.setting!r} is still active, that this "
            "machine's clock is right, and that the service account may use the requested scopes."
        )
        return FatalAPIError(msg)
