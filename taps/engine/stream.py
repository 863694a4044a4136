"""A singer-sdk REST stream driven by a `StreamSpec` instead of hand-written code."""

from __future__ import annotations

import dataclasses
import json
import typing as t
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import requests
from requests.auth import AuthBase
from singer_sdk import RESTStream
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams.rest import HTTPRequest, PageContext

from taps.engine.declaration import SourceSpec, StreamSpec
from taps.engine.fields import RecordShaper, stream_schema
from taps.engine.pagination import ProgressPaginator, apply_page, build_paginator
from taps.engine.reports import report_records, rows_jsonpath
from taps.engine.responses import response_json
from taps.engine.retry import RetryingStreamMixin, build_error_policy
from taps.engine.templates import render, render_mapping, render_tree
from taps.engine.transforms import is_time_zone
from taps.engine.windows import WindowRules, format_bound, plan_windows

#: Context key under which a request window travels from `get_records` to `get_url_params`.
WINDOW_KEY = "_spendlake_window"

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context


class DeclarativeStream(RetryingStreamMixin, RESTStream[t.Any]):
    """One declared stream: request shaping, pagination, bookmarks and the field whitelist."""

    # Many APIs list newest first, so the SDK keeps the maximum replication value
    # seen and saves it as the bookmark only once the whole stream is read.
    is_sorted = False

    def __init__(self, tap: Tap, spec: StreamSpec, source: SourceSpec) -> None:
        self.spec = spec
        self.source = source
        super().__init__(tap=tap, name=spec.name, schema=stream_schema(spec), path=spec.path, http_method=spec.method)
        self._paginator: ProgressPaginator | None = None
        self.primary_keys = list(spec.primary_key)
        self.replication_key = spec.replication.key if spec.replication else None
        self.error_policy = build_error_policy(source.errors)
        self._shaper = RecordShaper(spec)
        self._seen_keys: set[tuple[t.Any, ...]] = set()
        self._duplicates = 0

    @property
    def url_base(self) -> str:
        """Return the API root rendered from the declaration and the config."""
        return str(render(self.source.base_url, self.config)).rstrip("/")

    @property
    def records_jsonpath(self) -> str:
        """Return the declared record selector."""
        return self.spec.records

    @property
    def http_headers(self) -> dict[str, t.Any]:
        """Return the source and stream headers, rendered from the config."""
        headers = dict(super().http_headers)
        headers.update({key: str(value) for key, value in render_mapping(self.source.headers, self.config).items()})
        headers.update({key: str(value) for key, value in render_mapping(self.spec.headers, self.config).items()})
        return headers

    @property
    def authenticator(self) -> AuthBase:
        """Return the tap's authenticator, shared by all streams so OAuth tokens are reused."""
        return self._tap.source_authenticator()

    def build_prepared_request(self, *args: t.Any, **kwargs: t.Any) -> requests.PreparedRequest:
        """Prepare a request without credentials; `_request` adds them inside the retry loop.

        A token refresh can then fail and be retried like any other request.
        """
        request = requests.Request(*args, **kwargs)
        request.headers.setdefault("User-Agent", self.user_agent)
        self.requests_session.auth = None
        return self.requests_session.prepare_request(request)

    def get_new_paginator(self) -> BaseAPIPaginator[t.Any]:
        """Return a fresh paginator of the declared kind, kept to reconcile its totals afterwards."""
        records_path = rows_jsonpath(self.spec.report_format) if self.spec.report_format else self.spec.records
        self._paginator = build_paginator(
            self.spec.paginator, stream_name=self.name, records_path=records_path, logger=self.logger
        )
        return self._paginator

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """Shape the request for the current page: cursor, offset, token or next link."""
        request = super().get_http_request(page=page)
        url, params, data = apply_page(self.spec.paginator, page.next_page_token, request.url, request.params, request.data)
        return dataclasses.replace(request, url=url, params=params, data=data)

    def prepare_request_payload(self, context: Context | None, next_page_token: t.Any | None) -> dict[str, t.Any] | None:
        """Render the declared JSON body template, if any."""
        return render_tree(self.spec.body, self.config) if self.spec.body is not None else None

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """Return one context per value of the declared array setting, or None when not partitioned."""
        if not self.spec.partition_setting:
            return None
        values = self.config.get(self.spec.partition_setting) or []
        if isinstance(values, str):  # a comma-separated list from an environment variable
            values = [value.strip() for value in values.split(",") if value.strip()]
        return [{self.spec.partition_key: str(value)} for value in values]

    def get_child_context(self, record: dict[str, t.Any], context: Context | None) -> Context | None:
        """Pass each child stream the parent fields its declaration names."""
        child_context: dict[str, t.Any] = {}
        for child in self.child_streams:
            for key, field_name in child.spec.parent_context.items():
                child_context[key] = record.get(field_name)
        return child_context

    def get_url_params(self, context: Context | None, next_page_token: t.Any | None) -> dict[str, t.Any]:
        """Build the query string: declared params and the window's bounds (pages are added later)."""
        params = render_mapping(self.spec.params, self.config)
        window = (context or {}).get(WINDOW_KEY)
        if window:
            params.update(self._window_params(window))
        return params

    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        """Yield the records of the body: report rows by their headers, else the declared selector."""
        body = response_json(response)
        if self.spec.report_format:
            yield from report_records(body, self.spec.report_format, stream=self.name)
        else:
            yield from extract_jsonpath(self.spec.records, body)

    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        """Cut the record to the whitelist and drop a key already emitted in this run."""
        shaped = self._shaper.shape(row)
        key = tuple(shaped.get(name) for name in self.spec.primary_key)
        if key in self._seen_keys:
            self._duplicates += 1
            return None
        self._seen_keys.add(key)
        return shaped

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Read every window, oldest first, then log one summary of dropped fields and duplicates."""
        for window in self._windows(context):
            # The window travels in a copy of the context; state lookups keep using `context`.
            window_context = {**(context or {}), WINDOW_KEY: window} if window else context
            self._paginator = None
            yield from super().get_records(window_context)
            if self._paginator is not None:
                self._paginator.reconcile(strict=self.spec.strict_totals)

        summary = self._shaper.summary()
        if summary:
            self.logger.info("Stream %s: %s", self.name, summary)
        if self._duplicates:
            self.logger.info("Stream %s: skipped %d record(s) already emitted in this run", self.name, self._duplicates)

    def apply_catalog(self, catalog: t.Any) -> None:
        """Apply selection from a catalog, but reject changes to the declared keys.

        A replication key on a personal field would put its raw values into
        STATE and logs, and a changed primary key would change row identity.
        """
        super().apply_catalog(catalog)
        declared_replication = self.spec.replication.key if self.spec.replication else None
        if self.replication_key != declared_replication:
            msg = (
                f"Stream {self.name!r}: the catalog sets replication key {self.replication_key!r}, but the "
                f"declaration uses {declared_replication!r}; remove the override from the catalog or metadata."
            )
            raise ConfigValidationError("Catalog validation failed", errors=[msg])
        if list(self.primary_keys) != list(self.spec.primary_key):
            msg = (
                f"Stream {self.name!r}: the catalog sets key properties {list(self.primary_keys)}, but the "
                f"declaration uses {list(self.spec.primary_key)}; remove the override from the catalog or metadata."
            )
            raise ConfigValidationError("Catalog validation failed", errors=[msg])

    def _request(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        """Send one request; a transport error is re-raised without the URL's query string.

        Query strings carry cursors such as customer ids, and the retry logger
        prints the exception text.
        """
        try:
            return super()._request(prepared_request, context)
        except requests.exceptions.RequestException as error:
            if isinstance(error, requests.exceptions.HTTPError):
                raise
            path = urlparse(prepared_request.url or "").path
            message = f"{type(error).__name__} while requesting {self.source.name} path {path}"
            raise type(error)(message) from None

    def backoff_handler(self, details: t.Any) -> None:
        """Log a retry with the path, the attempt and the wait, never the request's query or body."""
        error = details.get("exception")
        self.logger.warning(
            "Stream %s: retrying %s in %.1f s after attempt %d (%s)",
            self.name,
            self.path,
            details.get("wait") or 0.0,
            details.get("tries") or 0,
            type(error).__name__ if error is not None else "no exception",
        )

    def _windows(self, context: Context | None) -> list[dict[str, str | None] | None]:
        """Plan the request windows from the bookmark, start setting, lookback and retention."""
        replication = self.spec.replication
        if replication is None or not (replication.request_param or replication.request_range):
            return [None]

        bookmark = self._state_bookmark(context)
        start = self.config.get(replication.start_setting)
        rules = WindowRules(
            window_days=replication.window_days,
            lookback_days=replication.lookback_days,
            retention_days=replication.retention_days,
            on_expired_bookmark=replication.on_expired_bookmark,
        )
        windows = plan_windows(
            self.name,
            bookmark=bookmark,
            start=_parse_timestamp(str(start)) if start else None,
            now=datetime.now(UTC),
            rules=rules,
        )
        return [
            {"start": w.start.isoformat() if w.start else None, "end": w.end.isoformat() if w.end else None}
            for w in windows
        ]

    def _state_bookmark(self, context: Context | None) -> datetime | None:
        state = self.get_context_state(context)
        value = state.get("replication_key_value") if state else None
        if value is None or self.replication_key != state.get("replication_key"):
            return None
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=UTC)
        return _parse_timestamp(str(value))

    def _window_params(self, window: dict[str, str | None]) -> dict[str, t.Any]:
        replication = self.spec.replication
        assert replication is not None
        zone = render(replication.timezone, self.config) if replication.timezone else None
        if zone and not is_time_zone(str(zone)):
            msg = (
                f"Stream {self.name!r}: replication.timezone {replication.timezone!r} gives {zone!r}, which is not an "
                "IANA time zone such as 'Europe/Berlin'; fix the setting it names."
            )
            raise ConfigValidationError("Config validation failed", errors=[msg])
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
            params[replication.request_param] = start
        if end_moment is not None and replication.request_end_param:
            params[replication.request_end_param] = format_bound(end_moment, replication.request_format, zone)
        return params


def _parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a value without a zone is taken as UTC."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
