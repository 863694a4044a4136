"""Cap a bookmark at the time a read started (`replication.bookmark_cap: read_start`).

A stream paged by page number and sorted by an immutable id never skips a row,
but a row updated during the read may be on a page already read. Its new
replication value is later than the read's start, so a bookmark that stops
before the read's start makes the next run read it again.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime, timedelta

from taps.engine.change_feed import server_time

if t.TYPE_CHECKING:
    import requests

#: Time subtracted from the server's clock, for rows committed just before the first response was sent.
READ_START_MARGIN = timedelta(seconds=60)


def read_start(response: requests.Response, fallback: datetime) -> datetime:
    """Return the read's start: the response's `Date` header (else `fallback`) minus the margin."""
    return server_time(response, fallback) - READ_START_MARGIN


def capped_record(record: dict[str, t.Any], key: str, cap: datetime) -> dict[str, t.Any]:
    """Return `record`, or a copy whose `key` is `cap` when the record's value is later than `cap`.

    The value is an ISO-8601 timestamp, as the date-time transforms emit it; a
    value without an offset is read as UTC.
    """
    value = record.get(key)
    if value is None:
        return record

    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= cap:
        return record
    return {**record, key: cap.astimezone(UTC).isoformat()}
