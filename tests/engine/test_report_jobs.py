"""Asynchronous report jobs of `taps.engine.report_jobs`: declaration, polling, stalls and splitting.

The API is replaced by a scripted `send_json`, a test double for the transport
only. The runner, the stall detector and the splitting driver are the real code.
"""

from __future__ import annotations

import copy
import json
import logging
import typing as t
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from taps.engine.report_jobs import (
    REPORT_JOB_SCHEMA,
    FinishedJob,
    ReportJobFailed,
    ReportJobResponseError,
    ReportJobRunner,
    ReportJobSpec,
    parse_report_job,
    poll_waits,
    report_job_problems,
    results_path,
    run_with_splitting,
    split_date_range,
    status_path,
)

TOKEN = "tok-secret-5b4a3c"
CANARY = "canary.person@example.com"
LOGGER_NAME = "taps.engine.report_jobs"
PLACE = "streams.ads_insights.report_job"

# A Meta async insights declaration, as a source's YAML would hold it.
META_SECTION: dict[str, t.Any] = {
    "submit_method": "POST",
    "job_id_path": "report_run_id",
    "status_path": "/{job_id}",
    "status_field": "async_status",
    "progress_field": "async_percent_completion",
    "done_values": ["Job Completed"],
    "failed_values": ["Job Failed", "Job Skipped"],
    "results_path": "/{job_id}/insights",
    "error_fields": ["error_code", "error_subcode", "error_message"],
}

SUBMIT_PATH = "/act_1001/insights"
SUBMIT_PARAMS = {"access_token": TOKEN, "level": "ad", "time_increment": 1}


def meta_spec(**overrides: t.Any) -> ReportJobSpec:
    return parse_report_job({**META_SECTION, **overrides}, place=PLACE)


def running(progress: int, status: str = "Job Running") -> dict[str, t.Any]:
    return {"id": "6021", "async_status": status, "async_percent_completion": progress}


COMPLETED = {"id": "6021", "async_status": "Job Completed", "async_percent_completion": 100}


class ScriptedApi:
    """A `send_json` that returns the submit response first, then the scripted status responses in order."""

    def __init__(self, statuses: list[dict[str, t.Any]], submit_answer: t.Any = None) -> None:
        self.submit_answer = {"report_run_id": "6021"} if submit_answer is None else submit_answer
        self.statuses = list(statuses)
        self.calls: list[tuple[str, str, dict[str, t.Any]]] = []

    def __call__(self, method: str, path: str, params: dict[str, t.Any]) -> t.Any:
        self.calls.append((method, path, copy.deepcopy(params)))
        if len(self.calls) == 1:
            return self.submit_answer
        return self.statuses.pop(0)

    @property
    def status_requests(self) -> list[tuple[str, str, dict[str, t.Any]]]:
        return self.calls[1:]


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_runner(spec: ReportJobSpec, api: t.Any, sleep: RecordingSleep | None = None) -> ReportJobRunner:
    return ReportJobRunner(spec, stream_name="ads_insights", send_json=api, sleep=sleep or RecordingSleep())


# Declaration


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(REPORT_JOB_SCHEMA)

    assert REPORT_JOB_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_meta_section_parses_with_defaults() -> None:
    spec = parse_report_job(META_SECTION, place=PLACE)

    assert spec.job_id_path == "report_run_id"
    assert spec.status_path == "/{job_id}"
    assert spec.results_path == "/{job_id}/insights"
    assert spec.status_field == "async_status"
    assert spec.progress_field == "async_percent_completion"
    assert spec.done_values == ("Job Completed",)
    assert spec.failed_values == ("Job Failed", "Job Skipped")
    assert spec.error_fields == ("error_code", "error_subcode", "error_message")
    assert spec.submit_method == "POST"
    assert spec.status_params == {}
    assert spec.poll_seconds == 2.0
    assert spec.max_poll_seconds == 30.0
    assert spec.stall_polls == 20
    assert spec.split_on_failure is True


def test_minimal_section_defaults() -> None:
    section = {key: META_SECTION[key] for key in REPORT_JOB_SCHEMA["required"]}

    spec = parse_report_job(section)

    assert spec.progress_field is None
    assert spec.error_fields == ()
    assert spec.submit_method == "POST"


