"""Asynchronous report jobs: submit a report, poll its status, then read its results.

Some report APIs (Meta's async insights) return a job id instead of rows for a
large request. `ReportJobRunner` submits the job, polls its status with
waits that grow by 1.5x up to a cap, and returns the job id once the job is
done, so the stream can read the rows at `results_path`.

A job fails when its status is one of the declared failed values. It is
judged stalled when it stops making progress for a number of polls in a row.
There is deliberately no wall-clock limit, because a large job that keeps
moving slowly can take an hour and still succeed. `run_with_splitting` handles
a failed or stalled job by splitting its date range in two halves.

Errors and log lines name the stream, the job id, statuses and the declared
safe error fields. They never contain request params (which may carry an
access token) or any other part of a response body.
"""

from __future__ import annotations

import logging
import time
import typing as t
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import quote

from jsonschema import Draft202012Validator

from taps.engine.responses import read_dotted

LOGGER = logging.getLogger(__name__)

JOB_ID_PLACEHOLDER = "{job_id}"

#: Each wait between two polls is this many times the wait before it, up to `max_poll_seconds`.
WAIT_GROWTH = 1.5

# A path template: a leading slash and exactly one {job_id}, with no other braces.
_PATH_TEMPLATE_PATTERN = r"^/[^{}]*\{job_id\}[^{}]*$"
_PATH_TEMPLATE_HINT = (
    "must start with '/' and contain the placeholder {job_id} exactly once and no other placeholder, "
    "for example '/{job_id}/insights'"
)

# A dotted path with no empty step, such as 'report_run_id' or 'error.code'.
_DOTTED_PATTERN = r"^[^.\s]+(\.[^.\s]+)*$"
_DOTTED_HINT = "must be a dotted path with no empty step, for example 'report_run_id' or 'error.code'"


def _dotted(description: str) -> dict[str, t.Any]:
    return {"type": "string", "pattern": _DOTTED_PATTERN, "description": description}


def _path_template(description: str) -> dict[str, t.Any]:
    return {"type": "string", "pattern": _PATH_TEMPLATE_PATTERN, "description": description}


def _status_values(description: str) -> dict[str, t.Any]:
    return {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "string", "minLength": 1},
        "description": description,
    }


REPORT_JOB_SCHEMA: dict[str, t.Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["job_id_path", "status_path", "status_field", "done_values", "failed_values", "results_path"],
    "description": (
        "Read the stream through an asynchronous report job: submit the request, poll the job's status "
        "until it is done, then read the rows from the results path with the stream's paginator."
    ),
    "properties": {
        "submit_method": {
            "enum": ["POST", "GET"],
            "default": "POST",
            "description": "HTTP method that submits the job to the stream's path, with the stream's params.",
        },
        "job_id_path": _dotted("Dotted path of the job id in the submit response, for example 'report_run_id'."),
        "status_path": _path_template("Request path of the job's status, for example '/{job_id}'."),
        "status_params": {
            "type": "object",
            "additionalProperties": {"type": ["string", "integer", "boolean"]},
            "default": {},
            "description": "Query parameters sent with every status request, for example the fields to return.",
        },
        "status_field": _dotted("Dotted path of the job's status in the status response, for example 'async_status'."),
        "progress_field": {
            **_dotted(
                "Dotted path of the job's progress in the status response, for example 'async_percent_completion'. "
                "Without it, only a change of status counts as progress."
            ),
            "type": ["string", "null"],
            "default": None,
        },
        "done_values": _status_values("Status values that mean the job finished and its results can be read."),
        "failed_values": _status_values("Status values that mean the job failed and will not finish."),
        "results_path": _path_template("Request path of the job's rows, for example '/{job_id}/insights'."),
        "error_fields": {
            "type": "array",
            "uniqueItems": True,
            "items": _dotted("Dotted path in the status response."),
            "default": [],
            "description": (
                "Dotted paths in a failed job's status response that are safe to show in the error message, "
                "such as error_code and error_subcode. List only fields that never echo request values."
            ),
        },
        "poll_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 2,
            "description": "Wait in seconds before the first status request.",
        },
        "max_poll_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 30,
            "description": "Longest wait in seconds between two status requests; each wait is 1.5 times the one before.",
        },
        "stall_polls": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": 20,
            "description": (
                "The job is judged stalled after this many status responses in a row that show no new "
                "status or progress. There is no limit on the total time a job may take."
            ),
        },
        "split_on_failure": {
            "type": "boolean",
            "default": True,
            "description": "Split the date range in two halves and submit each when a job fails or stalls.",
        },
        "results_params": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": ["limit"],
            "description": "Names of the stream's params also sent when reading a finished job's results (page size); the rest went with the job.",
        },
    },
}


