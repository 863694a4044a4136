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
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("DuckDB rejected the batch")

    committer.submit(CommitJob(first_line=1, run=fail))

    with pytest.raises(RuntimeError, match="DuckDB rejected the batch"):
        committer.wait()
    with pytest.raises(RuntimeError, match="DuckDB rejected the batch"):
        committer.submit(CommitJob(first_line=9, run=lambda: ran.append("after")))
    committer.close()

    assert ran == []
    assert committer.failed
    assert committer.oldest_in_flight == 1


def test_submit_waits_while_a_job_runs() -> None:
    committer = Committer()
    release = threading.Event()
    started = threading.Event()
    committer.submit(CommitJob(first_line=1, run=lambda: (started.set(), release.wait())))
    started.wait()
    second = threading.Thread(target=committer.submit, args=(CommitJob(first_line=2, run=lambda: None),))

    second.start()
    second.join(timeout=0.3)
    still_waiting = second.is_alive()
    release.set()
    second.join()
    committer.wait()
    committer.close()

    assert still_waiting
    assert committer.finished == 2
