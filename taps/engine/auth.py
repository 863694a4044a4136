"""Auth kinds of a declaration (`bearer`, `api_key`, `basic`, `oauth2_refresh`, `google_service_account`,
`first_of`, `none`) as requests auth objects.

The classes here are small `requests.auth.AuthBase` subclasses rather than the
singer-sdk 0.54 authenticators, for these reasons:
- `OAuthAuthenticator` refreshes only once the token has already expired (no
  margin). It reads the wall clock, has no lock, does nothing on a 401 and
  raises a bare `RuntimeError`. Its `handle_error` logs up to 1000 characters
  of the token endpoint's response body at ERROR level.
- `APIKeyAuthenticator` rebuilds the query string with `parse_qs`, which drops
  parameters that have blank values and re-encodes the others.
- All of them keep credentials as plain strings in `auth_headers`/`auth_params`.

Every credential is held in a `Secret`, and each one is registered with a log
record factory that masks it in every log record of the process, including
urllib3's DEBUG request lines that carry the query string.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import threading
import time
import typing as t
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

import requests
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from taps.engine.templates import TemplateError, referenced_settings, render

LOGGER = logging.getLogger(__name__)

MASK = "****"

# A masked value shorter than this would blank out ordinary words in every log line.
MIN_MASKED_LENGTH = 4

TOKEN_REQUEST_TIMEOUT_SECONDS = 30

# Error codes that a token endpoint may return (RFC 6749 section 5.2). Only these are echoed in messages.
OAUTH_ERROR_CODES = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
)

_TEMPLATE_DESCRIPTION = "A template such as `{config.api_key}` that names a tap setting."
_SECRET_TEMPLATE = {
    "type": "string",
    "pattern": r"^\{config\.[a-z][a-z0-9_]*\}$",
    "description": (
        "Exactly one `{config.NAME}` template, so the secret lives in the tap config, never in the declaration."
    ),
}


def _secret_property(description: str) -> dict[str, t.Any]:
    return {**_SECRET_TEMPLATE, "description": f"{description} {_SECRET_TEMPLATE['description']}"}


def _kind_property(kind: str) -> dict[str, t.Any]:
    return {"const": kind, "description": "The auth kind."}


AUTH_SCHEMAS: dict[str, dict[str, t.Any]] = {
    "none": {
        "type": "object",
        "description": "No credentials are sent.",
        "properties": {"type": _kind_property("none")},
        "required": ["type"],
        "additionalProperties": False,
    },
    "bearer": {
        "type": "object",
        "description": "Send `Authorization: Bearer <token>` on every request.",
        "properties": {
            "type": _kind_property("bearer"),
            "token": _secret_property("The bearer token."),
        },
        "required": ["type", "token"],
        "additionalProperties": False,
    },
    "api_key": {
        "type": "object",
        "description": "Send an API key in a header or a query parameter on every request.",
        "properties": {
            "type": _kind_property("api_key"),
            "name": {"type": "string", "minLength": 1, "description": "The header or query parameter name."},
            "value": _secret_property("The API key."),
            "in": {
                "enum": ["header", "query"],
                "default": "header",
                "description": "Where the key goes. Prefer `header`, because URLs end up in proxy and server logs.",
            },
        },
        "required": ["type", "name", "value"],
        "additionalProperties": False,
    },
    "basic": {
        "type": "object",
        "description": "Send HTTP Basic credentials (RFC 7617, UTF-8) on every request.",
        "properties": {
            "type": _kind_property("basic"),
            "username": {
                "type": "string",
                "description": f"The user name; Stripe puts its secret key here. {_TEMPLATE_DESCRIPTION}",
            },
            "password": {
                "type": "string",
                "description": f"The password; may render to an empty string. {_TEMPLATE_DESCRIPTION}",
            },
        },
        "required": ["type", "username", "password"],
        "additionalProperties": False,
    },
    "oauth2_refresh": {
        "type": "object",
        "description": (
            "OAuth 2.0 refresh-token grant: exchange a stored refresh token for short-lived access tokens "
            "and send them as `Authorization: Bearer`."
        ),
        "properties": {
            "type": _kind_property("oauth2_refresh"),
            "token_url": {
                "type": "string",
                "minLength": 1,
                "description": f"The token endpoint, such as https://oauth2.googleapis.com/token. {_TEMPLATE_DESCRIPTION}",
            },
            "client_id": {"type": "string", "minLength": 1, "description": f"The OAuth client id. {_TEMPLATE_DESCRIPTION}"},
            "client_secret": _secret_property("The OAuth client secret."),
            "refresh_token": _secret_property("The stored refresh token."),
            "scopes": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "Scopes to request, sent space-separated as `scope`; omit to keep the granted ones.",
            },
            "refresh_margin_seconds": {
                "type": "integer",
                "minimum": 0,
                "default": 60,
                "description": (
                    "Refresh this many seconds before the access token expires, capped at half its lifetime."
                ),
            },
        },
        "required": ["type", "token_url", "client_id", "client_secret", "refresh_token"],
        "additionalProperties": False,
    },
}

AUTH_SCHEMAS["google_service_account"] = {
    "type": "object",
    "description": (
        "Google service account: a JWT signed with the account's JSON key (RS256) is exchanged at the key's "
        "token_uri for short-lived access tokens, sent as `Authorization: Bearer`."
    ),
    "properties": {
        "type": _kind_property("google_service_account"),
        "key": _secret_property("The JSON key's text."),
        "key_file": {"type": "string", "minLength": 1, "description": f"Path of the JSON key file. {_TEMPLATE_DESCRIPTION}"},
        "token_url": {
            "type": "string",
            "minLength": 1,
            "description": f"Token endpoint that overrides the key's token_uri when its setting is set. {_TEMPLATE_DESCRIPTION}",
        },
        "scopes": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "Scopes written into the signed request, such as https://www.googleapis.com/auth/analytics.readonly.",
        },
        "refresh_margin_seconds": AUTH_SCHEMAS["oauth2_refresh"]["properties"]["refresh_margin_seconds"],
    },
    "required": ["type", "scopes"],
    "oneOf": [{"required": ["key"]}, {"required": ["key_file"]}],
    "additionalProperties": False,
}

AUTH_SCHEMAS["first_of"] = {
    "type": "object",
    "description": (
        "Several ways to authenticate: the first alternative whose settings are all set is used. "
        "When none is complete, the tap stops at start and names each alternative's settings."
    ),
    "properties": {
        "type": _kind_property("first_of"),
        "alternatives": {
            "type": "array",
            "minItems": 2,
            "items": {"oneOf": [schema for kind, schema in AUTH_SCHEMAS.items() if kind != "none"]},
            "description": "Auth objects of any other kind except none, tried in order.",
        },
    },
    "required": ["type", "alternatives"],
    "additionalProperties": False,
}

AUTH_SCHEMA: dict[str, t.Any] = {
    "description": "How requests are authenticated; `type` selects the kind.",
    "oneOf": list(AUTH_SCHEMAS.values()),
}


class Secret:
    """A credential whose `str`, `repr` and format show `****`, while `reveal()` returns the value.

    It is not a `str` subclass, so concatenation or JSON encoding fails instead of leaking the value.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.reveal() if isinstance(value, Secret) else str(value)

    def reveal(self) -> str:
        """Return the secret value, for the one place that sends it."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, t.Any]) -> Secret:
        return self

    def __reduce__(self) -> t.NoReturn:
        msg = "Secret values cannot be pickled, so they never reach a file or another process."
        raise TypeError(msg)


class ReauthorizationRequired(FatalAPIError):
    """Raised when the token endpoint rejects the refresh token (`invalid_grant`)."""


# Log masking ---------------------------------------------------------------

_masked_values: set[str] = set()
_mask_pattern: re.Pattern[str] | None = None
_mask_lock = threading.Lock()
_factory_installed = False


def register_secret(secret: Secret | str) -> None:
    """Mask a value, and its URL-encoded forms, in every log record created from now on."""
    value = secret.reveal() if isinstance(secret, Secret) else secret
    if len(value) < MIN_MASKED_LENGTH:
        # NOTE: values shorter than MIN_MASKED_LENGTH characters are sent but not masked in logs.
        return

    global _mask_pattern
    with _mask_lock:
        variants = {value, quote(value, safe=""), quote_plus(value), quote(value)}
        if variants <= _masked_values:
            return
        _masked_values.update(variants)
        ordered = sorted(_masked_values, key=len, reverse=True)
        _mask_pattern = re.compile("|".join(re.escape(item) for item in ordered))
    install_log_masking()


def mask_secrets(text: str) -> str:
    """Replace every registered secret in a text with `****`."""
    pattern = _mask_pattern
    if pattern is None:
        return text
    return pattern.sub(MASK, text)


def install_log_masking() -> None:
    """Wrap the process's log record factory so records never carry a registered secret.

    A record factory runs for every record of every logger, whichever handlers
    are attached later (pytest's caplog, singer-sdk's set-up), which a
    `logging.Filter` on one logger or handler cannot guarantee.
    """
    global _factory_installed
    with _mask_lock:
        if _factory_installed:
            return
        _factory_installed = True
        original = logging.getLogRecordFactory()

    def masking_factory(*args: t.Any, **kwargs: t.Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(masking_factory)


def _mask_record(record: logging.LogRecord) -> None:
    if _mask_pattern is None:
        return

    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string is reported by the handler, but without the args
        record.msg, record.args = mask_secrets(str(record.msg)), ()
        return

    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, ()

    if record.exc_info and record.exc_info[1] is not None:
        traceback_text = logging.Formatter().formatException(record.exc_info)
        masked_traceback = mask_secrets(traceback_text)
        if masked_traceback != traceback_text:
            # Formatters print `exc_text` when it is set, instead of formatting exc_info again.
            record.exc_text = masked_traceback


# Static credentials ---------------------------------------------------------


class NoAuth(AuthBase):
    """Send requests unchanged."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request

    def __repr__(self) -> str:
        return "NoAuth()"