@dataclass(frozen=True)
class ReportJobSpec:
    """The `report_job` section of a stream declaration, with defaults filled in."""

    job_id_path: str
    status_path: str
    status_field: str
    done_values: tuple[str, ...]
    failed_values: tuple[str, ...]
    results_path: str
    submit_method: str = "POST"
    status_params: t.Mapping[str, t.Any] = field(default_factory=dict)
    progress_field: str | None = None
    error_fields: tuple[str, ...] = ()
    poll_seconds: float = 2.0
    max_poll_seconds: float = 30.0
    stall_polls: int = 20
    split_on_failure: bool = True
    results_params: tuple[str, ...] = ("limit",)


#: Why a job ended without results: a failed status value, or no progress for `stall_polls` polls.
FailureReason = t.Literal["failed", "stalled"]


class ReportJobFailed(RuntimeError):
    """Raised when a report job ends with a failed status (`reason` "failed") or stops making progress ("stalled")."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str,
        reason: FailureReason,
        status: t.Any = None,
        progress: t.Any = None,
        error_details: t.Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.reason = reason
        self.status = status
        self.progress = progress
        self.error_details = dict(error_details or {})


class ReportJobResponseError(RuntimeError):
    """Raised when a submit or status response lacks the declared job id or status.

    The cause is the declaration or an API change, so `run_with_splitting` raises it
    at once instead of splitting the date range.
    """


def report_job_problems(section: t.Any, *, place: str = "report_job") -> list[str]:
    """Return every problem in a `report_job` section, each prefixed with its dotted path under `place`."""
    problems = _schema_problems(section, place)
    if problems:
        return problems

    defaults = REPORT_JOB_SCHEMA["properties"]
    poll = section.get("poll_seconds", defaults["poll_seconds"]["default"])
    cap = section.get("max_poll_seconds", defaults["max_poll_seconds"]["default"])
    if poll > cap:
        problems.append(f"{place}.poll_seconds: {poll} is above max_poll_seconds ({cap}); lower it or raise the cap")

    overlap = sorted(set(section["done_values"]) & set(section["failed_values"]))
    if overlap:
        listed = ", ".join(repr(value) for value in overlap)
        problems.append(f"{place}.failed_values: {listed} also listed in done_values; keep each status in one list")
    return problems


def _schema_problems(section: t.Any, place: str) -> list[str]:
    validator = Draft202012Validator(REPORT_JOB_SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(section), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join([place, *map(str, error.absolute_path)])
        if error.validator == "additionalProperties" and not error.absolute_path:
            problems.extend(_unknown_option_problems(error.instance, place))
        elif error.validator == "required" and not error.absolute_path:
            problems.extend(_missing_option_problems(error.instance, place))
        else:
            problems.append(f"{where}: {_schema_message(error)}")

    # jsonschema reports each missing or unknown option once per option, and the helpers list them all.
    return list(dict.fromkeys(problems))


def _unknown_option_problems(section: dict[str, t.Any], place: str) -> list[str]:
    allowed = REPORT_JOB_SCHEMA["properties"]
    return [
        f"{place}.{name}: not an option of report_job; remove it or check its spelling (allowed: {', '.join(allowed)})"
        for name in sorted(set(section) - set(allowed))
    ]


def _missing_option_problems(section: dict[str, t.Any], place: str) -> list[str]:
    missing = [name for name in REPORT_JOB_SCHEMA["required"] if name not in section]
    return [f"{place}.{name}: missing; add it. {REPORT_JOB_SCHEMA['properties'][name]['description']}" for name in missing]


def _schema_message(error: t.Any) -> str:
    if error.validator == "pattern" and error.validator_value == _PATH_TEMPLATE_PATTERN:
        return f"{error.instance!r} {_PATH_TEMPLATE_HINT}"
    if error.validator == "pattern" and error.validator_value == _DOTTED_PATTERN:
        return f"{error.instance!r} {_DOTTED_HINT}"
    if error.validator == "enum":
        allowed = ", ".join(str(value) for value in error.validator_value)
        return f"{error.instance!r} is not one of the allowed values: {allowed}"
    return error.message


def parse_report_job(section: t.Any, *, place: str = "report_job") -> ReportJobSpec:
    """Validate a `report_job` section and build its spec.

    Raises ValueError that lists every problem with its path, such as `report_job.status_path`.
    """
    problems = report_job_problems(section, place=place)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ValueError(f"Invalid {place} section ({len(problems)} problem(s)):\n{listing}")

    def option(name: str) -> t.Any:
        return section.get(name, REPORT_JOB_SCHEMA["properties"][name]["default"])

    return ReportJobSpec(
        job_id_path=section["job_id_path"],
        status_path=section["status_path"],
        status_field=section["status_field"],
        done_values=tuple(section["done_values"]),
        failed_values=tuple(section["failed_values"]),
        results_path=section["results_path"],
        submit_method=option("submit_method"),
        status_params=dict(option("status_params")),
        progress_field=option("progress_field"),
        error_fields=tuple(option("error_fields")),
        poll_seconds=float(option("poll_seconds")),
        max_poll_seconds=float(option("max_poll_seconds")),
        stall_polls=option("stall_polls"),
        split_on_failure=option("split_on_failure"),
        results_params=tuple(option("results_params")),
    )


def status_path(spec: ReportJobSpec, job_id: str) -> str:
    """Return the request path of a job's status, with the job id percent-encoded."""
    return _fill_job_id(spec.status_path, job_id)


