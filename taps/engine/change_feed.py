"""Updates and deletions of a list stream, read from the API's change feed (Stripe's `/v1/events`).

A stream with a `changes` section reads its list in full once, then only the
events since its bookmark:

- First run (no bookmark): the whole list, from the start setting when set.
  Every record carries `_sdc_changed_at` = the server time of the read's first
  response, and that time becomes the bookmark.
- Later runs: events with `created >= bookmark`, newest first. The whole feed
  is read before any record leaves: per object, a deletion wins over every
  other event of the run (ids are never reused), else the newest event wins
  (a tie keeps the one listed first). Each winning event's object becomes a
  record stamped with the event time; a deletion becomes a tombstone: the
  primary key, `_sdc_deleted_at` and nothing else. An object rendered in
  another API version than the pinned one is read again in the pinned
  version (`retrieve`). Events older than the bookmark are skipped and counted.
- After a feed read the bookmark is the read's start less `QUIET_MARGIN`, and
  never lower than the old bookmark. Every event up to the start was read, and
  the margin covers events that become visible a little after their time.
- A bookmark older than the feed's retention (one day of margin) is never read
  on silently: the stream reads its list in full again with a warning, or stops
  with an error, as the `on_expired_bookmark` setting chooses.

Times come from the server's `Date` response header, because events are
stamped with the server's clock, so a wrong client clock cannot open a gap.
Without the header the local clock is used.
"""

from __future__ import annotations

import email.utils
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from singer_sdk.exceptions import ConfigValidationError, FatalAPIError
from singer_sdk.helpers.jsonpath import extract_jsonpath

from taps.engine.fields import CHANGED_AT, DELETED_AT, read_path
from taps.engine.responses import response_json
from taps.engine.templates import referenced_settings, render, render_mapping
from taps.engine.windows import format_bound

if t.TYPE_CHECKING:
    import logging

    import requests
    from singer_sdk.helpers.types import Context

    from taps.engine.declaration import StreamSpec

#: Context key that marks a request of the change feed, with the lower bound `since`.
CHANGES_KEY = "_spendlake_changes"
#: Key under which `parse_response` hands one change to `post_process`.
CHANGE_MARK = "_spendlake_change"

EXPIRED_ACTIONS = ("full_refresh", "fail")
#: Days kept free of the retention horizon: a bookmark this close to it counts as expired.
RETENTION_MARGIN_DAYS = 1
#: After a feed read the bookmark is the read's start less this margin, for events that
#: become visible a little after their time.
QUIET_MARGIN = timedelta(minutes=5)
#: Key of the event's API version in a change, read and removed before the change leaves the feed.
EVENT_VERSION = "_spendlake_event_version"
#: Placeholder of the object id in `retrieve`.
ID_PLACEHOLDER = "{id}"
#: Event types that never carry an object id, so they cannot be requested.
UNREQUESTABLE_TYPES = frozenset({"invoice.upcoming"})