class HeaderAuth(AuthBase):
    """Set one header whose whole value is secret (`Authorization: Bearer …`, `X-Api-Key: …`)."""

    def __init__(self, name: str, value: Secret) -> None:
        self.name = name
        self.value = value
        register_secret(value)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.name] = self.value.reveal()
        return request

    def __repr__(self) -> str:
        return f"HeaderAuth(name={self.name!r}, value={MASK})"


class QueryParamAuth(AuthBase):
    """Add an API key as a query parameter, keeping the request's other parameters as they are."""

    def __init__(self, name: str, value: Secret) -> None:
        self.name = name
        self.value = value
        register_secret(value)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # singer-sdk applies auth twice per request (session.auth, then the
        # authenticator), so an earlier copy of the parameter is removed first.
        url = _without_query_param(request.url or "", self.name)
        request.prepare_url(url, {self.name: self.value.reveal()})
        return request

    def __repr__(self) -> str:
        return f"QueryParamAuth(name={self.name!r}, value={MASK})"


def _without_query_param(url: str, name: str) -> str:
    """Return the URL without the pairs named `name`; other pairs keep their exact encoding."""
    parts = urlsplit(url)
    if not parts.query:
        return url

    kept = []
    for pair in parts.query.split("&"):
        decoded = parse_qsl(pair, keep_blank_values=True)
        if decoded and decoded[0][0] == name:
            continue
        kept.append(pair)
    return urlunsplit(parts._replace(query="&".join(kept)))


