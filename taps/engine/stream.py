"""A singer-sdk REST stream driven by a `StreamSpec` instead of hand-written code."""

from __future__ import annotations

import dataclasses
import re
import typing as t
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import msgspec
import requests
from requests.auth import AuthBase
from singer_sdk import RESTStream
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams.rest import HTTPRequest, PageContext

from taps.engine.bookmark_cap import capped_record, read_start
from taps.engine.declaration import SourceSpec, StreamSpec
from taps.engine.change_feed import CHANGE_MARK, CHANGES_KEY, ChangeFeedMixin
from taps.engine.fields import CHANGED_AT, RecordShaper, stream_schema
from taps.engine.pagination import ProgressPaginator, apply_page, build_paginator
from taps.engine.page_size import paginator_with_page_size
from taps.engine.reports import ga4_report_notes, ga4_tokens_left, report_records, rows_jsonpath
from taps.engine.responses import response_json
from taps.engine.report_jobs import ReportJobRunner, parse_report_job, results_path, run_with_splitting
from taps.engine.retry import (
    PageTooLargeError,
    QuotaExhaustedError,
    RetryingStreamMixin,
    ThrottledError,
    body_details,
    build_error_policy,
    halved_page_size,
    streamed_retry_hint,
    wait_too_long_message,
)
from taps.engine.stream_windows import PartitionValueError, WindowPlanningMixin
from taps.engine.templates import render, render_mapping, render_tree
from taps.engine.transforms import FieldTransformError

#: Context key under which a request window travels from `get_records` to `get_url_params`.
WINDOW_KEY = "_spendlake_window"
#: Context key of a finished report job whose rows are being read.
JOB_KEY = "_spendlake_job"

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context


class PrimaryKeyConflictError(RuntimeError):
    """Raised when a daily report yields two different rows for one primary key."""


class MissingKeyError(RuntimeError):
    """Raised when a record has no value for a primary-key field."""