def test_bad_section_lists_every_problem() -> None:
    bad = {
        **META_SECTION,
        "submit_method": "PUT",
        "status_path": "/report",
        "results_path": "/{job_id}/{config.account_id}",
        "status_field": "async..status",
        "poll_seconds": 0,
        "stall_polls": 0,
        "stall_poll": 5,
        "done_values": [],
    }

    problems = report_job_problems(bad, place=PLACE)

    assert f"{PLACE}.submit_method: 'PUT' is not one of the allowed values: POST, GET" in problems
    assert any(p.startswith(f"{PLACE}.status_path: '/report' must start with '/' and contain the placeholder {{job_id}}") for p in problems)
    assert any(p.startswith(f"{PLACE}.results_path: '/{{job_id}}/{{config.account_id}}'") for p in problems)
    assert any(p.startswith(f"{PLACE}.status_field: 'async..status' must be a dotted path") for p in problems)
    assert any(p.startswith(f"{PLACE}.poll_seconds:") for p in problems)
    assert any(p.startswith(f"{PLACE}.stall_polls:") for p in problems)
    assert any(p.startswith(f"{PLACE}.stall_poll: not an option of report_job; remove it") for p in problems)
    assert any(p.startswith(f"{PLACE}.done_values:") for p in problems)
    assert len(problems) == 8


def test_missing_options_named_by_path() -> None:
    problems = report_job_problems({"job_id_path": "report_run_id"}, place=PLACE)

    for name in ("status_path", "status_field", "done_values", "failed_values", "results_path"):
        assert sum(p.startswith(f"{PLACE}.{name}: missing; add it.") for p in problems) == 1
    assert len(problems) == 5


def test_semantic_problems_after_schema() -> None:
    section = {**META_SECTION, "poll_seconds": 40, "done_values": ["Job Completed", "Job Skipped"]}

    problems = report_job_problems(section, place=PLACE)

    assert problems == [
        f"{PLACE}.poll_seconds: 40 is above max_poll_seconds (30); lower it or raise the cap",
        f"{PLACE}.failed_values: 'Job Skipped' also listed in done_values; keep each status in one list",
    ]


def test_parse_raises_with_problem_paths() -> None:
    with pytest.raises(ValueError, match=r"Invalid streams\.ads_insights\.report_job section \(2 problem\(s\)\)") as caught:
        parse_report_job({**META_SECTION, "submit_method": "PUT", "max_poll_seconds": -1}, place=PLACE)

    assert f"{PLACE}.submit_method" in str(caught.value)
    assert f"{PLACE}.max_poll_seconds" in str(caught.value)


def test_section_must_be_mapping() -> None:
    with pytest.raises(ValueError, match=r"report_job: None is not of type 'object'"):
        parse_report_job(None)


# Paths


def test_paths_fill_job_id() -> None:
    spec = meta_spec()

    assert status_path(spec, "6021") == "/6021"
    assert results_path(spec, "6021") == "/6021/insights"


def test_paths_encode_slashes_in_job_id() -> None:
    spec = meta_spec()

    assert status_path(spec, "12/../act_9") == "/12%2F..%2Fact_9"
    assert results_path(spec, "a b?c") == "/a%20b%3Fc/insights"


# Lifecycle


def test_job_done_after_polls(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    api = ScriptedApi([running(0, "Job Not Started"), running(0, "Job Started"), running(40), running(80), COMPLETED])
    sleep = RecordingSleep()

    job_id = make_runner(meta_spec(), api, sleep).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert job_id == "6021"
    assert api.calls[0] == ("POST", SUBMIT_PATH, SUBMIT_PARAMS)
    assert api.status_requests == [("GET", "/6021", {})] * 5
    assert sleep.waits == [2.0, 3.0, 4.5, 6.75, 10.125]

    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [
        "Stream ads_insights: submitted report job 6021",
        "Stream ads_insights: report job 6021 finished after 5 poll(s)",
    ]
    debugs = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debugs) == 5
    assert "poll 3 after 4.5 s: status Job Running, progress 40" in debugs[2]


def test_done_on_first_poll() -> None:
    api = ScriptedApi([COMPLETED])
    sleep = RecordingSleep()

    assert make_runner(meta_spec(), api, sleep).run(SUBMIT_PATH, SUBMIT_PARAMS) == "6021"
    assert sleep.waits == [2.0]
    assert len(api.status_requests) == 1


def test_logs_never_show_params_or_bodies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    answer = {**running(50), "account_id": CANARY}
    api = ScriptedApi([answer, {**COMPLETED, "account_id": CANARY}])

    make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert caplog.records
    assert TOKEN not in caplog.text
    assert CANARY not in caplog.text
    assert "access_token" not in caplog.text