def basic_header(username: Secret, password: Secret) -> Secret:
    """Return the `Authorization` value of HTTP Basic auth, with UTF-8 credentials as RFC 7617 allows."""
    credentials = f"{username.reveal()}:{password.reveal()}".encode()
    return Secret("Basic " + base64.b64encode(credentials).decode("ascii"))


# OAuth 2.0 refresh-token grant -----------------------------------------------


class AccessTokenAuth(AuthBase):
    """Bearer auth from short-lived access tokens, refreshed before expiry and once on a 401.

    Subclasses send the grant (`_post_token_request`) and describe its errors
    (`_token_error`). Share one instance between every stream of a tap. A lock
    makes one thread refresh while the others wait for the new token.
    """

    def __init__(
        self,
        *,
        source_name: str,
        token_url: str,
        scopes: t.Sequence[str] = (),
        refresh_margin_seconds: float = 60,
        clock: t.Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.source_name = source_name
        self.token_url = token_url
        self.scopes = tuple(scopes)
        self.refresh_margin_seconds = refresh_margin_seconds
        self.clock = clock
        self.session = session or requests.Session()
        self.token_requests = 0

        self._lock = threading.Lock()
        self._access_token: Secret | None = None
        self._refresh_at: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source_name={self.source_name!r}, token_url={self.token_url!r}, tokens={MASK})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._current_header().reveal()

        # Digest auth in requests uses the same response hook. Registering it
        # once keeps a request that is authenticated twice from being resent twice.
        if self._resend_on_401 not in request.hooks["response"]:
            request.register_hook("response", self._resend_on_401)
        return request

    def _current_header(self) -> Secret:
        with self._lock:
            if self._needs_refresh():
                self._refresh()
            return self._bearer_header()

    def _needs_refresh(self) -> bool:
        if self._access_token is None:
            return True
        return self._refresh_at is not None and self.clock() >= self._refresh_at

    def _bearer_header(self) -> Secret:
        assert self._access_token is not None
        return Secret("Bearer " + self._access_token.reveal())

    def _resend_on_401(self, response: requests.Response, **kwargs: t.Any) -> requests.Response:
        """Refresh the token once and resend a request that the API rejected with 401."""
        if response.status_code != 401:
            return response

        sent_header = response.request.headers.get("Authorization")
        with self._lock:
            # Another thread may have refreshed since this request was sent.
            if self._access_token is None or sent_header == self._bearer_header().reveal():
                self._refresh()
            header = self._bearer_header()

        LOGGER.info("Source %s returned 401, so the request is resent once with a refreshed access token", self.source_name)
        return self._resend(response, header, kwargs)

    def _resend(self, response: requests.Response, header: Secret, send_kwargs: dict[str, t.Any]) -> requests.Response:
        # Read and release the first response so its connection can be reused.
        response.content  # noqa: B018
        response.close()

        retry = response.request.copy()
        # `copy()` shares the hooks dict with the original request, so replace it rather than edit it.
        retry.hooks = {**retry.hooks, "response": [hook for hook in retry.hooks["response"] if hook != self._resend_on_401]}
        extract_cookies_to_jar(retry._cookies, response.request, response.raw)  # type: ignore[attr-defined]
        retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined]
        retry.headers["Authorization"] = header.reveal()

        # NOTE: a request body sent from a generator or file cannot be replayed here.
        try:
            second = response.connection.send(retry, **send_kwargs)
        except requests.exceptions.RequestException as error:
            path = urlsplit(retry.url or "").path
            msg = f"{type(error).__name__} while resending a request to {self.source_name} path {path} after a 401"
            raise type(error)(msg) from None

        second.history.append(response)
        second.request = retry
        return second

    def _refresh(self) -> None:
        """Exchange the refresh token for a new access token. The caller holds the lock."""
        started = self.clock()
        self.token_requests += 1
        response = self._post_token_request()

        if response.status_code >= 400:
            raise self._token_error(response)

        body = _json_object(response)
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            msg = (
                f"The token endpoint of source {self.source_name!r} returned {response.status_code} without an "
                "access_token; check token_url in the declaration."
            )
            raise FatalAPIError(msg)

        self._access_token = Secret(access_token)
        register_secret(self._access_token)
        self._accept_token_body(body)

        lifetime = _seconds(body.get("expires_in"))
        if lifetime is None:
            # Without a lifetime only a 401 triggers the next refresh.
            self._refresh_at = None
        else:
            margin = min(self.refresh_margin_seconds, lifetime / 2)
            self._refresh_at = started + lifetime - margin
        LOGGER.debug("Refreshed the access token of source %s; it expires in %s s", self.source_name, lifetime)

    def _accept_token_body(self, body: dict[str, t.Any]) -> None:
        """Take what else a token response carries; the base class needs only the access token."""

    def _post_token_request(self) -> requests.Response:
        """Send the grant to the token endpoint and return the response."""
        raise NotImplementedError

    def _token_error(self, response: requests.Response) -> Exception:
        """Return the error to raise for a token response with status 400 or above."""
        raise NotImplementedError

    def _post_form(self, form: dict[str, str]) -> requests.Response:
        try:
            # `auth=NoAuth()` overrides any `session.auth`, which may be this very object on a stream's session.
            return self.session.post(
                self.token_url,
                data=form,
                headers={"Accept": "application/json"},
                auth=NoAuth(),
                timeout=TOKEN_REQUEST_TIMEOUT_SECONDS,
            )
        except requests.exceptions.RequestException as error:
            msg = f"{type(error).__name__} while requesting an access token for source {self.source_name!r}"
            raise RetriableAPIError(msg) from None