CHANGES_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path", "types", "object_type"],
    "description": "Read updates and deletions from a change feed (Stripe's /v1/events) after one full read of the list.",
    "properties": {
        "path": {"type": "string", "pattern": "^/", "description": "Path of the change feed, e.g. /v1/events."},
        "types": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {"type": "string", "pattern": "^[a-z_]+(\\.[a-z_]+)+$"},
            "description": "Explicit event types, sent as repeated types[] parameters; wildcards are not allowed.",
        },
        "types_param": {"type": "string", "default": "types[]", "description": "Query parameter that carries each type."},
        "object": {"type": "string", "default": "data.object", "description": "Dotted path of the changed object in an event."},
        "object_type": {"type": "string", "description": "Value of the object's `object` field; events of other objects are skipped."},
        "deleted_types": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Types that delete the object; they become tombstones.",
        },
        "time": {"type": "string", "default": "created", "description": "Event field with the event time, in epoch seconds."},
        "time_param": {"type": "string", "default": "created[gte]", "description": "Inclusive lower bound on the event time."},
        "start_param": {
            "type": "string",
            "description": "List parameter for the start setting on a full read, e.g. created[gte] (epoch seconds).",
        },
        "start_setting": {"type": "string", "default": "start_date"},
        "retention_days": {"type": "integer", "minimum": 2, "description": "Days of events the API keeps."},
        "on_expired_bookmark": {
            "type": "string",
            "pattern": "^(full_refresh|fail|\\{config\\.[a-z][a-z0-9_]*\\})$",
            "default": "full_refresh",
            "description": "full_refresh or fail, or one {config.NAME} placeholder of a setting holding one of them.",
        },
        "params": {
            "type": "object",
            "additionalProperties": {"type": ["string", "integer", "boolean"]},
            "description": "Extra query parameters of feed requests, e.g. limit; the stream's own params are not sent.",
        },
        "retrieve": {
            "type": "string",
            "pattern": "^/.*\\{id\\}",
            "description": "Path that reads one object by id, e.g. /v1/invoices/{id}; used for events rendered in another API version.",
        },
        "version_field": {"type": "string", "default": "api_version", "description": "Event field with the API version its object is rendered in."},
        "pinned_version": {
            "type": "string",
            "description": "The API version the stream reads, usually one {config.NAME} placeholder, e.g. {config.api_version}.",
        },
    },
}


@dataclass(frozen=True)
class ChangesSpec:
    """A stream's change feed: where events are, which ones concern the stream, how long they are kept."""

    path: str
    types: tuple[str, ...]
    object_type: str
    object_path: tuple[str, ...] = ("data", "object")
    types_param: str = "types[]"
    deleted_types: frozenset[str] = frozenset()
    time_field: str = "created"
    time_param: str = "created[gte]"
    start_param: str | None = None
    start_setting: str = "start_date"
    retention_days: int | None = None
    on_expired_bookmark: str = "full_refresh"
    params: dict[str, t.Any] = field(default_factory=dict)
    retrieve: str | None = None
    version_field: str = "api_version"
    pinned_version: str | None = None


def parse_changes(section: dict[str, t.Any]) -> ChangesSpec:
    """Build the spec of a schema-valid `changes` section."""
    return ChangesSpec(
        path=section["path"],
        types=tuple(section["types"]),
        object_type=section["object_type"],
        object_path=tuple(section.get("object", "data.object").split(".")),
        types_param=section.get("types_param", "types[]"),
        deleted_types=frozenset(section.get("deleted_types") or ()),
        time_field=section.get("time", "created"),
        time_param=section.get("time_param", "created[gte]"),
        start_param=section.get("start_param"),
        start_setting=section.get("start_setting", "start_date"),
        retention_days=section.get("retention_days"),
        on_expired_bookmark=section.get("on_expired_bookmark", "full_refresh"),
        params=dict(section.get("params") or {}),
        retrieve=section.get("retrieve"),
        version_field=section.get("version_field", "api_version"),
        pinned_version=section.get("pinned_version"),
    )


def changes_problems(stream_name: str, stream: dict[str, t.Any], settings: list[dict[str, t.Any]]) -> list[str]:
    """Check a `changes` section against its stream and the declared settings."""
    place = f"streams.{stream_name}.changes"
    section = stream["changes"]
    problems = []

    if stream.get("replication"):
        problems.append(f"{place}: a stream with changes keeps its bookmark on {CHANGED_AT}; remove its replication section")
    for index, name in enumerate(section["types"]):
        if name in UNREQUESTABLE_TYPES:
            problems.append(f"{place}.types.{index}: {name!r} events carry no object id; remove it")

    if len(set(section["types"])) < len(section["types"]):
        problems.append(f"{place}.types: a type is listed twice")
    for index, name in enumerate(section.get("deleted_types") or ()):
        if name not in section["types"]:
            problems.append(f"{place}.deleted_types.{index}: {name!r} is not listed under types")
    for reserved in (CHANGED_AT, DELETED_AT):
        if reserved in stream["fields"]:
            problems.append(f"streams.{stream_name}.fields.{reserved}: the engine adds this column; remove it")
    if section.get("deleted_types"):
        for name, declared in stream["fields"].items():
            if name not in stream["primary_key"] and declared.get("nullable") is False:
                problems.append(f"streams.{stream_name}.fields.{name}.nullable: a tombstone leaves it null, so it must be nullable")

    declared_settings = {setting["name"]: setting for setting in settings}
    for name in referenced_settings(str(section.get("on_expired_bookmark", ""))):
        if name not in declared_settings:
            problems.append(f"{place}.on_expired_bookmark: refers to setting {name!r}, which is not declared under settings")
    start_setting = section.get("start_setting", "start_date")
    if section.get("start_param") and start_setting not in declared_settings:
        problems.append(f"{place}.start_setting: setting {start_setting!r} is not declared under settings")
    for name in referenced_settings(str(section.get("pinned_version", ""))):
        if name not in declared_settings:
            problems.append(f"{place}.pinned_version: refers to setting {name!r}, which is not declared under settings")
    if bool(section.get("retrieve")) != bool(section.get("pinned_version")):
        problems.append(f"{place}: retrieve and pinned_version go together; declare both to read objects again in the pinned version, or neither")
    return problems


