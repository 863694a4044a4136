"""Date windows for incremental reads: slicing, lookback and the API's retention horizon.

The lower bound is the bookmark (re-read inclusively) or the start setting.
A lookback moves it back for report streams whose recent numbers still change.
A bookmark older than the API's retention horizon is never read silently from
the horizon. The stream fails, or restarts from the horizon with a warning, as
the declaration chooses.
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)


class ExpiredBookmarkError(RuntimeError):
    """Raised when a bookmark is older than the data the API still serves."""


@dataclass(frozen=True)
class Window:
    """One slice of an incremental read: `start` inclusive, `end` exclusive (None: open)."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class WindowRules:
    """Slicing rules of a stream's incremental reads."""

    window_days: int | None = None
    lookback_days: int = 0
    retention_days: int | None = None
    on_expired_bookmark: str = "fail"


def plan_windows(
    stream: str,
    *,
    bookmark: datetime | None,
    start: datetime | None,
    now: datetime,
    rules: WindowRules,
) -> list[Window]:
    """Return the windows to read, oldest first, ending at `now`."""
    lower = _lower_bound(stream, bookmark=bookmark, start=start, now=now, rules=rules)
    if lower is None or not rules.window_days:
        return [Window(lower, None)]

    windows = []
    step = timedelta(days=rules.window_days)
    cursor = lower
    while cursor < now:
        end = min(cursor + step, now)
        windows.append(Window(cursor, end))
        cursor = end
    return windows or [Window(lower, None)]


def _lower_bound(
    stream: str,
    *,
    bookmark: datetime | None,
    start: datetime | None,
    now: datetime,
    rules: WindowRules,
) -> datetime | None:
    if bookmark is None:
        return start

    lower = bookmark - timedelta(days=rules.lookback_days)
    if rules.retention_days is None:
        return lower

    horizon = now - timedelta(days=rules.retention_days)
    return _within_retention(stream, bookmark=bookmark, lower=lower, horizon=horizon, rules=rules)


_Moment = t.TypeVar("_Moment", date, datetime)


def _start_within_retention(stream: str, *, start: date, today: date, rules: WindowRules) -> date:
    """Move a start day older than the API's retention up to the horizon, with a warning."""
    if rules.retention_days is None:
        return start
    horizon = today - timedelta(days=rules.retention_days - 1)
    if start >= horizon:
        return start
    logger.warning(
        "Stream %s: the start day %s is older than the %d days the API keeps; reading from %s.",
        stream,
        start.isoformat(),
        rules.retention_days,
        horizon.isoformat(),
    )
    return horizon


def _within_retention(stream: str, *, bookmark: _Moment, lower: _Moment, horizon: _Moment, rules: WindowRules) -> _Moment:
    """Keep the lower bound inside the API's retention, or fail or restart as the declaration chooses."""
    if bookmark >= horizon:
        return max(lower, horizon)
    if rules.on_expired_bookmark == "full_refresh":
        logger.warning(
            "Stream %s: the bookmark %s is older than the %d days the API keeps; reading again from %s. "
            "Changes between the two dates are lost upstream.",
            stream,
            bookmark.isoformat(),
            rules.retention_days,
            horizon.isoformat(),
        )
        return horizon
    msg = (
        f"Stream {stream!r}: the bookmark {bookmark.isoformat()} is older than the {rules.retention_days} days "
        "the API keeps, so reading on would leave a gap. Clear the stream's state to load it afresh, or declare "
        "on_expired_bookmark: full_refresh."
    )
    raise ExpiredBookmarkError(msg)


def format_bound(bound: datetime, request_format: str, zone: str | None) -> int | str:
    """Render a bound for a request: epoch seconds, ISO-8601, a date in the source's zone, or a SQL DATETIME in UTC.

    `sql_datetime` drops fractions of a second, which widens an inclusive lower bound.
    """
    if request_format == "epoch_seconds":
        return int(bound.timestamp())
    if request_format == "sql_datetime":
        return bound.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if request_format == "date":
        return local_date(bound, zone).isoformat()
    return bound.astimezone(UTC).isoformat()


def local_date(moment: datetime, zone: str | None) -> date:
    """Return the calendar date of `moment` in the source's time zone (UTC when unset)."""
    return moment.astimezone(ZoneInfo(zone or "UTC")).date()


@dataclass(frozen=True)
class DateWindow:
    """One slice of a daily report: `since` and `until` are both included, in the account's days."""

    since: date
    until: date


def plan_date_windows(
    stream: str,
    *,
    bookmark: date | None,
    start: date | None,
    today: date,
    rules: WindowRules,
    history_days: int | None = None,
) -> list[DateWindow]:
    """Return the day ranges to read, oldest first, ending with `today` in the account's time zone.

    The bookmark day itself is read again, and `lookback_days` more before it,
    because daily reports keep changing after the day (late conversions).
    Without a bookmark the read starts at `start`, or `history_days` before today.
    """
    lower = _first_day(stream, bookmark=bookmark, start=start, today=today, rules=rules, history_days=history_days)
    if lower > today:
        return []

    step = rules.window_days or (today - lower).days + 1
    windows = []
    since = lower
    while since <= today:
        until = min(since + timedelta(days=step - 1), today)
        windows.append(DateWindow(since, until))
        since = until + timedelta(days=1)
    return windows


def _first_day(
    stream: str,
    *,
    bookmark: date | None,
    start: date | None,
    today: date,
    rules: WindowRules,
    history_days: int | None,
) -> date:
    if bookmark is None:
        if start is not None:
            return _start_within_retention(stream, start=start, today=today, rules=rules)
        if history_days is None:
            msg = (
                f"Stream {stream!r}: there is no bookmark and no start date; set the start setting "
                "or declare replication.history_days."
            )
            raise ValueError(msg)
        return today - timedelta(days=history_days - 1)

    lower = bookmark - timedelta(days=rules.lookback_days)
    if rules.retention_days is None:
        return lower

    horizon = today - timedelta(days=rules.retention_days - 1)
    return _within_retention(stream, bookmark=bookmark, lower=lower, horizon=horizon, rules=rules)