class OAuth2RefreshAuth(AccessTokenAuth):
    """Bearer auth from an OAuth 2.0 refresh-token grant."""

    def __init__(
        self,
        *,
        source_name: str,
        token_url: str,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret,
        scopes: t.Sequence[str] = (),
        refresh_margin_seconds: float = 60,
        clock: t.Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(
            source_name=source_name,
            token_url=token_url,
            scopes=scopes,
            refresh_margin_seconds=refresh_margin_seconds,
            clock=clock,
            session=session,
        )
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        register_secret(client_secret)
        register_secret(refresh_token)

    def __repr__(self) -> str:
        return f"OAuth2RefreshAuth(source_name={self.source_name!r}, token_url={self.token_url!r}, tokens={MASK})"

    def _accept_token_body(self, body: dict[str, t.Any]) -> None:
        """Keep a rotated refresh token for the rest of the run."""
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            # NOTE: a rotated refresh token is used for the rest of this run but not written back to the config.
            self.refresh_token = Secret(rotated)
            register_secret(self.refresh_token)

    def _post_token_request(self) -> requests.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret.reveal(),
            "refresh_token": self.refresh_token.reveal(),
        }
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        return self._post_form(form)

    def _token_error(self, response: requests.Response) -> Exception:
        status = response.status_code
        if status == 429 or status >= 500:
            msg = f"The token endpoint of source {self.source_name!r} returned {status}; the request can be retried."
            return RetriableAPIError(msg)

        code = _json_object(response).get("error")
        code = code if code in OAUTH_ERROR_CODES else None
        if code == "invalid_grant":
            msg = (
                f"The token endpoint rejected the refresh token of source {self.source_name!r} (invalid_grant): "
                f"it has expired or been revoked. Re-authorise the source {self.source_name!r} and store the new "
                "refresh token in its config."
            )
            return ReauthorizationRequired(msg)

        detail = f" ({code})" if code else ""
        msg = (
            f"The token endpoint of source {self.source_name!r} returned {status}{detail}; check client_id, "
            "client_secret and scopes in the tap config."
        )
        return FatalAPIError(msg)


