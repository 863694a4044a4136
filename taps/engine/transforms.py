"""Declared per-field transforms: API value formats to the types the schema promises.

Each transform takes the raw value and its field spec and returns the value to
emit, or raises `FieldTransformError` naming the field and the expected form,
never the value itself.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
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


def url_path(value: t.Any, spec: FieldSpec) -> str | None:
    """Cut a URL or path at its query string or fragment, which can carry e-mail addresses and tokens."""
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(spec, "a URL or path string", value)
    return value.split("?", 1)[0].split("#", 1)[0]


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