def server_time(response: requests.Response, fallback: datetime) -> datetime:
    """Return the time in the response's `Date` header, or `fallback` when it is absent or unreadable."""
    header = response.headers.get("Date")
    if not header:
        return fallback
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return fallback
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_expired(bookmark: datetime, now: datetime, retention_days: int | None) -> bool:
    """Tell whether events from `bookmark` on may already be gone, with one day of margin."""
    if retention_days is None:
        return False
    return now - bookmark > timedelta(days=retention_days - RETENTION_MARGIN_DAYS)


class ExpiredBookmarkInFeed(Exception):  # noqa: N818 (a signal between two methods, never shown)
    """Raised inside a feed read when its first response shows the bookmark is past the retention."""

    def __init__(self, age_days: float) -> None:
        super().__init__(f"bookmark {age_days:.1f} days old")
        self.age_days = age_days


@dataclass
class _FeedRead:
    """Progress of one read of the list or the feed: its mode, bookmark, start time and counts."""

    mode: str
    bookmark: datetime | None = None
    started: datetime | None = None
    other_objects: int = 0
    events: int = 0
    older_than_bookmark: int = 0
    superseded: int = 0


class ObjectGone(Exception):  # noqa: N818 (a signal between two methods, never shown)
    """Raised inside a retrieve when the API returns 404: the object no longer exists."""


def change_wins(new: dict[str, t.Any], kept: dict[str, t.Any]) -> bool:
    """Tell whether change `new` replaces `kept`, a change of the same object in one feed read.

    A deletion wins over any other event, because ids are never reused. Otherwise the
    later event wins, and a tie keeps `kept`, listed first in a newest-first feed.
    """
    new_at, new_deleted = new[CHANGE_MARK]
    kept_at, kept_deleted = kept[CHANGE_MARK]
    if kept_deleted:
        return False
    if new_deleted:
        return True
    return datetime.fromisoformat(new_at) > datetime.fromisoformat(kept_at)