def _json_object(response: requests.Response) -> dict[str, t.Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _seconds(value: t.Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


# Building from a declaration --------------------------------------------------

_SECRET_KEYS = frozenset({"token", "value", "username", "password", "client_secret", "refresh_token"})


def build_authenticator(
    auth: t.Mapping[str, t.Any],
    config: t.Mapping[str, t.Any],
    *,
    source_name: str,
    clock: t.Callable[[], float] = time.monotonic,
    session: requests.Session | None = None,
) -> AuthBase:
    """Validate a declaration's `auth` mapping, render its templates from the tap config and build its auth object.

    Raises `ConfigValidationError` listing every invalid key or missing setting at once.
    """
    kind = auth.get("type")
    _check_declaration(auth, kind)
    if kind == "first_of":
        chosen = _first_complete(auth, config)
        return build_authenticator(chosen, config, source_name=source_name, clock=clock, session=session)
    if kind == "google_service_account":
        return _service_account_auth(auth, config, source_name=source_name, clock=clock, session=session)
    values = _render_values(auth, config, kind)

    if kind == "none":
        return NoAuth()
    if kind == "bearer":
        return HeaderAuth("Authorization", Secret("Bearer " + values["token"].reveal()))
    if kind == "api_key":
        if auth.get("in", "header") == "query":
            return QueryParamAuth(auth["name"], values["value"])
        return HeaderAuth(auth["name"], values["value"])
    if kind == "basic":
        register_secret(values["username"])
        register_secret(values["password"])
        return HeaderAuth("Authorization", basic_header(values["username"], values["password"]))
    return OAuth2RefreshAuth(
        source_name=source_name,
        token_url=str(values["token_url"]),
        client_id=str(values["client_id"]),
        client_secret=values["client_secret"],
        refresh_token=values["refresh_token"],
        scopes=auth.get("scopes", ()),
        refresh_margin_seconds=auth.get("refresh_margin_seconds", 60),
        clock=clock,
        session=session,
    )


def _check_declaration(auth: t.Mapping[str, t.Any], kind: t.Any) -> None:
    if kind not in AUTH_SCHEMAS:
        allowed = ", ".join(AUTH_SCHEMAS)
        raise ConfigValidationError(
            "Auth declaration validation failed",
            errors=[f"auth.type: {kind!r} is not one of the allowed values: {allowed}"],
        )

    validator = Draft202012Validator(AUTH_SCHEMAS[kind])
    problems = [_describe_problem(error) for error in validator.iter_errors(dict(auth))]
    if problems:
        raise ConfigValidationError("Auth declaration validation failed", errors=problems)


def _describe_problem(error: ValidationError) -> str:
    place = "auth." + (".".join(map(str, error.absolute_path)) or "(top level)")
    if error.validator == "pattern":
        return (
            f"{place}: must be exactly one template such as {{config.{error.absolute_path[-1]}}}, "
            "so the secret stays in the tap config and out of the declaration"
        )
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{place}: {error.instance!r} is not one of the allowed values: {allowed}"
    return f"{place}: {error.message}"


def _render_values(auth: t.Mapping[str, t.Any], config: t.Mapping[str, t.Any], kind: str) -> dict[str, t.Any]:
    """Render each template, wrap secrets in `Secret` and report every unset setting together."""
    required = AUTH_SCHEMAS[kind]["required"]
    values: dict[str, t.Any] = {}
    problems: list[str] = []

    for key in required:
        if key == "type":
            continue
        try:
            rendered = render(auth[key], config)
        except TemplateError as error:
            problems.append(f"auth.{key}: {error.args[0]}")
            continue

        empty_allowed = key == "password"
        if rendered is None or (rendered == "" and not empty_allowed):
            names = ", ".join(repr(name) for name in referenced_settings(str(auth[key]))) or "it names"
            problems.append(f"auth.{key}: setting {names} has no value; set it in the tap config.")
            continue
        values[key] = Secret(str(rendered)) if key in _SECRET_KEYS else rendered

    if problems:
        raise ConfigValidationError("Auth config validation failed", errors=problems)
    return values


# Several alternatives and service accounts ------------------------------------


def credential_settings(auth: t.Mapping[str, t.Any]) -> list[str]:
    """Return the settings an auth object needs set: those its required keys and its key source name."""
    kind = auth.get("type")
    keys = [key for key in AUTH_SCHEMAS.get(str(kind), {}).get("required", ()) if key not in ("type", "scopes")]
    if kind == "google_service_account":
        keys = [key for key in ("key", "key_file") if key in auth]
    names: list[str] = []
    for key in keys:
        for name in referenced_settings(str(auth.get(key, ""))):
            if name not in names:
                names.append(name)
    return names


def _is_complete(auth: t.Mapping[str, t.Any], config: t.Mapping[str, t.Any]) -> bool:
    return all(config.get(name) not in (None, "") for name in credential_settings(auth))


def _first_complete(auth: t.Mapping[str, t.Any], config: t.Mapping[str, t.Any]) -> t.Mapping[str, t.Any]:
    for alternative in auth["alternatives"]:
        if _is_complete(alternative, config):
            return alternative
    raise ConfigValidationError("Auth config validation failed", errors=auth_config_problems(auth, config))


def auth_config_problems(auth: t.Mapping[str, t.Any], config: t.Mapping[str, t.Any]) -> list[str]:
    """Return a problem when no alternative of a `first_of` auth has all its settings; other kinds pass here."""
    if auth.get("type") != "first_of" or any(_is_complete(item, config) for item in auth.get("alternatives", ())):
        return []
    listing = "; ".join(
        f"({number}) {item['type']}: {', '.join(credential_settings(item)) or 'no settings'}"
        for number, item in enumerate(auth.get("alternatives", ()), start=1)
    )
    return [f"auth: no way to authenticate has all its settings set. Set every setting of one alternative: {listing}."]


def _service_account_auth(
    auth: t.Mapping[str, t.Any],
    config: t.Mapping[str, t.Any],
    *,
    source_name: str,
    clock: t.Callable[[], float],
    session: requests.Session | None,
) -> AuthBase:
    from taps.engine.service_account import ServiceAccountAuth, key_from_file, key_from_text

    source_key = "key" if "key" in auth else "key_file"
    setting = (referenced_settings(str(auth[source_key])) or [source_key])[0]
    value = render(auth[source_key], config)
    if value in (None, ""):
        raise ConfigValidationError(
            "Auth config validation failed", errors=[f"auth.{source_key}: setting {setting!r} has no value; set it in the tap config."]
        )
    if source_key == "key":
        key = key_from_text(Secret(str(value)), setting=setting)
    else:
        key = key_from_file(str(value), setting=setting)
    token_url = render(auth["token_url"], config) if "token_url" in auth else None
    return ServiceAccountAuth(
        source_name=source_name,
        key=key,
        scopes=auth["scopes"],
        token_url=str(token_url) if token_url else None,
        refresh_margin_seconds=auth.get("refresh_margin_seconds", 60),
        clock=clock,
        session=session,
    )