def test_status_params_sent_with_each_poll() -> None:
    fields = {"fields": "async_status,async_percent_completion,error_code"}
    api = ScriptedApi([running(10), COMPLETED])

    make_runner(meta_spec(status_params=fields), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert api.status_requests == [("GET", "/6021", fields), ("GET", "/6021", fields)]


def test_get_submission_and_integer_job_id() -> None:
    api = ScriptedApi([COMPLETED], submit_answer={"report": {"id": 77}})
    spec = meta_spec(submit_method="GET", job_id_path="report.id")

    assert make_runner(spec, api).run(SUBMIT_PATH, SUBMIT_PARAMS) == "77"
    assert api.calls[0][0] == "GET"
    assert api.status_requests[0][1] == "/77"


def test_waits_grow_then_cap() -> None:
    statuses = [running(progress) for progress in range(1, 9)] + [COMPLETED]
    api = ScriptedApi(statuses)
    sleep = RecordingSleep()

    make_runner(meta_spec(poll_seconds=2, max_poll_seconds=5), api, sleep).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert sleep.waits == [2.0, 3.0, 4.5, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_first_wait_not_above_cap() -> None:
    spec = ReportJobSpec(
        job_id_path="id", status_path="/{job_id}", status_field="s", done_values=("d",), failed_values=("f",),
        results_path="/{job_id}/r", poll_seconds=10, max_poll_seconds=4,
    )
    waits = poll_waits(spec)

    assert [next(waits) for _ in range(3)] == [4, 4, 4]


# Failures


def test_failed_job_shows_safe_fields_only() -> None:
    failed = {
        **running(45, "Job Failed"),
        "error_code": 2,
        "error_subcode": 1504043,
        "error_message": "An unknown error occurred",
        "error_user_title": f"Report for {CANARY}",
        "error_user_msg": f"Contact {CANARY}",
    }
    api = ScriptedApi([running(10), failed])

    with pytest.raises(ReportJobFailed, match=r"report job 6021 failed with status 'Job Failed' and progress 45 after 2 poll\(s\)") as caught:
        make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    error = caught.value
    message = str(error)
    assert error.reason == "failed"
    assert error.job_id == "6021"
    assert error.status == "Job Failed"
    assert error.progress == 45
    assert error.error_details == {
        "error_code": "2",
        "error_subcode": "1504043",
        "error_message": "An unknown error occurred",
    }
    assert "(error_code=2, error_subcode=1504043, error_message=An unknown error occurred)" in message
    assert "Stream 'ads_insights'" in message
    assert CANARY not in message
    assert TOKEN not in message
    assert "error_user" not in message


def test_skipped_job_is_failed() -> None:
    api = ScriptedApi([running(0, "Job Skipped")])

    with pytest.raises(ReportJobFailed, match="failed with status 'Job Skipped'") as caught:
        make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert caught.value.reason == "failed"
    assert caught.value.error_details == {}


def test_long_error_message_is_cut() -> None:
    failed = {**running(5, "Job Failed"), "error_message": "x" * 500}
    api = ScriptedApi([failed])

    with pytest.raises(ReportJobFailed) as caught:
        make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert caught.value.error_details["error_message"] == "x" * 197 + "..."
    assert "x" * 198 not in str(caught.value)


def test_missing_job_id_rejected() -> None:
    api = ScriptedApi([], submit_answer={"id": CANARY, "error": {"message": TOKEN}})

    with pytest.raises(ReportJobResponseError, match=r"has no job id .* at 'report_run_id'\. Check report_job\.job_id_path") as caught:
        make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert CANARY not in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert len(api.calls) == 1


@pytest.mark.parametrize(("job_id", "expected"), [("6021", "6021"), (6021, "6021"), ("7" * 200, "7" * 200), ("run-A_1:2", "run-A_1:2")])
def test_job_id_forms_accepted(job_id: t.Any, expected: str) -> None:
    api = ScriptedApi([COMPLETED], submit_answer={"report_run_id": job_id})

    assert make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS) == expected


@pytest.mark.parametrize("job_id", ["", "   ", "12 34", "12\n34", "7" * 201, True, None, 1.5, {"id": "1"}, ["1"]])
def test_unusable_job_ids_rejected(job_id: t.Any) -> None:
    api = ScriptedApi([], submit_answer={"report_run_id": job_id})

    with pytest.raises(ReportJobResponseError, match="has no job id"):
        make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS)


