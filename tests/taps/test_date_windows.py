"""Day windows of daily reports: bookmark, lookback, history and retention, in the account's days."""

from __future__ import annotations

from datetime import date

import pytest

from taps.engine.windows import DateWindow, ExpiredBookmarkError, WindowRules, plan_date_windows


def plan(*, bookmark: date | None = None, start: date | None = None, today: date = date(2026, 12, 4), **rules: int | str | None) -> list[DateWindow]:
    history = rules.pop("history_days", None)
    return plan_date_windows("daily", bookmark=bookmark, start=start, today=today, rules=WindowRules(**rules), history_days=history)


def test_first_run_reads_history_days_through_today() -> None:
    windows = plan(history_days=90, window_days=31)

    assert windows[0].since == date(2026, 9, 6)
    assert windows[-1].until == date(2026, 12, 4)
    assert [(w.until - w.since).days + 1 for w in windows] == [31, 31, 28]


def test_windows_are_contiguous_without_overlap() -> None:
    windows = plan(history_days=90, window_days=7)

    for earlier, later in zip(windows, windows[1:]):
        assert (later.since - earlier.until).days == 1


def test_start_setting_wins_over_history_days() -> None:
    windows = plan(start=date(2026, 12, 1), history_days=90)

    assert windows == [DateWindow(date(2026, 12, 1), date(2026, 12, 4))]


def test_bookmark_day_and_lookback_are_read_again() -> None:
    windows = plan(bookmark=date(2026, 12, 3), lookback_days=30, history_days=90)

    assert windows == [DateWindow(date(2026, 11, 3), date(2026, 12, 4))]


def test_start_after_today_reads_nothing() -> None:
    assert plan(start=date(2026, 12, 5)) == []


def test_missing_start_and_history_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no bookmark and no start date; set the start setting or declare replication.history_days"):
        plan()


def test_lookback_stops_at_the_retention_horizon() -> None:
    windows = plan(bookmark=date(2026, 12, 1), lookback_days=28, retention_days=10)

    assert windows[0].since == date(2026, 11, 25)


def test_expired_bookmark_fails_by_default() -> None:
    with pytest.raises(ExpiredBookmarkError, match="older than the 10 days the API keeps"):
        plan(bookmark=date(2026, 11, 1), retention_days=10)


def test_expired_bookmark_restarts_at_the_horizon_when_declared() -> None:
    windows = plan(bookmark=date(2026, 11, 1), retention_days=10, on_expired_bookmark="full_refresh")

    assert windows == [DateWindow(date(2026, 11, 25), date(2026, 12, 4))]


def test_old_start_moves_to_horizon(caplog: pytest.LogCaptureFixture) -> None:
    windows = plan(start=date(2020, 1, 1), retention_days=10)

    assert windows[0].since == date(2026, 11, 25)
    assert "the start day 2020-01-01 is older than the 10 days the API keeps; reading from 2026-11-25" in caplog.text
