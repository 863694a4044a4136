"""Request windows of a declared stream: time slices, or day ranges in the account's time zone.

`WindowPlanningMixin` plans the windows of one partition from its bookmark,
the start setting, lookback and retention, and turns a window into request
parameters. `DeclarativeStream` runs each window through its paginator.
"""

from __future__ import annotations

import json
import re
import typing as t
from datetime import UTC, date, datetime, timedelta

from singer_sdk.exceptions import ConfigValidationError

from taps.engine.templates import render, render_mapping
from taps.engine.transforms import is_time_zone
from taps.engine.windows import WindowRules, format_bound, local_date, plan_date_windows, plan_windows

if t.TYPE_CHECKING:
    import logging

    from singer_sdk.helpers.types import Context

    from taps.engine.declaration import StreamSpec


_CONTEXT_PLACEHOLDER = re.compile(r"\{context\.([A-Za-z_][A-Za-z0-9_]*)\}")


class PartitionValueError(RuntimeError):
    """Raised when a value the API returned for one partition, such as an account's time zone, is unusable.

    `DeclarativeStream.get_records` stops only that partition, as for a spent quota.
    """


class WindowPlanningMixin:
    """Window planning for `DeclarativeStream`; list it before `RESTStream` in the bases."""

    # Provided by DeclarativeStream and RESTStream.
    spec: StreamSpec
    name: str
    logger: logging.Logger
    replication_key: str | None
    clock: t.Callable[[], datetime]
    config: t.Mapping[str, t.Any]
    get_context_state: t.Callable[[Context | None], dict[str, t.Any]]
    _template_values: t.Callable[[Context | None], dict[str, dict[str, t.Any]]]

    #: Set after the first warning about a start day after today, so each stream warns once.
    _warned_future_start = False

    def _windows(self, context: Context | None) -> list[dict[str, str | None] | None]:
        """Plan the request windows from the bookmark, start setting, lookback and retention."""
        replication = self.spec.replication
        if replication is None or not (replication.request_param or replication.request_range or self._window_templated):
            return [None]

        start = self.config.get(replication.start_setting)
        rules = WindowRules(
            window_days=replication.window_days,
            lookback_days=int(render(replication.lookback_days, self.config) or 0),
            retention_days=replication.retention_days,
            on_expired_bookmark=replication.on_expired_bookmark,
        )
        if replication.request_format == "date":
            return self._date_windows(context, rules, start)

        bookmark = self._state_bookmark(context)
        windows = plan_windows(
            self.name,
            bookmark=bookmark,
            start=_parse_timestamp(str(start)) if start else None,
            now=self.clock(),
            rules=rules,
        )
        return [
            {"start": w.start.isoformat() if w.start else None, "end": w.end.isoformat() if w.end else None}
            for w in windows
        ]

    @property
    def _is_daily_report(self) -> bool:
        return self.spec.replication is not None and self.spec.replication.request_format == "date"

    @property
    def _window_templated(self) -> bool:
        texts = [str(value) for value in self.spec.params.values()]
        if self.spec.body is not None:
            texts.append(json.dumps(self.spec.body))
        return any("{window." in text for text in texts)

    def _date_windows(self, context: Context | None, rules: WindowRules, start: t.Any) -> list[dict[str, str | None] | None]:
        """Plan day ranges in the account's time zone: `start` and `end` are both included."""
        replication = self.spec.replication
        assert replication is not None
        zone = self._time_zone(context)
        today = local_date(self.clock(), zone)
        try:
            windows = plan_date_windows(
                self.name,
                bookmark=self._state_bookmark_day(context, today),
                # The start setting names a day as written, whatever its time of day or offset.
                start=date.fromisoformat(str(start)[:10]) if start else None,
                today=today,
                rules=rules,
                history_days=replication.history_days,
            )
        except ValueError as error:
            raise ConfigValidationError("Config validation failed", errors=[str(error)]) from None
        if not windows and not self._warned_future_start:
            self._warned_future_start = True
            self.logger.warning(
                "Stream %s: setting %s names a day after today (%s in time zone %s), so no days are read; "
                "set it to a past day to load history.",
                self.name, replication.start_setting, today, zone or "UTC",
            )
        self.logger.info(
            "Stream %s: reading %d window(s) of days through %s (time zone %s)", self.name, len(windows), today, zone or "UTC"
        )
        return [{"start": w.since.isoformat(), "end": w.until.isoformat(), "days": "true"} for w in windows]

    def _state_bookmark_day(self, context: Context | None, today: date) -> date | None:
        """Return the bookmark's day, never later than the account's today."""
        state = self.get_context_state(context)
        value = state.get("replication_key_value") if state else None
        if value is None or self.replication_key != state.get("replication_key"):
            return None
        try:
            bookmark = date.fromisoformat(str(value)[:10])
        except ValueError:
            msg = (
                f"Stream {self.name!r}: the bookmark in the state is not a YYYY-MM-DD day; "
                "fix or clear this stream's state."
            )
            raise ConfigValidationError("State validation failed", errors=[msg]) from None
        if bookmark > today:
            self.logger.warning(
                "Stream %s: the bookmark %s is after the account's today %s; reading from today instead",
                self.name, bookmark, today,
            )
            return today
        return bookmark

    def _time_zone(self, context: Context | None) -> str | None:
        """Return the declared IANA time zone, rendered from the config or the context, after checking it."""
        replication = self.spec.replication
        if replication is None or not replication.timezone:
            return None
        zone = render(replication.timezone, self.config, self._template_values(context))
        if zone and is_time_zone(str(zone)):
            return str(zone)

        context_keys = _CONTEXT_PLACEHOLDER.findall(replication.timezone)
        if context_keys:
            raise PartitionValueError(self._api_time_zone_message(context, context_keys[0], zone))
        msg = (
            f"Stream {self.name!r}: replication.timezone {replication.timezone!r} gives {zone!r}, which is not an "
            "IANA time zone such as 'Europe/Berlin'. Fix the setting it names."
        )
        raise ConfigValidationError("Config validation failed", errors=[msg])

    def _api_time_zone_message(self, context: Context | None, key: str, zone: t.Any) -> str:
        """Describe a partition's time zone that the parent stream's API response left missing or invalid."""
        partition = ", ".join(f"{name}={(context or {}).get(name)}" for name in self.spec.state_keys)
        where = f"Stream {self.name!r} ({partition})" if partition else f"Stream {self.name!r}"
        problem = "has no value" if zone in (None, "") else f"is {zone!r}, which is not an IANA time zone such as 'Europe/Berlin'"
        parent = self.spec.parent or "the parent"
        return (
            f"{where}: context key {key!r} {problem}. The value came from the API of stream {parent!r}, so this "
            "partition stopped with its bookmark unchanged; check the account's time zone at the source."
        )

    def _state_bookmark(self, context: Context | None) -> datetime | None:
        state = self.get_context_state(context)
        value = state.get("replication_key_value") if state else None
        if value is None or self.replication_key != state.get("replication_key"):
            return None
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=UTC)
        return _parse_timestamp(str(value))

    def _window_params(self, window: dict[str, str | None], context: Context | None) -> dict[str, t.Any]:
        replication = self.spec.replication
        assert replication is not None
        if window.get("days"):
            return self._day_params(window)
        zone = self._time_zone(context)
        start = format_bound(_parse_timestamp(str(window["start"])), replication.request_format, zone) if window.get("start") else None
        end_moment = _parse_timestamp(str(window["end"])) if window.get("end") else None
        if end_moment is not None and replication.request_format == "date":
            end_moment -= timedelta(microseconds=1)  # date bounds name the last day included

        if replication.request_range:
            if start is None:
                return {}
            # An open window ends now, because a range parameter needs both bounds.
            end = format_bound(end_moment or datetime.now(UTC), replication.request_format, zone)
            bounds = {replication.request_range["start_key"]: start, replication.request_range["end_key"]: end}
            return {replication.request_range["param"]: json.dumps(bounds, separators=(",", ":"))}

        params: dict[str, t.Any] = {}
        if start is not None and replication.request_param:
            params.update(render_mapping(replication.filter_params, self.config))
            params[replication.request_param] = start
        if end_moment is not None and replication.request_end_param:
            params[replication.request_end_param] = format_bound(end_moment, replication.request_format, zone)
        return params


    def _day_params(self, window: dict[str, str | None]) -> dict[str, t.Any]:
        """Put a day range's first and last day into the declared request parameters."""
        replication = self.spec.replication
        assert replication is not None
        if replication.request_range:
            bounds = {replication.request_range["start_key"]: window["start"], replication.request_range["end_key"]: window["end"]}
            return {replication.request_range["param"]: json.dumps(bounds, separators=(",", ":"))}
        params: dict[str, t.Any] = {}
        if replication.request_param:
            params[replication.request_param] = window["start"]
        if replication.request_end_param:
            params[replication.request_end_param] = window["end"]
        return params


def _parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a value without a zone is taken as UTC."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