def test_missing_status_rejected() -> None:
    api = ScriptedApi([{"id": "6021", "status": "Job Running", "note": CANARY}])

    with pytest.raises(ReportJobResponseError, match=r"report job 6021 has no value at 'async_status'\. Check report_job\.status_field") as caught:
        make_runner(meta_spec(), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert CANARY not in str(caught.value)


# Stalls


@pytest.mark.parametrize("stall_polls", [1, 4, 20])
def test_stall_after_exact_unchanged_polls(stall_polls: int) -> None:
    api = ScriptedApi([running(30)] * (stall_polls + 1) + [COMPLETED])

    with pytest.raises(ReportJobFailed, match=rf"stalled with status 'Job Running' and progress 30: the last {stall_polls} status") as caught:
        make_runner(meta_spec(stall_polls=stall_polls), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert caught.value.reason == "stalled"
    assert caught.value.job_id == "6021"
    # The first response sets the baseline, then `stall_polls` responses repeat it.
    assert len(api.status_requests) == stall_polls + 1


@pytest.mark.parametrize("stall_polls", [1, 4, 20])
def test_no_stall_one_poll_earlier(stall_polls: int) -> None:
    api = ScriptedApi([running(30)] * stall_polls + [running(31)] * stall_polls + [COMPLETED])

    assert make_runner(meta_spec(stall_polls=stall_polls), api).run(SUBMIT_PATH, SUBMIT_PARAMS) == "6021"
    assert len(api.status_requests) == 2 * stall_polls + 1


def test_slow_progress_never_stalls() -> None:
    # Progress moves one point every third poll, for 300 polls at the 30 s cap.
    statuses = [running(poll // 3) for poll in range(300)] + [COMPLETED]
    api = ScriptedApi(statuses)
    sleep = RecordingSleep()

    job_id = make_runner(meta_spec(stall_polls=3), api, sleep).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert job_id == "6021"
    assert len(api.status_requests) == 301
    assert max(sleep.waits) == 30.0
    assert sum(sleep.waits) > 2 * 3600


def test_status_change_counts_as_progress() -> None:
    statuses = [running(0, "Job Not Started")] * 3 + [running(0, "Job Started")] * 3 + [COMPLETED]
    api = ScriptedApi(statuses)

    assert make_runner(meta_spec(stall_polls=3), api).run(SUBMIT_PATH, SUBMIT_PARAMS) == "6021"


def test_alternating_status_stalls() -> None:
    statuses = [running(50, "Job Started"), running(50, "Job Running")] * 10
    api = ScriptedApi(statuses)

    with pytest.raises(ReportJobFailed, match="stalled") as caught:
        make_runner(meta_spec(stall_polls=4), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert caught.value.reason == "stalled"
    assert len(api.status_requests) == 2 + 4


def test_without_progress_field_status_decides() -> None:
    spec = meta_spec(progress_field=None, stall_polls=2)
    api = ScriptedApi([running(10), running(20), running(30)])

    with pytest.raises(ReportJobFailed, match=r"stalled with status 'Job Running': the last 2") as caught:
        make_runner(spec, api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert "progress" not in str(caught.value).split(":")[1]
    assert len(api.status_requests) == 3


@settings(max_examples=60, deadline=None)
@given(stall_polls=st.integers(min_value=1, max_value=6), data=st.data())
def test_runs_shorter_than_stall_finish(stall_polls: int, data: st.DataObject) -> None:
    # Each run repeats one new progress value; a run of n responses contains n - 1 unchanged ones.
    runs = data.draw(st.lists(st.integers(min_value=1, max_value=stall_polls), min_size=1, max_size=30))
    statuses = [running(progress) for progress, length in enumerate(runs) for _ in range(length)]
    api = ScriptedApi(statuses + [COMPLETED])

    assert make_runner(meta_spec(stall_polls=stall_polls), api).run(SUBMIT_PATH, SUBMIT_PARAMS) == "6021"
    assert len(api.status_requests) == sum(runs) + 1


@settings(max_examples=60, deadline=None)
@given(stall_polls=st.integers(min_value=1, max_value=6), data=st.data())
def test_first_long_run_stalls(stall_polls: int, data: st.DataObject) -> None:
    runs = data.draw(st.lists(st.integers(min_value=1, max_value=stall_polls), max_size=20))
    statuses = [running(progress) for progress, length in enumerate(runs) for _ in range(length)]
    statuses += [running(100 + len(runs))] * (stall_polls + 1)
    api = ScriptedApi(statuses + [COMPLETED])

    with pytest.raises(ReportJobFailed, match="stalled"):
        make_runner(meta_spec(stall_polls=stall_polls), api).run(SUBMIT_PATH, SUBMIT_PARAMS)

    assert len(api.status_requests) == sum(runs) + stall_polls + 1


# Splitting


def test_split_single_day_is_none() -> None:
    assert split_date_range(date(2026, 3, 1), date(2026, 3, 1)) is None


@pytest.mark.parametrize(
    ("since", "until", "older", "newer"),
    [
        (date(2026, 3, 1), date(2026, 3, 2), (date(2026, 3, 1), date(2026, 3, 1)), (date(2026, 3, 2), date(2026, 3, 2))),
        (date(2026, 3, 1), date(2026, 3, 3), (date(2026, 3, 1), date(2026, 3, 2)), (date(2026, 3, 3), date(2026, 3, 3))),
        (date(2026, 2, 27), date(2026, 3, 2), (date(2026, 2, 27), date(2026, 2, 28)), (date(2026, 3, 1), date(2026, 3, 2))),
        (date(2025, 12, 31), date(2026, 1, 1), (date(2025, 12, 31), date(2025, 12, 31)), (date(2026, 1, 1), date(2026, 1, 1))),
    ],
)
def test_split_halves(since: date, until: date, older: tuple[date, date], newer: tuple[date, date]) -> None:
    assert split_date_range(since, until) == (older, newer)


def test_split_reversed_range_rejected() -> None:
    with pytest.raises(ValueError, match="2026-03-05 to 2026-03-01 ends before it starts; swap the bounds"):
        split_date_range(date(2026, 3, 5), date(2026, 3, 1))


@given(since=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 1, 1)), extra=st.integers(min_value=1, max_value=2000))
def test_split_covers_range_once(since: date, extra: int) -> None:
    until = since + timedelta(days=extra)

    halves = split_date_range(since, until)

    assert halves is not None
    (a_since, a_until), (b_since, b_until) = halves
    assert a_since == since
    assert b_until == until
    assert b_since == a_until + timedelta(days=1)
    assert a_since <= a_until < b_since <= b_until
    assert 0 <= (a_until - a_since).days - (b_until - b_since).days <= 1


class RangeApi:
    """A `send_json` whose jobs fail when their date range matches `fails`, else finish after one running poll."""

    def __init__(self, fails: t.Callable[[date, date], bool], *, stall: bool = False) -> None:
        self.fails = fails
        self.stall = stall
        self.submitted: list[tuple[date, date]] = []
        self._answers: dict[str, list[dict[str, t.Any]]] = {}

    def __call__(self, method: str, path: str, params: dict[str, t.Any]) -> t.Any:
        if method == "POST":
            return self._submit(params)
        return self._answers[path.lstrip("/")].pop(0)

    def _submit(self, params: dict[str, t.Any]) -> dict[str, t.Any]:
        assert params["access_token"] == TOKEN
        bounds = json.loads(params["time_range"])
        since, until = date.fromisoformat(bounds["since"]), date.fromisoformat(bounds["until"])
        self.submitted.append((since, until))

        job_id = str(9000 + len(self.submitted))
        if not self.fails(since, until):
            self._answers[job_id] = [running(50), COMPLETED]
        elif self.stall:
            self._answers[job_id] = [running(50)] * 10
        else:
            self._answers[job_id] = [running(50), {**running(50, "Job Failed"), "error_code": 1, "error_subcode": 2490547}]
        return {"report_run_id": job_id}


def insights_request(since: date, until: date) -> tuple[str, dict[str, t.Any]]:
    time_range = json.dumps({"since": since.isoformat(), "until": until.isoformat()})
    return SUBMIT_PATH, {**SUBMIT_PARAMS, "time_range": time_range}


def days(since: date, until: date) -> int:
    return (until - since).days + 1


def test_splitting_yields_oldest_first(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    api = RangeApi(lambda since, until: days(since, until) > 7)
    runner = make_runner(meta_spec(), api)

    jobs = list(run_with_splitting(runner, date(2026, 1, 1), date(2026, 1, 31), insights_request))

    assert [(job.since, job.until) for job in jobs] == [
        (date(2026, 1, 1), date(2026, 1, 4)),
        (date(2026, 1, 5), date(2026, 1, 8)),
        (date(2026, 1, 9), date(2026, 1, 12)),
        (date(2026, 1, 13), date(2026, 1, 16)),
        (date(2026, 1, 17), date(2026, 1, 20)),
        (date(2026, 1, 21), date(2026, 1, 24)),
        (date(2026, 1, 25), date(2026, 1, 31)),
    ]
    assert all(isinstance(job, FinishedJob) for job in jobs)
    assert len({job.job_id for job in jobs}) == 7

    # Failed: the month (31 days), its halves (16 and 15 days) and three 8-day quarters.
    assert len(api.submitted) == 6 + 7
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 6
    assert warnings[0] == (
        "Stream ads_insights: report job 9001 for 2026-01-01 to 2026-01-31 failed; "
        "submitting 2026-01-01 to 2026-01-16 and 2026-01-17 to 2026-01-31 as separate jobs"
    )
    assert TOKEN not in caplog.text


def test_splitting_yields_before_next_submit() -> None:
    api = RangeApi(lambda since, until: days(since, until) > 2)
    runner = make_runner(meta_spec(), api)
    jobs = run_with_splitting(runner, date(2026, 1, 1), date(2026, 1, 4), insights_request)

    first = next(jobs)

    assert (first.since, first.until) == (date(2026, 1, 1), date(2026, 1, 2))
    assert api.submitted == [(date(2026, 1, 1), date(2026, 1, 4)), (date(2026, 1, 1), date(2026, 1, 2))]

    since, until, job_id = next(jobs)

    assert (since, until) == (date(2026, 1, 3), date(2026, 1, 4))
    assert job_id == "9003"
    assert len(api.submitted) == 3
    assert list(jobs) == []


def test_whole_range_when_job_succeeds() -> None:
    api = RangeApi(lambda since, until: False)
    runner = make_runner(meta_spec(), api)

    jobs = list(run_with_splitting(runner, date(2026, 1, 1), date(2026, 3, 31), insights_request))

    assert jobs == [FinishedJob(date(2026, 1, 1), date(2026, 3, 31), "9001")]
    assert len(api.submitted) == 1


def test_single_failing_day_raises() -> None:
    bad_day = date(2026, 1, 5)
    api = RangeApi(lambda since, until: since <= bad_day <= until)
    runner = make_runner(meta_spec(), api)
    finished: list[tuple[date, date]] = []

    with pytest.raises(ReportJobFailed, match=r"failed with status 'Job Failed' .*error_code=1, error_subcode=2490547") as caught:
        for job in run_with_splitting(runner, date(2026, 1, 1), date(2026, 1, 8), insights_request):
            finished.append((job.since, job.until))

    assert finished == [(date(2026, 1, 1), date(2026, 1, 4))]
    assert api.submitted[-1] == (bad_day, bad_day)
    assert caught.value.job_id == str(9000 + len(api.submitted))
    assert api.submitted == [
        (date(2026, 1, 1), date(2026, 1, 8)),
        (date(2026, 1, 1), date(2026, 1, 4)),
        (date(2026, 1, 5), date(2026, 1, 8)),
        (date(2026, 1, 5), date(2026, 1, 6)),
        (date(2026, 1, 5), date(2026, 1, 5)),
    ]


def test_stalled_job_is_split() -> None:
    api = RangeApi(lambda since, until: days(since, until) > 1, stall=True)
    runner = make_runner(meta_spec(stall_polls=3), api)

    jobs = list(run_with_splitting(runner, date(2026, 1, 1), date(2026, 1, 2), insights_request))

    assert [(job.since, job.until) for job in jobs] == [(date(2026, 1, 1), date(2026, 1, 1)), (date(2026, 1, 2), date(2026, 1, 2))]
    assert len(api.submitted) == 3


def test_no_split_when_disabled() -> None:
    api = RangeApi(lambda since, until: True)
    runner = make_runner(meta_spec(split_on_failure=False), api)

    with pytest.raises(ReportJobFailed, match="failed with status 'Job Failed'"):
        next(run_with_splitting(runner, date(2026, 1, 1), date(2026, 1, 31), insights_request))

    assert api.submitted == [(date(2026, 1, 1), date(2026, 1, 31))]


def test_response_error_is_not_split() -> None:
    def send_json(method: str, path: str, params: dict[str, t.Any]) -> t.Any:
        return {"id": "no report_run_id here"}

    runner = make_runner(meta_spec(), send_json)
    requests_made: list[tuple[date, date]] = []

    def request(since: date, until: date) -> tuple[str, dict[str, t.Any]]:
        requests_made.append((since, until))
        return insights_request(since, until)

    with pytest.raises(ReportJobResponseError, match="has no job id"):
        list(run_with_splitting(runner, date(2026, 1, 1), date(2026, 1, 31), request))

    assert requests_made == [(date(2026, 1, 1), date(2026, 1, 31))]
