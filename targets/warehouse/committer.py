"""Commit batches on a background thread, in order, while the read loop decodes the next one.

Writing the Parquet file and the DuckDB transaction take about a third of a
load, and both release the GIL. Done inline they would stop the read loop,
the pipe from mapper-pii would fill, and the mapper would wait too. One
worker thread commits the batches in the order they were submitted. It takes
one batch at a time: `submit` waits while a commit runs, so the read loop
builds at most one more batch meanwhile, and memory stays bounded.

The read loop learns of finished commits by polling `finished`. An error in a
commit is raised again in the read loop at its next call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CommitJob:
    """One batch to commit: `run` writes it; `first_line` is the input line of its oldest record."""

    first_line: int
    run: Callable[[], None]


_STOP = None


class Committer:
    """A single worker thread that runs commit jobs one after another."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[CommitJob | None] = queue.Queue()
        self._free = threading.Semaphore(1)
        self._lock = threading.Lock()
        self._in_flight: list[CommitJob] = []
        self._error: BaseException | None = None
        self._finished = 0
        self._thread = threading.Thread(target=self._work, name="warehouse-committer", daemon=True)
        self._thread.start()

    @property
    def oldest_in_flight(self) -> int | None:
        """Input line of the oldest record submitted but not yet committed, or None."""
        with self._lock:
            return min((job.first_line for job in self._in_flight), default=None)

    @property
    def failed(self) -> bool:
        """True once a job has failed."""
        with self._lock:
            return self._error is not None

    @property
    def finished(self) -> int:
        """How many jobs have completed so far."""
        with self._lock:
            return self._finished

    def submit(self, job: CommitJob) -> None:
        """Hand a job to the worker; blocks while the previous one runs. Raises a failed earlier job's error."""
        while not self._free.acquire(timeout=0.5):
            self.raise_failure()
        self.raise_failure()
        with self._lock:
            self._in_flight.append(job)
        self._jobs.put(job)

    def wait(self) -> None:
        """Block until every submitted job has completed; raise the first failure."""
        while True:
            self.raise_failure()
            with self._lock:
                if not self._in_flight:
                    return
            self._jobs.join()

    def raise_failure(self) -> None:
        """Raise the error of a failed job, if any."""
        with self._lock:
            error = self._error
        if error is not None:
            raise error

    def close(self) -> None:
        """Let the job already handed over finish, then stop the worker; errors are left to `raise_failure`."""
        self._jobs.put(_STOP)
        self._thread.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is _STOP or not self._run(job):
                    return
            finally:
                self._jobs.task_done()

    def _run(self, job: CommitJob) -> bool:
        """Run one job; after a failure, record it, drop the queued jobs and return False."""
        try:
            job.run()
        except BaseException as error:  # noqa: BLE001 - handed to the read loop, which raises it
            with self._lock:
                self._error = error
            self._drain_after_failure()
            return False
        with self._lock:
            self._in_flight.remove(job)
            self._finished += 1
        self._free.release()
        return True

    def _drain_after_failure(self) -> None:
        """Discard queued jobs: after a failed batch nothing later may commit."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                return
            self._jobs.task_done()