class DeclarativeStream(ChangeFeedMixin, WindowPlanningMixin, RetryingStreamMixin, RESTStream[t.Any]):
    """One declared stream: request shaping, pagination, bookmarks and the field whitelist."""

    # Many APIs list newest first, so the SDK keeps the maximum replication value
    # seen and saves it as the bookmark only once the whole stream is read.
    is_sorted = False

    # The record shaper already emits only declared fields, with declared transforms
    # and JSON types, so singer-sdk's per-value conformance pass (a quarter of a
    # report's time) is skipped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    #: The current time; tests replace it to read "today" in an account's time zone.
    clock: t.Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))

    def __init__(self, tap: Tap, spec: StreamSpec, source: SourceSpec) -> None:
        self.spec = spec
        self.source = source
        super().__init__(tap=tap, name=spec.name, schema=stream_schema(spec), path=spec.path, http_method=spec.method)
        self._paginator: ProgressPaginator | None = None
        self.primary_keys = list(spec.primary_key)
        self.replication_key = declared_replication_key(spec)
        self.error_policy = build_error_policy(source.errors)
        self._shaper = RecordShaper(spec)
        self._seen_keys: dict[tuple[t.Any, ...], int] = {}
        self._duplicates = 0
        self._page_size: int | None = None
        self._days_outside_window = 0
        self._current_window: dict[str, t.Any] = {}
        self._report_notes: dict[str, list[str]] = {}
        self._tokens_left: int | None = None
        self._report_job = parse_report_job(spec.report_job) if spec.report_job else None
        self._paginator_spec = paginator_with_page_size(spec, self.config)
        self._bookmark_cap = spec.replication.bookmark_cap if spec.replication else None
        self._read_start: datetime | None = None
        self._null_bookmark_values = 0

    @property
    def url_base(self) -> str:
        """Return the API root rendered from the declaration and the config; a stream's own root wins."""
        return str(render(self.spec.base_url or self.source.base_url, self.config)).rstrip("/")

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
            self._paginator_spec, stream_name=self.name, records_path=records_path, logger=self.logger
        )
        return self._paginator

    def get_url(self, context: Context | None) -> str:
        """Return the stream's URL, or the results URL of the report job being read."""
        job_id = (context or {}).get(JOB_KEY)
        if job_id and self._report_job is not None:
            return self.url_base + results_path(self._report_job, job_id)
        if CHANGES_KEY in (context or {}):
            return self.url_base + self.changes.path
        return super().get_url(context)

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """Shape the request for the current page: cursor, offset, token or next link."""
        request = super().get_http_request(page=page)
        url, params, data = apply_page(self._paginator_spec, page.next_page_token, request.url, request.params, request.data)
        return dataclasses.replace(request, url=url, params=params, data=data)

    def prepare_request_payload(self, context: Context | None, next_page_token: t.Any | None) -> dict[str, t.Any] | None:
        """Render the declared JSON body template, if any, with the context and the window."""
        if self.spec.body is None:
            return None
        return render_tree(self.spec.body, self.config, self._template_values(context))

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """Return one context per value of the declared array setting, or None when not partitioned."""
        if not self.spec.partition_setting:
            return None
        values = self.config.get(self.spec.partition_setting) or []
        if isinstance(values, str):  # a comma-separated list from an environment variable
            values = [value.strip() for value in values.split(",") if value.strip()]
        normalised = [self._partition_value(index, value) for index, value in enumerate(values)]
        if not normalised:
            msg = f"Stream {self.name!r}: setting {self.spec.partition_setting!r} lists no values; add at least one."
            raise ConfigValidationError("Config validation failed", errors=[msg])
        unique = list(dict.fromkeys(normalised))
        if len(unique) < len(normalised):
            self.logger.warning(
                "Stream %s: setting %s lists %d value(s) twice (after normalising); each is read once",
                self.name, self.spec.partition_setting, len(normalised) - len(unique),
            )
        return [{self.spec.partition_key: value} for value in unique]

    def _partition_value(self, index: int, value: t.Any) -> str:
        """Normalise one partition value as declared (e.g. strip hyphens) and check its pattern."""
        text = str(value).strip()
        for part in self.spec.partition_remove:
            text = text.replace(part, "")
        pattern = self.spec.partition_pattern
        if pattern and not re.fullmatch(pattern, text):
            msg = (
                f"Stream {self.name!r}: element {index} of setting {self.spec.partition_setting!r} does not match "
                f"{pattern!r} after removing {list(self.spec.partition_remove)}; fix the value in the config."
            )
            raise ConfigValidationError("Config validation failed", errors=[msg])
        return text

    def finalize_state_progress_markers(self, state: dict[str, t.Any] | None = None) -> None:
        """Promote progress markers to bookmarks, also in the per-account partitions of a child stream.

        singer-sdk finalizes a child's partition only when the parent's context
        equals the partition. With `state_keys`, the context also carries values
        (a time zone) that are not part of the partition.
        """
        if not state and self.spec.state_keys and self.selected:
            for partition in self.state_manager.get_state_partitions() or []:
                self.state_manager.finalize_state(partition)
        super().finalize_state_progress_markers(state)

    def get_child_context(self, record: dict[str, t.Any], context: Context | None) -> Context | None:
        """Pass each child stream the parent fields its declaration names."""
        child_context: dict[str, t.Any] = {}
        for child in self.child_streams:
            for key, field_name in child.spec.parent_context.items():
                child_context[key] = record.get(field_name)
        return child_context

    def get_url_params(self, context: Context | None, next_page_token: t.Any | None) -> dict[str, t.Any]:
        """Build the query string: declared params and the window's bounds (pages are added later)."""
        if CHANGES_KEY in (context or {}):
            return self._change_url_params(context)
        if (context or {}).get(JOB_KEY) and self._report_job is not None:
            # A job's results take only paging parameters, because the query was sent with the job.
            params = render_mapping(self.spec.params, self.config)
            return {key: value for key, value in params.items() if key in self._report_job.results_params}
        params = render_mapping(self.spec.params, self.config, self._template_values(context))
        window = (context or {}).get(WINDOW_KEY)
        if window:
            params.update(self._window_params(window, context))
        if self.spec.changes is not None:
            params.update(self._full_read_params())
        return params

    def _template_values(self, context: Context | None) -> dict[str, dict[str, t.Any]]:
        """Return the {context.NAME} and {window.NAME} values for one request."""
        context = context or {}
        plain = {key: value for key, value in context.items() if not key.startswith("_spendlake")}
        return {"context": plain, "window": dict(context.get(WINDOW_KEY) or {})}

    def validate_response(self, response: requests.Response) -> None:
        """Apply the error policy, then check a streamed response batch by batch."""
        super().validate_response(response)
        if self.spec.paginator.type == "batches":
            self._check_batches(response)

    def _check_batches(self, response: requests.Response) -> None:
        """Raise for a response that is not an array of batch objects, or whose stream ended with an error.

        Google Ads streams over REST put a failure that happens mid-stream into
        the array, after the batches already sent, with HTTP 200.
        """
        path = urlparse(response.url).path
        body = response_json(response)
        if not isinstance(body, list):
            msg = f"Stream {self.name}: the response from path {path} is not a JSON array of batches; check api_url and api_version."
            raise FatalAPIError(msg)
        for index, batch in enumerate(body):
            if not isinstance(batch, dict):
                msg = f"Stream {self.name}: element {index} of the response from path {path} is not a batch object."
                raise FatalAPIError(msg)
            if "error" not in batch:
                continue
            self._raise_streamed_error(batch, index, path, response)

    def _raise_streamed_error(self, batch: dict[str, t.Any], index: int, path: str, response: requests.Response) -> t.NoReturn:
        """Raise for an error element as for the same error sent with its HTTP status.

        A retry delay longer than max_wait_seconds is a spent quota, 429 and 5xx
        codes are retried (after the stated delay), and other codes are fatal.
        """
        details = body_details(batch, self.error_policy.safe_fields)
        msg = f"Stream {self.name}: the response from path {path} ended with an error after {index} batch(es) ({details})"
        code = batch["error"].get("code") if isinstance(batch["error"], dict) else None
        if not (code == 429 or (isinstance(code, int) and code >= 500)):
            raise FatalAPIError(msg)
        hint = streamed_retry_hint(batch, self.error_policy)
        if hint is not None and hint > self.error_policy.max_wait_seconds:
            raise QuotaExhaustedError(wait_too_long_message(msg, hint, self.error_policy.max_wait_seconds), wait_hint=hint)
        raise ThrottledError(msg, response, wait_hint=hint)

    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        """Yield the records of the body: report rows by their headers, else the declared selector."""
        if self._feed is not None:
            self._note_response(response)
            yield from self._parse_changes(response)
            return
        if self._bookmark_cap and self._read_start is None:
            self._read_start = read_start(response, self.clock())
        body = response_json(response)
        if self.spec.report_format:
            if self.spec.report_format["type"] == "ga4":
                self._note_ga4_metadata(body)
            yield from report_records(body, self.spec.report_format, stream=self.name)
        else:
            yield from extract_jsonpath(self.spec.records, body)

    def _note_ga4_metadata(self, body: t.Any) -> None:
        """Count the quality flags of a GA4 response per window, and keep the daily tokens it reports left."""
        window = self._current_window
        label = f"{window['start']}..{window['end']}" if window.get("start") else "all days"
        for note in ga4_report_notes(body):
            self._report_notes.setdefault(note, []).append(label)
        tokens = ga4_tokens_left(body)
        if tokens is not None:
            self._tokens_left = tokens

    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        """Cut the record to the whitelist and drop a key already emitted in this run."""
        try:
            if CHANGE_MARK in row:
                shaped = self._shape_change(row)
            else:
                shaped = self._shaper.shape(row, self._field_values(context) if self._shaper.uses_templates else None)
        except FieldTransformError as error:
            label = self._shaper.key_label(row, self._field_values(context) if self._shaper.uses_templates else None)
            where = f" in the record with {label}" if label else ""
            raise FieldTransformError(f"Stream {self.name!r}{where}: {error}") from None
        key = tuple(shaped.get(name) for name in self.spec.primary_key)
        missing = [name for name, value in zip(self.spec.primary_key, key) if value is None]
        if missing:
            msg = (
                f"Stream {self.name!r}: a record has no value for primary-key field(s) {missing}; check the "
                "fields' paths in the declaration, or the breakdown the request asks for."
            )
            raise MissingKeyError(msg)
        if self.replication_key is not None and self.replication_key not in shaped:
            msg = (
                f"Stream {self.name!r}: a record has no {self.replication_key!r}, the replication key; check the "
                "field's path in the declaration, and keep the field in any projection the request asks for."
            )
            raise MissingKeyError(msg)
        if self._outside_window(shaped):
            self._days_outside_window += 1
        # Only reports compare row contents; other streams keep the first row of a re-read key.
        fingerprint = hash(msgspec.json.encode(shaped, order="sorted")) if self._is_daily_report else 0
        seen = self._seen_keys.get(key)
        if seen is None:
            self._seen_keys[key] = fingerprint
            return shaped
        if seen != fingerprint and self._is_daily_report:
            # Two different rows for one key in a report mean the key lacks a breakdown or segment.
            msg = (
                f"Stream {self.name!r}: two different rows share the primary key {list(self.spec.primary_key)}; "
                "add the missing breakdown or segment field to primary_key in the declaration."
            )
            raise PrimaryKeyConflictError(msg)
        self._duplicates += 1
        return None

    def _field_values(self, context: Context | None) -> dict[str, t.Any]:
        """Return the namespaces of `value` templates: the config, the partition's context and the current window."""
        return {**self._template_values({**(context or {}), WINDOW_KEY: self._current_window}), "config": self.config}

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Read every window, oldest first, then log one summary of dropped fields and duplicates.

        A spent quota or another fatal API error stops only this stream's current
        partition (one account): its bookmark stays where it was, the other
        accounts and streams go on, and the tap exits with an error at the end.
        So do retries that ran out and a time zone the API left invalid.
        """
        # The bookmark cap is taken from the first response of each partition.
        self._read_start = None
        last_day: str | None = None
        try:
            if self.spec.changes is not None:
                yield from self._change_records(context)
            else:
                for window in self._windows(context):
                    # The window travels in a copy of the context; state lookups keep using `context`.
                    window_context = {**(context or {}), WINDOW_KEY: window} if window else context
                    if self._report_job is not None and window:
                        yield from self._records_through_jobs(window_context)
                    else:
                        yield from self._read_pages(window_context)
                    last_day = window.get("end") if window and window.get("days") else None
        except (FatalAPIError, PartitionValueError) as error:
            # A spent quota, spent retries, a refused account or an unusable time zone stops this partition only.
            self._stop_partition(context, str(error))
        else:
            self._bookmark_last_day(context, last_day)
            self._finish_partition(context)

        self._log_summary()

    def _bookmark_last_day(self, context: Context | None, last_day: str | None) -> None:
        """Move a daily report's bookmark up to the last day read, so days without rows are not read again.

        The lookback still re-reads the recent days on the next run.
        """
        if last_day is None or self.replication_key is None:
            return
        super()._increment_stream_state({self.replication_key: last_day}, context=context)

    def _finish_partition(self, context: Context | None) -> None:
        """Promote a finished child partition's bookmark now, so a later failure cannot lose it."""
        if self.spec.state_keys and context:
            self.state_manager.finalize_state(self.get_context_state(context))

    def _stop_partition(self, context: Context | None, message: str) -> None:
        """Drop the partition's progress so its bookmark stays unchanged, and report the stop to the tap."""
        state = self.get_context_state(context)
        state.pop("progress_markers", None)
        self.logger.error("%s", message)
        self._tap.note_stopped_stream(message)

    def _outside_window(self, record: dict[str, t.Any]) -> bool:
        """Tell whether a report row is dated outside the day range it was requested for."""
        window = self._current_window
        if not window.get("days") or self.replication_key is None:
            return False
        day = str(record.get(self.replication_key) or "")[:10]
        return bool(day) and not (window["start"] <= day <= window["end"])

    def _increment_stream_state(self, latest_record: dict[str, t.Any], *, context: Context | None = None) -> None:
        """Advance the bookmark, except from report rows dated outside their requested days or without a value.

        With `bookmark_cap: read_start` the bookmark stops at the partition's read start.
        """
        if self._outside_window(latest_record):
            return
        if self.spec.replication is not None and latest_record.get(self.spec.replication.key) is None:
            self._null_bookmark_values += 1
            return
        if self._read_start is not None and self.replication_key is not None:
            latest_record = capped_record(latest_record, self.replication_key, self._read_start)
        super()._increment_stream_state(latest_record, context=context)

    def _log_summary(self) -> None:
        if self._null_bookmark_values:
            self.logger.warning(
                "Stream %s: %d record(s) had no %s value; they were kept, but the bookmark ignores them",
                self.name,
                self._null_bookmark_values,
                self.replication_key,
            )
            self._null_bookmark_values = 0
        if self._days_outside_window:
            self.logger.warning(
                "Stream %s: %d row(s) were dated outside the day range they were requested for; "
                "they were kept, but the bookmark ignores them",
                self.name,
                self._days_outside_window,
            )
            self._days_outside_window = 0
        for note, windows in self._report_notes.items():
            listed = ", ".join(sorted(set(windows))[:5]) + (", ..." if len(set(windows)) > 5 else "")
            self.logger.warning("Stream %s: %s, in %d response(s) (days %s)", self.name, note, len(windows), listed)
        self._report_notes = {}
        if self._tokens_left is not None:
            self.logger.info("Stream %s: the API reports %d quota tokens left today", self.name, self._tokens_left)
            self._tokens_left = None
        placeholders = self._shaper.sentinel_summary()
        if placeholders:
            self.logger.warning("Stream %s: %s", self.name, placeholders)
        summary = self._shaper.summary()
        if summary:
            self.logger.info("Stream %s: %s", self.name, summary)
        if self._duplicates:
            self.logger.info("Stream %s: skipped %d record(s) already emitted in this run", self.name, self._duplicates)

    def _read_pages(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        self._paginator = None
        # singer-sdk post-processes records with the partition's context, not this one.
        self._current_window = (context or {}).get(WINDOW_KEY) or {}
        yield from super().get_records(context)
        if self._paginator is not None:
            window = self._current_window
            where = f"window {window['start']} to {window.get('end') or 'now'}" if window.get("start") else ""
            self._paginator.reconcile(strict=self.spec.strict_totals, where=where)

    def _records_through_jobs(self, window_context: dict[str, t.Any]) -> t.Iterable[dict[str, t.Any]]:
        """Read one date window through asynchronous report jobs, halving the range when a job fails."""
        job_spec = self._report_job
        assert job_spec is not None
        runner = ReportJobRunner(
            job_spec, stream_name=self.name, send_json=self._send_for_job(window_context), sleep=self.retry_sleep, logger=self.logger
        )
        window = window_context[WINDOW_KEY]

        def range_context(since: date, until: date) -> dict[str, t.Any]:
            return {**window_context, WINDOW_KEY: {**window, "start": since.isoformat(), "end": until.isoformat()}}

        def job_request(since: date, until: date) -> tuple[str, dict[str, t.Any]]:
            context = range_context(since, until)
            return self.get_url(context)[len(self.url_base) :], self.get_url_params(context, None)

        since, until = date.fromisoformat(window["start"]), date.fromisoformat(window["end"])
        for job in run_with_splitting(runner, since, until, job_request):
            yield from self._read_pages({**range_context(job.since, job.until), JOB_KEY: job.job_id})

    def _send_for_job(self, context: Context | None) -> t.Callable[[str, str, dict[str, t.Any]], t.Any]:
        """Return a sender for job requests that uses the stream's auth, headers, retries and error policy."""

        def send_json(method: str, path: str, params: dict[str, t.Any]) -> t.Any:
            prepared = self.build_prepared_request(
                method=method, url=self.url_base + path, params=params, headers=self.http_headers
            )
            response = self.request_decorator(self._request)(prepared, context)
            return response_json(response)

        return send_json

    def apply_catalog(self, catalog: t.Any) -> None:
        """Apply selection from a catalog, but reject changes to the declared keys.

        A replication key on a personal field would put its raw values into
        STATE and logs, and a changed primary key would change row identity.
        """
        super().apply_catalog(catalog)
        declared_replication = declared_replication_key(self.spec)
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
            return self._request_reducing_page(prepared_request, context)
        except requests.exceptions.RequestException as error:
            if isinstance(error, requests.exceptions.HTTPError):
                raise
            path = urlparse(prepared_request.url or "").path
            message = f"{type(error).__name__} while requesting {self.source.name} path {path}"
            raise type(error)(message) from None

    def _request_reducing_page(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        """Send a request, and when the API requests less data, halve the page size and send it again.

        The smaller size is kept for the rest of the stream, including next links.
        """
        param = self.error_policy.reduce_page_param
        while True:
            if param and self._page_size is not None:
                _set_query_param(prepared_request, param, self._page_size)
            try:
                return super()._request(prepared_request, context)
            except PageTooLargeError:
                current = self._page_size or _query_int(prepared_request, param)
                smaller = halved_page_size(current, self.error_policy.reduce_page_minimum) if current else None
                if smaller is None:
                    msg = (
                        f"Stream {self.name}: the API still asks for less data with {param}={current or 'unset'}, "
                        "the smallest page allowed; narrow the request (fewer fields or a shorter window)."
                    )
                    raise FatalAPIError(msg) from None
                self.logger.warning(
                    "Stream %s: the API requested less data per page; %s %d -> %d", self.name, param, current, smaller
                )
                self._page_size = smaller

    def response_error_message(self, response: requests.Response) -> str:
        """Describe an HTTP error, with the declaration's next step for its status (`status_hints`)."""
        message = super().response_error_message(response)
        hint = self.source.status_hints.get(response.status_code)
        return f"{message}. {hint}" if hint else message

    def backoff_handler(self, details: t.Any) -> None:
        """Log a retry with the path, the attempt and the wait, never the request's query or body."""
        error = details.get("exception")
        request = next((arg for arg in details.get("args", ()) if isinstance(arg, requests.PreparedRequest)), None)
        self.logger.warning(
            "Stream %s: retrying %s in %.1f s after attempt %d (%s)",
            self.name,
            urlparse(request.url or "").path if request is not None else self.path,
            details.get("wait") or 0.0,
            details.get("tries") or 0,
            type(error).__name__ if error is not None else "no exception",
        )


def declared_replication_key(spec: StreamSpec) -> str | None:
    """Return the stream's bookmark field: the declared key, the change time of a change feed, or None."""
    if spec.replication:
        return spec.replication.key
    if spec.changes:
        return CHANGED_AT
    return None


def _set_query_param(request: requests.PreparedRequest, name: str, value: int) -> None:
    """Replace a query parameter's value in a prepared request, when the parameter is present."""
    parts = urlparse(request.url or "")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(key == name for key, _ in query):
        return
    updated = [(key, str(value) if key == name else item) for key, item in query]
    request.url = urlunparse(parts._replace(query=urlencode(updated)))


def _query_int(request: requests.PreparedRequest, name: str | None) -> int | None:
    if not name:
        return None
    for key, value in parse_qsl(urlparse(request.url or "").query):
        if key == name and value.isdigit():
            return int(value)
    return None