class ChangeFeedMixin:
    """Change-feed reads for `DeclarativeStream`; list it before `RESTStream` in the bases."""

    # Provided by DeclarativeStream and RESTStream.
    spec: StreamSpec
    name: str
    logger: logging.Logger
    config: t.Mapping[str, t.Any]
    clock: t.Callable[[], datetime]
    get_context_state: t.Callable[[Context | None], dict[str, t.Any]]
    _read_pages: t.Callable[[Context | None], t.Iterable[dict[str, t.Any]]]
    _increment_stream_state: t.Callable[..., None]
    _shaper: t.Any
    url_base: str
    http_headers: dict[str, t.Any]
    build_prepared_request: t.Callable[..., requests.PreparedRequest]
    request_decorator: t.Callable[..., t.Any]
    _request: t.Callable[..., requests.Response]

    _feed: _FeedRead | None = None
    _retrieving = False

    @property
    def changes(self) -> ChangesSpec:
        assert self.spec.changes is not None
        return self.spec.changes

    def _change_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Read the list in full (first run, expired bookmark) or the events since the bookmark."""
        bookmark = self._change_bookmark(context)
        if bookmark is None:
            yield from self._full_read(context)
            return

        action = self._expired_action()
        try:
            yield from self._feed_read(context, bookmark)
        except ExpiredBookmarkInFeed as expired:
            if action == "fail":
                msg = (
                    f"Stream {self.name}: the bookmark is {expired.age_days:.1f} days old, older than the "
                    f"{self.changes.retention_days} days of events the API keeps, so changes in between are lost. "
                    f"Set {self._expired_setting_hint()} to full_refresh to read the whole list again, or clear the stream's state."
                )
                raise FatalAPIError(msg) from None
            self.logger.warning(
                "Stream %s: the bookmark is %.1f days old, older than the %d days of events the API keeps; "
                "reading the whole list again. Objects deleted in that gap cannot be seen by a list read.",
                self.name, expired.age_days, self.changes.retention_days,
            )
            yield from self._full_read(context)

    def _change_bookmark(self, context: Context | None) -> datetime | None:
        """Return the bookmark on the change time, or None (with a note) for none or an older kind of state."""
        state = self.get_context_state(context)
        value = state.get("replication_key_value") if state else None
        if value is None:
            return None
        if state.get("replication_key") != CHANGED_AT:
            self.logger.warning(
                "Stream %s: the saved bookmark is on %r, from before updates were read from the change feed; "
                "reading the whole list once to start tracking changes.",
                self.name, state.get("replication_key"),
            )
            return None
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            msg = f"Stream {self.name!r}: the bookmark in the state is not an ISO-8601 time; fix or clear this stream's state."
            raise ConfigValidationError("State validation failed", errors=[msg]) from None
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _expired_action(self) -> str:
        """Return full_refresh or fail, rendered from the declaration and the config."""
        action = render(self.changes.on_expired_bookmark, self.config) or "full_refresh"
        if action not in EXPIRED_ACTIONS:
            msg = (
                f"Stream {self.name!r}: {self._expired_setting_hint()} must be one of {', '.join(EXPIRED_ACTIONS)}; "
                "fix the value in the tap config."
            )
            raise ConfigValidationError("Config validation failed", errors=[msg])
        return str(action)

    def _expired_setting_hint(self) -> str:
        names = referenced_settings(self.changes.on_expired_bookmark)
        return f"setting {names[0]!r}" if names else f"streams.{self.name}.changes.on_expired_bookmark"

    def _full_read(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Read the whole list; the server time of its first response becomes the bookmark."""
        self._feed = _FeedRead(mode="full")
        yield from self._read_pages(context)
        started = self._feed.started or self.clock()
        self._increment_stream_state({CHANGED_AT: started.isoformat()}, context=context)
        self._feed = None

    def _feed_read(self, context: Context | None, bookmark: datetime) -> t.Iterable[dict[str, t.Any]]:
        """Read every event since `bookmark`, keep one change per object, then emit them and move the bookmark.

        NOTE: the winning change of every object changed since the bookmark stays in
        memory until the feed is read, one event object each. That is a few KB per
        object for Stripe (an estimate), so 100 000 changed objects take some hundreds of MB.
        """
        feed = self._feed = _FeedRead(mode="events", bookmark=bookmark)
        changes: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
        try:
            for change in self._read_pages({**(context or {}), CHANGES_KEY: {"since": bookmark.isoformat()}}):
                self._keep_winner(changes, change, feed)
        finally:
            self._feed = None

        winners = self._in_pinned_version(list(changes.values()))
        for change in winners:
            change.pop(EVENT_VERSION, None)
            yield change

        self._move_bookmark(context, bookmark, feed.started)
        self._log_feed_read(feed, bookmark)

    def _keep_winner(self, changes: dict[tuple[t.Any, ...], dict[str, t.Any]], change: dict[str, t.Any], feed: _FeedRead) -> None:
        """Keep `change` in `changes` unless a change of the same object already wins over it."""
        key = self._object_key(change["object"])
        kept = changes.get(key)
        if kept is None:
            changes[key] = change
            return
        feed.superseded += 1
        if change_wins(change, kept):
            changes[key] = change

    def _object_key(self, changed: dict[str, t.Any]) -> tuple[t.Any, ...]:
        """Return the primary-key values of a changed object, None where a value is missing."""
        values = []
        for spec in self.spec.fields:
            if spec.name in self.spec.primary_key:
                value = read_path(changed, spec.path)
                values.append(value if isinstance(value, (str, int)) else None)
        return tuple(values)

    def _move_bookmark(self, context: Context | None, bookmark: datetime, started: datetime | None) -> None:
        """Set the bookmark to the read's start less the margin, never lower than `bookmark`.

        Records carry their event times, which the SDK keeps as progress. An event a few
        seconds before the start must not become the bookmark, so the progress is replaced.
        """
        moved = max(bookmark, started - QUIET_MARGIN) if started is not None else bookmark
        state = self.get_context_state(context)
        state.pop("progress_markers", None)
        self._increment_stream_state({CHANGED_AT: moved.isoformat()}, context=context)

    def _log_feed_read(self, feed: _FeedRead, bookmark: datetime) -> None:
        """Log what a feed read skipped, then how many events it read."""
        if feed.other_objects:
            self.logger.info(
                "Stream %s: skipped %d event(s) whose object type is not %r", self.name, feed.other_objects, self.changes.object_type
            )
        if feed.older_than_bookmark:
            self.logger.warning(
                "Stream %s: skipped %d event(s) older than the bookmark %s; the API did not apply %s",
                self.name, feed.older_than_bookmark, bookmark.isoformat(), self.changes.time_param,
            )
        if feed.superseded:
            self.logger.info(
                "Stream %s: skipped %d event(s) of objects with a newer event or a deletion in this run", self.name, feed.superseded
            )
        self.logger.info("Stream %s: read %d event(s) since %s", self.name, feed.events, bookmark.isoformat())

    def _in_pinned_version(self, changes: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """Read again, in the pinned API version, each changed object its event rendered in another version.

        An event's object keeps the shape of the API version current when the event was
        created, so fields moved since then would arrive null. A deletion needs only its key.
        An object that is gone (404, or `deleted: true`) becomes a tombstone on a stream
        with deletions. On other streams its change is dropped, so the row stays as it was.
        """
        pinned = render(self.changes.pinned_version, self.config) if self.changes.retrieve else None
        if not pinned:
            return changes
        kept = []
        again = gone = dropped = 0
        for change in changes:
            _, deleted = change[CHANGE_MARK]
            if deleted or change.get(EVENT_VERSION) == pinned:
                kept.append(change)
                continue
            again += 1
            current = self._retrieve(change["object"])
            if current is not None:
                kept.append({**change, "object": current})
            elif self.changes.deleted_types:
                gone += 1
                kept.append({**change, CHANGE_MARK: (change[CHANGE_MARK][0], True)})
            else:
                dropped += 1
        if again:
            self.logger.info(
                "Stream %s: read %d object(s) again in API version %s because their events carry another version; "
                "%d were gone (tombstones), %d were gone from a stream without deletions (skipped)",
                self.name, again, pinned, gone, dropped,
            )
        return kept

    def _retrieve(self, changed: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """Read one object by id through the stream's auth, headers and retries; None when it is gone."""
        assert self.changes.retrieve is not None
        object_id = changed.get("id")
        if not isinstance(object_id, str) or not object_id:
            msg = f"Stream {self.name}: a changed {self.changes.object_type} has no string 'id' to read it again with; check changes.retrieve."
            raise FatalAPIError(msg)
        path = self.changes.retrieve.replace(ID_PLACEHOLDER, quote(object_id, safe=""))
        prepared = self.build_prepared_request(method="GET", url=self.url_base + path, headers=self.http_headers)
        self._retrieving = True
        try:
            response = self.request_decorator(self._request)(prepared, None)
        except ObjectGone:
            return None
        finally:
            self._retrieving = False
        current = response_json(response)
        if isinstance(current, dict) and current.get("deleted") is True:
            return None
        if not isinstance(current, dict) or current.get("object") != self.changes.object_type:
            msg = (
                f"Stream {self.name}: the response from path {self.changes.retrieve} is not of object type {self.changes.object_type!r}; "
                "check changes.retrieve in the declaration."
            )
            raise FatalAPIError(msg)
        return current

    def validate_response(self, response: requests.Response) -> None:
        """Turn a 404 to a retrieve into `ObjectGone`; every other response goes to the error policy."""
        if self._retrieving and response.status_code == 404:
            raise ObjectGone
        super().validate_response(response)  # type: ignore[misc]

    def _change_url_params(self, context: Context | None) -> dict[str, t.Any]:
        """Return the feed request's query: declared params, every type and the lower bound."""
        since = datetime.fromisoformat(context[CHANGES_KEY]["since"]) if context else None
        params = render_mapping(self.changes.params, self.config)
        params[self.changes.types_param] = list(self.changes.types)
        if since is not None:
            params[self.changes.time_param] = format_bound(since, "epoch_seconds", None)
        return params

    def _full_read_params(self) -> dict[str, t.Any]:
        """Return the start setting as the list's lower bound, when both are set."""
        start = self.config.get(self.changes.start_setting)
        if not (self.changes.start_param and start):
            return {}
        moment = datetime.fromisoformat(str(start))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return {self.changes.start_param: format_bound(moment, "epoch_seconds", None)}

    def _note_response(self, response: requests.Response) -> None:
        """Remember the server time of a read's first response, and check the bookmark's age against it."""
        feed = self._feed
        if feed is None or feed.started is not None:
            return
        feed.started = server_time(response, self.clock())
        if feed.mode == "events" and feed.bookmark is not None and is_expired(feed.bookmark, feed.started, self.changes.retention_days):
            raise ExpiredBookmarkInFeed((feed.started - feed.bookmark).total_seconds() / 86_400)

    def _parse_changes(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        """Yield each record of a list page, or each change of a feed page, marked for `post_process`."""
        feed = self._feed
        assert feed is not None
        started = (feed.started or self.clock()).isoformat()
        body = response_json(response)
        for item in extract_jsonpath(self.spec.records, body):
            if feed.mode == "full":
                yield {CHANGE_MARK: (started, False), "object": item}
                continue
            feed.events += 1
            change = self._event_change(item)
            if change is None:
                feed.other_objects += 1
                continue
            if feed.bookmark is not None and datetime.fromisoformat(change[CHANGE_MARK][0]) < feed.bookmark:
                feed.older_than_bookmark += 1
                continue
            yield change

    def _event_change(self, event: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """Return one event as a marked change, or None when its object is of another type."""
        changed = read_path(event, self.changes.object_path)
        if not isinstance(changed, dict) or changed.get("object") != self.changes.object_type:
            return None
        moment = event.get(self.changes.time_field)
        if isinstance(moment, bool) or not isinstance(moment, int):
            msg = f"Stream {self.name}: an event has no integer {self.changes.time_field!r} time; check changes.time."
            raise FatalAPIError(msg)
        at = datetime.fromtimestamp(moment, tz=UTC).isoformat()
        deleted = event.get("type") in self.changes.deleted_types
        return {CHANGE_MARK: (at, deleted), "object": changed, EVENT_VERSION: event.get(self.changes.version_field)}

    def _shape_change(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """Return the whitelisted record of a change, or its tombstone, with the two change columns."""
        at, deleted = row[CHANGE_MARK]
        changed = row["object"]
        if not deleted:
            shaped = self._shaper.shape(changed)
            shaped[CHANGED_AT] = at
            shaped[DELETED_AT] = None
            return shaped
        # A deleted object's other values, personal ones included, are not stored again.
        shaped = {spec.name: None for spec in self.spec.fields}
        for spec in self.spec.fields:
            if spec.name in self.spec.primary_key:
                value = read_path(changed, spec.path)
                shaped[spec.name] = value if isinstance(value, (str, int)) else None
        shaped[CHANGED_AT] = at
        shaped[DELETED_AT] = at
        return shaped
