"""The committer runs jobs in order on one thread, reports the oldest line in flight, and hands failures back."""

from __future__ import annotations

import threading

import pytest

from targets.warehouse.committer import CommitJob, Committer


def test_jobs_run_in_submission_order() -> None:
    committer = Committer()
    done: list[int] = []
    for line in (3, 7, 11, 20):
        committer.submit(CommitJob(first_line=line, run=lambda line=line: done.append(line)))

    committer.wait()
    committer.close()

    assert done == [3, 7, 11, 20]
    assert committer.finished == 4
    assert committer.oldest_in_flight is None


def test_oldest_in_flight_covers_a_running_job() -> None:
    committer = Committer()
    release = threading.Event()
    committer.submit(CommitJob(first_line=42, run=release.wait))

    assert committer.oldest_in_flight == 42
    release.set()
    committer.wait()
    committer.close()
    assert committer.oldest_in_flight is None


def test_failure_is_raised_in_the_caller_and_later_jobs_do_not_run() -> None:
    committer = Committer()
    release = threading.Event()
    ran: list[str] = []

    def fail() -> None:
        release.wait()
        raise RuntimeError("DuckDB rejected the batch")

    committer.submit(CommitJob(first_line=1, run=fail))
    committer.submit(CommitJob(first_line=5, run=lambda: ran.append("later")))
    release.set()

    with pytest.raises(RuntimeError, match="DuckDB rejected the batch"):
        committer.wait()
    with pytest.raises(RuntimeError, match="DuckDB rejected the batch"):
        committer.submit(CommitJob(first_line=9, run=lambda: ran.append("after")))
    committer.close()

    assert ran == []
    assert committer.failed
    assert committer.oldest_in_flight == 1