def results_path(spec: ReportJobSpec, job_id: str) -> str:
    """Return the request path of a job's rows, with the job id percent-encoded."""
    return _fill_job_id(spec.results_path, job_id)


def _fill_job_id(template: str, job_id: str) -> str:
    # Encoding '/' too keeps an odd id from reaching another path of the API.
    return template.replace(JOB_ID_PLACEHOLDER, quote(job_id, safe=""))


_MAX_SHOWN_LENGTH = 200


def _shown_value(value: t.Any) -> str | None:
    """Return a scalar from a response as one short line for a message, or None for other types."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    text = " ".join(str(value).split())
    if len(text) > _MAX_SHOWN_LENGTH:
        text = text[: _MAX_SHOWN_LENGTH - 3] + "..."
    return text


@dataclass(frozen=True)
class JobStatus:
    """One status response, reduced to the status, the progress and the declared safe error fields."""

    status: t.Any
    progress: t.Any
    error_details: t.Mapping[str, str]

    @property
    def observation(self) -> tuple[str, str]:
        """The pair compared between polls to detect progress. Types are kept apart, so 1 differs from '1'."""
        return (repr(self.status), repr(self.progress))


class StallDetector:
    """Counts status responses in a row that bring nothing new.

    A response brings something new when its (status, progress) pair differs
    from every earlier response of the same job. A job that alternates between
    two statuses at the same progress therefore stalls too, instead of being
    polled forever.
    """

    def __init__(self, stall_polls: int) -> None:
        self.stall_polls = stall_polls
        self.unchanged_polls = 0
        self._seen: set[tuple[str, str]] = set()

    def record(self, status: JobStatus) -> bool:
        """Record one status response and return True once the job is judged stalled."""
        if status.observation in self._seen:
            self.unchanged_polls += 1
        else:
            self._seen.add(status.observation)
            self.unchanged_polls = 0
        return self.unchanged_polls >= self.stall_polls


def poll_waits(spec: ReportJobSpec) -> t.Iterator[float]:
    """Yield the waits in seconds before each status request: poll_seconds, then 1.5x each time up to the cap."""
    wait = min(spec.poll_seconds, spec.max_poll_seconds)
    while True:
        yield wait
        wait = min(wait * WAIT_GROWTH, spec.max_poll_seconds)


SendJson = t.Callable[[str, str, dict[str, t.Any]], t.Any]


class ReportJobRunner:
    """Submits one report job and polls it until it is done, failed or stalled.

    `send_json(method, path, params)` performs one request, with the stream's
    auth, retries and error handling, and returns the parsed JSON body. `sleep`
    is injected so tests can observe the waits without waiting.
    """

    def __init__(
        self,
        spec: ReportJobSpec,
        *,
        stream_name: str,
        send_json: SendJson,
        sleep: t.Callable[[float], None] = time.sleep,
        logger: logging.Logger | None = None,
    ) -> None:
        self.spec = spec
        self.stream_name = stream_name
        self._send_json = send_json
        self._sleep = sleep
        self.logger = logger or LOGGER

    def run(self, submit_path: str, params: dict[str, t.Any]) -> str:
        """Submit a job to `submit_path` with `params`, wait until it is done and return its id.

        Raises ReportJobFailed when the job fails or stalls, and
        ReportJobResponseError when a response lacks the declared job id or status.
        """
        job_id = self._submit(submit_path, params)
        self.logger.info("Stream %s: submitted report job %s", self.stream_name, job_id)

        detector = StallDetector(self.spec.stall_polls)
        waits = poll_waits(self.spec)
        polls = 0
        while True:
            wait = next(waits)
            self._sleep(wait)
            polls += 1
            status = self._poll(job_id)
            self.logger.debug(
                "Stream %s: report job %s poll %d after %.1f s: status %s, progress %s",
                self.stream_name,
                job_id,
                polls,
                wait,
                _shown_value(status.status),
                _shown_value(status.progress),
            )

            if status.status in self.spec.done_values:
                self.logger.info("Stream %s: report job %s finished after %d poll(s)", self.stream_name, job_id, polls)
                return job_id
            if status.status in self.spec.failed_values:
                raise self._failure(job_id, "failed", status, polls)
            if detector.record(status):
                # NOTE: a stalled job is abandoned here, not cancelled, so the API may keep working on it.
                raise self._failure(job_id, "stalled", status, polls)

    def _submit(self, submit_path: str, params: dict[str, t.Any]) -> str:
        body = self._send_json(self.spec.submit_method, submit_path, params)
        job_id = _job_id_text(read_dotted(body, self.spec.job_id_path))
        if job_id is None:
            msg = (
                f"Stream {self.stream_name!r}: the response to the report job submission has no job id "
                f"(an integer, or a printable string without spaces) at {self.spec.job_id_path!r}. Check report_job.job_id_path "
                "against the API's response."
            )
            raise ReportJobResponseError(msg)
        return job_id

    def _poll(self, job_id: str) -> JobStatus:
        body = self._send_json("GET", status_path(self.spec, job_id), dict(self.spec.status_params))
        status = read_dotted(body, self.spec.status_field)
        if status is None:
            msg = (
                f"Stream {self.stream_name!r}: the status response of report job {job_id} has no value at "
                f"{self.spec.status_field!r}. Check report_job.status_field and status_path against the API's response."
            )
            raise ReportJobResponseError(msg)

        progress = read_dotted(body, self.spec.progress_field) if self.spec.progress_field else None
        return JobStatus(status=status, progress=progress, error_details=self._error_details(body))

    def _error_details(self, body: t.Any) -> dict[str, str]:
        details = {}
        for dotted in self.spec.error_fields:
            text = _shown_value(read_dotted(body, dotted))
            if text:
                details[dotted] = text
        return details

    def _failure(self, job_id: str, reason: FailureReason, status: JobStatus, polls: int) -> ReportJobFailed:
        state = f"status {_shown_value(status.status)!r}"
        if self.spec.progress_field:
            state += f" and progress {_shown_value(status.progress)}"

        if reason == "failed":
            message = f"Stream {self.stream_name!r}: report job {job_id} failed with {state} after {polls} poll(s)"
            next_step = "Run the stream again. A shorter date range may succeed."
        else:
            message = (
                f"Stream {self.stream_name!r}: report job {job_id} stalled with {state}: the last "
                f"{self.spec.stall_polls} status response(s) showed no new status or progress ({polls} poll(s) in all)"
            )
            next_step = "Run the stream again later, or request a shorter date range."

        if status.error_details:
            message += " (" + ", ".join(f"{name}={text}" for name, text in status.error_details.items()) + ")"
        return ReportJobFailed(
            f"{message}. {next_step}",
            job_id=job_id,
            reason=reason,
            status=status.status,
            progress=status.progress,
            error_details=status.error_details,
        )


_MAX_JOB_ID_LENGTH = 200


def _job_id_text(value: t.Any) -> str | None:
    """Return a job id as text, or None unless it is an integer or a short printable string without spaces.

    The id goes into request paths and log lines, so line breaks and other control characters are rejected.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_JOB_ID_LENGTH:
        return None
    if not value.isprintable() or any(character.isspace() for character in value):
        return None
    return value


