"""Declared per-field transforms: API value formats to the types the schema promises.

Each transform takes the raw value and its field spec and returns the value to
emit, or raises `FieldTransformError` naming the field and the expected form,
never the value itself.
"""

from __future__ import annotations

import re
import typing as t
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if t.TYPE_CHECKING:
    from taps.engine.declaration import FieldSpec


class FieldTransformError(ValueError):
    """Raised when a declared transform cannot apply to a value; names the field, never the value."""


def _fail(spec: FieldSpec, expected: str, value: t.Any) -> t.NoReturn:
    msg = f"Field {spec.name!r}: transform {spec.transform!r} expected {expected}, got a {type(value).__name__}."
    raise FieldTransformError(msg)


def epoch_seconds(value: t.Any, spec: FieldSpec) -> str | None:
    """Convert seconds since 1970 to an ISO-8601 UTC timestamp."""
    if value is None:
        return None
    number = _number(value, spec, "epoch seconds")
    return datetime.fromtimestamp(float(number), tz=UTC).isoformat()


def epoch_milliseconds(value: t.Any, spec: FieldSpec) -> str | None:
    """Convert milliseconds since 1970 to an ISO-8601 UTC timestamp."""
    if value is None:
        return None
    number = _number(value, spec, "epoch milliseconds")
    return datetime.fromtimestamp(float(number) / 1000, tz=UTC).isoformat()


def yyyymmdd(value: t.Any, spec: FieldSpec) -> str | None:
    """Convert a `YYYYMMDD` date (GA4's `date` dimension) to ISO `YYYY-MM-DD`."""
    if value is None:
        return None
    text = str(value)
    if len(text) != 8 or not text.isdigit():
        _fail(spec, "a YYYYMMDD date", value)
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8])).isoformat()
    except ValueError:
        _fail(spec, "a valid YYYYMMDD date", value)


def local_timestamp(value: t.Any, spec: FieldSpec) -> str | None:
    """Read a timestamp written without a zone in the field's declared zone; return ISO-8601 UTC.

    A value that carries its own offset keeps it.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        _fail(spec, "a timestamp string", value)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        _fail(spec, "an ISO-8601 or 'YYYY-MM-DD HH:MM:SS' timestamp", value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(spec))
    return parsed.astimezone(UTC).isoformat()


def numeric_string(value: t.Any, spec: FieldSpec) -> int | Decimal | None:
    """Convert a number sent as text ("14.35", "185") to the field's declared JSON type."""
    if value is None or value == "":
        return None
    if spec.type == "integer" and type(value) is str and value.isdigit() and value.isascii():
        return int(value)  # the common case: an int64 sent as a string of digits

    # Values already typed upstream (a report's metric headers) pass unchanged.
    if type(value) is int and spec.type == "integer":
        return value
    if type(value) is Decimal and spec.type == "number" and value.is_finite():
        return value

    number = _number(value, spec, "a number or numeric string")
    if spec.type == "integer":
        if number != number.to_integral_value():
            _fail(spec, "a whole number", value)
        return int(number)
    return number


def resource_name_id(value: t.Any, spec: FieldSpec) -> int | str | None:
    """Read the id at the end of a resource name: 'customers/123' gives 123.

    Google Ads puts `resourceName` on every object of a result, even when the
    query did not select the object's `id`.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "/" not in value:
        _fail(spec, "a resource name such as 'customers/1234567890'", value)
    last = value.rsplit("/", 1)[1]
    if spec.type == "integer":
        if not last.isdigit():
            _fail(spec, "a resource name ending in a numeric id", value)
        return int(last)
    return last


#: The placeholder for a path segment that contains an e-mail address or a token.
REDACTED_SEGMENT = "(redacted)"
# Query strings, fragments, matrix parameters and stray `&` parameters, also still encoded once more.
_URL_CUT = re.compile(r"[?#;&]|%3f|%23|%3b|%26", re.IGNORECASE)
_SCHEME_AND_HOST = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//[^/]*")
_EMAIL_MARK = re.compile(r"@|%40", re.IGNORECASE)
_WORD_RUN = re.compile(r"[A-Za-z0-9_]{16,}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def url_path(value: t.Any, spec: FieldSpec) -> str | None:
    """Keep only the path of a URL, without the parts that can carry e-mail addresses and tokens (see `cut_url`)."""
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(spec, "a URL or path string", value)
    return cut_url(value)[0]


def cut_url(text: str) -> tuple[str, int]:
    """Return the path of a URL or path and how many of its segments were redacted.

    The text is percent-decoded once, cut at the first `?`, `#`, `;` or `&`
    (also when still encoded), and loses its scheme and host. A segment that
    contains an e-mail address, a UUID or a token (16 or more letters, digits or
    underscores in a row with at least one letter and one digit, such as
    `tok_9f8e7d6c5b4a3928`) becomes `(redacted)`.
    """
    decoded = unquote(text, errors="replace")
    path = _URL_CUT.split(decoded, maxsplit=1)[0]
    path, hosts = _SCHEME_AND_HOST.subn("", path, count=1)
    if hosts and not path:
        path = "/"

    safe_segments: list[str] = []
    redacted = 0
    for segment in path.split("/"):
        if _is_personal_segment(segment):
            safe_segments.append(REDACTED_SEGMENT)
            redacted += 1
        else:
            safe_segments.append(segment)
    return "/".join(safe_segments), redacted


def _is_personal_segment(segment: str) -> bool:
    """Tell whether a path segment contains an e-mail address, a UUID or a token-like run of letters and digits."""
    if _EMAIL_MARK.search(segment) or _UUID.search(segment):
        return True
    return any(
        any(char.isdigit() for char in run) and any(char.isalpha() for char in run)
        for run in _WORD_RUN.findall(segment)
    )


def is_time_zone(name: str) -> bool:
    """Tell whether `name` is an IANA time zone known to this Python."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone(spec: FieldSpec) -> ZoneInfo:
    """Return the field's declared IANA time zone (UTC when none is declared)."""
    try:
        return ZoneInfo(spec.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"Field {spec.name!r}: unknown time zone {spec.timezone!r}; use an IANA name such as 'Europe/Berlin'."
        raise FieldTransformError(msg) from None


def _number(value: t.Any, spec: FieldSpec, expected: str) -> Decimal:
    if isinstance(value, bool):
        _fail(spec, expected, value)
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (str, int, float, Decimal)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        _fail(spec, expected, value)
    return number


TRANSFORMS: dict[str, t.Callable[[t.Any, FieldSpec], t.Any]] = {
    "epoch_seconds": epoch_seconds,
    "epoch_milliseconds": epoch_milliseconds,
    "yyyymmdd": yyyymmdd,
    "local_timestamp": local_timestamp,
    "numeric_string": numeric_string,
    "resource_name_id": resource_name_id,
    "url_path": url_path,
}