DateRange = tuple[date, date]


def split_date_range(since: date, until: date) -> tuple[DateRange, DateRange] | None:
    """Split an inclusive date range into two inclusive halves, the older one first.

    Returns None for a single day. With an odd number of days the older half has the extra day.
    """
    if since > until:
        msg = f"The date range {since.isoformat()} to {until.isoformat()} ends before it starts; swap the bounds."
        raise ValueError(msg)
    if since == until:
        return None

    middle = since + timedelta(days=(until - since).days // 2)
    return (since, middle), (middle + timedelta(days=1), until)


class FinishedJob(t.NamedTuple):
    """A report job that is done: the inclusive date range it covers and its id."""

    since: date
    until: date
    job_id: str


# Builds the submit path and the params of one job for an inclusive date range.
JobRequest = t.Callable[[date, date], tuple[str, dict[str, t.Any]]]


def run_with_splitting(runner: ReportJobRunner, since: date, until: date, request: JobRequest) -> t.Iterator[FinishedJob]:
    """Run one job for the range, splitting the range in halves when a job fails or stalls.

    Yields each finished job, oldest range first, before the next job is
    submitted, so the caller can read a job's rows and commit them first. The
    halves of a failed range are tried depth-first, so a failure that splitting
    cannot fix raises after about log2(days) + 1 jobs. A single day that still
    fails raises its ReportJobFailed, and so does any failure when
    `split_on_failure` is false.
    """
    submit_path, params = request(since, until)
    try:
        job_id = runner.run(submit_path, params)
    except ReportJobFailed as error:
        halves = split_date_range(since, until) if runner.spec.split_on_failure else None
        if halves is None:
            raise
        _log_split(runner, error, since, until, halves)
        for half_since, half_until in halves:
            yield from run_with_splitting(runner, half_since, half_until, request)
        return

    yield FinishedJob(since=since, until=until, job_id=job_id)


def _log_split(
    runner: ReportJobRunner,
    error: ReportJobFailed,
    since: date,
    until: date,
    halves: tuple[DateRange, DateRange],
) -> None:
    (older_since, older_until), (newer_since, newer_until) = halves
    runner.logger.warning(
        "Stream %s: report job %s for %s to %s %s; submitting %s to %s and %s to %s as separate jobs",
        runner.stream_name,
        error.job_id,
        since.isoformat(),
        until.isoformat(),
        error.reason,
        older_since.isoformat(),
        older_until.isoformat(),
        newer_since.isoformat(),
        newer_until.isoformat(),
    )
