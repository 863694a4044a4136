"""Crash recovery of target-warehouse: kill -9 during a 200,000-record load, resume from the saved STATE.

What the test proves: the pipeline `replay_source | target-warehouse` is killed
with SIGKILL at least 20 times while it loads 200,000 records of two keyed
streams (updates of earlier keys, tombstones, tombstone-only keys), and each
time it is started again from the last STATE the target wrote. The kills land
during start-up, at random moments of the load, right after a STATE was
written, while a Parquet file is being written, and right after one was
published (before or just after its DuckDB commit). After a final run to the end:

- each DuckDB table holds exactly the expected row of every key, compared
  column by column, with no key twice and none missing;
- the deduplicated Parquet view (`read_stream`) returns the same expected rows,
  with the same `_loaded_at` per key as DuckDB;
- every Parquet file of the lake is listed in the DuckDB ledger and every listed
  file exists, and no hidden temporary file is left under the lake.

The kill moments come from a seeded RNG; set SPENDLAKE_CRASH_SEED to try
another seed. A failure message lists every run: its kill plan, the positions
it resumed from and saved, and when it was killed.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import typing as t
from decimal import Decimal
from pathlib import Path

import pytest

from privacy.keys import load_tenant_keys
from spendlake.tenant_lock import LOCK_FILE as TENANT_LOCK
from targets.warehouse.arrow_schema import LOADED_AT
from targets.warehouse.duckdb_store import ALIAS
from targets.warehouse.lake import LocalLake
from targets.warehouse.lake_reader import read_stream
from tests.target.replay_source import CHARGES, PROPERTIES, REFUNDS, STATE_MARKER, generate_records
from tests.target.support import SOURCE, TENANT, query, target_config, tenant_folder

REPOSITORY = Path(__file__).resolve().parents[2]
TARGET_EXECUTABLE = Path(sys.executable).parent / "target-warehouse"

RECORDS = 200_000
SEED = int(os.environ.get("SPENDLAKE_CRASH_SEED", "20261205"))
MIN_KILLS = 20
#: Kills the planner spreads the load over; more than MIN_KILLS because a run may get further than planned.
PLANNED_KILLS = 26
#: A run may load up to this many times its share of the remaining records before it is killed.
SHARE_LIMIT = 3
BATCH_ROWS = 5_000
#: Refunds fill a batch slowly, so batches also close by age; otherwise STATE would wait for them.
MAX_BATCH_AGE_SECONDS = 0.5
#: A run that has not ended by then is treated as hung.
HANG_SECONDS = 900.0
POLL_SECONDS = 0.005

MODES = ("start-up", "mid-load", "after-state", "mid-write", "after-publish")
STREAMS = (CHARGES, REFUNDS)


@dataclasses.dataclass
class KillPlan:
    """When to kill one run: at the `count`-th event of its mode, else `delay` seconds after the anchor.

    The anchor is the launch for kills during start-up, else the moment the run
    starts writing (its first Parquet file, temporary or published, or STATE).
    A STATE at or past `position_cap` triggers the kill in every mode, so that no
    run gets much further than planned, whatever the machine's speed.
    """

    mode: str
    delay: float
    count: int = 0
    position_cap: int = RECORDS

    @property
    def from_launch(self) -> bool:
        return self.mode == "start-up"


@dataclasses.dataclass
class RunReport:
    """What happened in one run of the pipeline."""

    number: int
    plan: KillPlan | None
    start_position: int
    end_position: int = 0
    returncode: int | None = None
    killed_at: float | None = None
    writing_since: float | None = None
    state_times: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    published: int = 0
    temporary_seen: int = 0

    @property
    def interrupted(self) -> bool:
        """Whether the kill hit a running target (it did not exit on its own first)."""
        return self.returncode == -signal.SIGKILL

    def describe(self) -> str:
        plan = "no kill"
        if self.plan is not None:
            plan = f"{self.plan.mode} delay={self.plan.delay:.3f}s count={self.plan.count} cap={self.plan.position_cap}"
        killed = "-" if self.killed_at is None else f"{self.killed_at:.3f}s"
        writing = "-" if self.writing_since is None else f"{self.writing_since:.3f}s"
        return (
            f"run {self.number}: {plan}; positions {self.start_position}->{self.end_position}; "
            f"writing from {writing}; killed at {killed}; exit {self.returncode}; {len(self.state_times)} STATE, "
            f"{self.published} files published, {self.temporary_seen} temporary files seen"
        )


class KillPlanner:
    """Draws kill moments from a seeded RNG, spreading the load over about PLANNED_KILLS runs.

    It learns the target's throughput and start-up time from earlier runs, so
    the kills land inside the load on fast and slow machines.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.kills = 0
        self.modes: list[str] = []
        # Estimates until runs are measured: records per second, seconds until writing starts, records per event.
        self.rates = [20_000.0]
        self.startups = [1.5]
        self.records_per_state = [10_000.0]
        self.records_per_file = [float(BATCH_ROWS)]

    def next_plan(self, position: int) -> KillPlan:
        """Return the kill plan of the next run, which resumes at `position`."""
        if not self.modes:
            self.modes = list(MODES) * 2
            self.rng.shuffle(self.modes)
        mode = self.modes.pop()
        # Near the end one more STATE may be the last one, so only start-up kills keep the load unfinished.
        if RECORDS - position < 2 * statistics.median(self.records_per_state):
            mode = "start-up"

        rate = statistics.median(self.rates)
        share = (RECORDS - position) / max(1, PLANNED_KILLS - self.kills)
        cap = min(RECORDS, position + round(SHARE_LIMIT * share))

        if mode == "start-up":
            return KillPlan(mode, self.rng.uniform(0, statistics.median(self.startups)), position_cap=cap)
        if mode == "mid-load":
            return KillPlan(mode, self.rng.uniform(0, SHARE_LIMIT * share / rate), position_cap=cap)
        per_event = statistics.median(self.records_per_state if mode == "after-state" else self.records_per_file)
        count = self.rng.randint(1, max(1, round(SHARE_LIMIT * share / per_event)))
        # The delay is a fallback for a run that never shows the event.
        return KillPlan(mode, SHARE_LIMIT * share / rate, count, cap)

    def learn(self, report: RunReport) -> None:
        """Update the estimates from a finished run."""
        if report.interrupted:
            self.kills += 1
        if report.writing_since is not None:
            self.startups.append(report.writing_since)

        states = report.state_times
        if len(states) >= 2 and states[-1][0] > states[0][0]:
            self.rates.append((states[-1][1] - states[0][1]) / (states[-1][0] - states[0][0]))
            self.records_per_state.append((states[-1][1] - states[0][1]) / (len(states) - 1))
        if report.published and report.end_position > report.start_position:
            self.records_per_file.append((report.end_position - report.start_position) / report.published)


class Pipeline:
    """One run of `replay_source | target-warehouse`, with the target's STATE lines saved to a file."""

    def __init__(self, work: Path, config_path: Path, saved_state: Path, number: int) -> None:
        self.state_output = work / f"run-{number:03d}.state.jsonl"
        self.source_log = work / f"run-{number:03d}.source.log"
        self.target_log = work / f"run-{number:03d}.target.log"
        self.source: subprocess.Popen[bytes] | None = None
        self.target: subprocess.Popen[bytes] | None = None
        self._config_path = config_path
        self._saved_state = saved_state
        self._work = work
        self._read_offset = 0
        self._partial = b""

    def start(self) -> None:
        """Start the source with the saved state, then the target reading the source's output."""
        source_command = [
            sys.executable, "-m", "tests.target.replay_source",
            "--records", str(RECORDS), "--seed", str(SEED), "--state", str(self._saved_state),
        ]
        with open(self.source_log, "wb") as source_log:
            self.source = subprocess.Popen(source_command, stdout=subprocess.PIPE, stderr=source_log, cwd=REPOSITORY)
        with open(self.state_output, "wb") as output, open(self.target_log, "wb") as target_log:
            self.target = subprocess.Popen(
                [str(TARGET_EXECUTABLE), "--config", str(self._config_path)],
                stdin=self.source.stdout,
                stdout=output,
                stderr=target_log,
                cwd=self._work,
            )
        # Only the target may hold the read end, so the source sees a broken pipe once the target dies.
        self.source.stdout.close()

    def new_states(self) -> list[dict[str, t.Any]]:
        """Return the STATE values written since the last call (complete lines only)."""
        with open(self.state_output, "rb") as output:
            output.seek(self._read_offset)
            chunk = output.read()
        self._read_offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def kill_target(self) -> bool:
        """Send SIGKILL to the target if it is still running; return whether it was."""
        if self.target.poll() is not None:
            return False
        os.kill(self.target.pid, signal.SIGKILL)
        return True

    def wait(self) -> int:
        """Reap both processes; return the target's exit code."""
        returncode = self.target.wait(timeout=HANG_SECONDS)
        self.source.wait(timeout=HANG_SECONDS)
        return returncode

    def stop_leftovers(self) -> None:
        """Kill this run's own processes if a failed assertion left them running."""
        for process in (self.target, self.source):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    def target_log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.target_log.read_text(errors="replace").splitlines()[-lines:])


class LakeWatcher:
    """Counts Parquet files published, and hidden temporary files that appeared, in the lake of the source."""

    def __init__(self, lake_root: Path) -> None:
        self.folder = lake_root / "parquet" / SOURCE
        self.published_before, self.temporary_before = self._names()
        self.temporary: set[str] = set()

    def poll(self) -> tuple[int, int]:
        """Return how many files were published and how many new temporary files appeared since the start."""
        published, temporary = self._names()
        self.temporary.update(temporary - self.temporary_before)
        return len(published - self.published_before), len(self.temporary)

    def _names(self) -> tuple[set[str], set[str]]:
        published: set[str] = set()
        temporary: set[str] = set()
        for stream in STREAMS:
            folder = self.folder / stream
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if entry.name.endswith(".tmp"):
                    temporary.add(entry.name)
                elif not entry.name.startswith("."):
                    published.add(entry.name)
        return published, temporary


def run_pipeline(work: Path, config_path: Path, saved_state: Path, number: int, plan: KillPlan | None, lake_root: Path) -> RunReport:
    """Run the pipeline once, kill the target as `plan` says (or let it finish), and save its last STATE."""
    start_position = saved_position(saved_state)
    report = RunReport(number, plan, start_position)
    pipeline = Pipeline(work, config_path, saved_state, number)
    watcher = LakeWatcher(lake_root)
    started = time.monotonic()
    last_state = None
    try:
        pipeline.start()
        while True:
            elapsed = time.monotonic() - started
            for state in pipeline.new_states():
                report.state_times.append((elapsed, state["bookmarks"]["position"]))
                last_state = state
            report.published, report.temporary_seen = watcher.poll()
            if report.writing_since is None and (report.published or report.temporary_seen or report.state_times):
                report.writing_since = elapsed

            if pipeline.target.poll() is not None:
                break
            if plan is not None and kill_is_due(plan, report, elapsed):
                if pipeline.kill_target():
                    report.killed_at = elapsed
                break
            if elapsed > HANG_SECONDS:
                pytest.fail(f"Run {number} has not ended after {HANG_SECONDS:.0f} s; the pipeline seems to hang.")
            time.sleep(POLL_SECONDS)

        report.returncode = pipeline.wait()
        for state in pipeline.new_states():
            report.state_times.append((time.monotonic() - started, state["bookmarks"]["position"]))
            last_state = state
    finally:
        pipeline.stop_leftovers()

    if report.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"{report.describe()}\nThe target failed on its own. End of its log:\n{pipeline.target_log_tail()}")
    check_state_positions(report)
    if last_state is not None:
        saved_state.write_text(json.dumps(last_state) + "\n")
    report.end_position = saved_position(saved_state)
    return report


def kill_is_due(plan: KillPlan, report: RunReport, elapsed: float) -> bool:
    if report.state_times and report.state_times[-1][1] >= plan.position_cap:
        return True
    if plan.from_launch:
        return elapsed >= plan.delay
    if report.writing_since is None:
        return False
    if elapsed >= report.writing_since + plan.delay:
        return True
    if plan.mode == "after-state":
        return len(report.state_times) >= plan.count
    if plan.mode == "after-publish":
        return report.published >= plan.count
    if plan.mode == "mid-write":
        return report.temporary_seen >= plan.count
    return False


def check_state_positions(report: RunReport) -> None:
    """Each STATE of a run lies after the position the run resumed from, and positions increase."""
    positions = [position for _, position in report.state_times]
    assert all(position > report.start_position for position in positions), report.describe()
    assert positions == sorted(set(positions)), report.describe()


def saved_position(saved_state: Path) -> int:
    if not saved_state.exists():
        return 0
    return json.loads(saved_state.read_text())["bookmarks"]["position"]


def expected_tables() -> dict[str, dict[str, dict[str, t.Any]]]:
    """Return per stream the row each key must have after the load, with values typed as the stores return them.

    A live record replaces the row. A tombstone keeps the row's values and sets
    `_sdc_deleted_at`; a tombstone of a key never stored is the key and `_sdc_deleted_at` alone.
    """
    tables: dict[str, dict[str, dict[str, t.Any]]] = {stream: {} for stream in STREAMS}
    for stream, record in generate_records(RECORDS, SEED):
        rows = tables[stream]
        typed = {column: typed_value(stream, column, record.get(column)) for column in PROPERTIES[stream]}
        if record.get("_sdc_deleted_at") is None:
            rows[record["id"]] = typed
        elif record["id"] in rows:
            rows[record["id"]] = {**rows[record["id"]], "_sdc_deleted_at": typed["_sdc_deleted_at"]}
        else:
            rows[record["id"]] = typed
    return tables


def typed_value(stream: str, column: str, value: t.Any) -> t.Any:
    """Convert a JSON value of the source to the Python value DuckDB and pyarrow return for its column."""
    if value is None:
        return None
    declared = PROPERTIES[stream][column]
    if declared.get("format") == "date-time":
        return datetime.datetime.fromisoformat(value)
    if declared.get("format") == "date":
        return datetime.date.fromisoformat(value)
    if "multipleOf" in declared:
        return Decimal(repr(value))
    return value


def stored_value(stream: str, column: str, value: t.Any) -> t.Any:
    """Normalise a stored value for comparison: objects are stored as JSON text."""
    if value is not None and "object" in PROPERTIES[stream][column]["type"]:
        return json.loads(value)
    return value


def duckdb_rows(home: Path, stream: str) -> dict[str, dict[str, t.Any]]:
    """Return the rows of `<source>.<stream>` by id, as column -> value dicts."""
    columns = [
        name
        for (name,) in query(
            home,
            "SELECT column_name FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [ALIAS, SOURCE, stream],
        )
    ]
    rows = query(home, f'SELECT * FROM "{SOURCE}"."{stream}" ORDER BY id')  # noqa: S608
    keys = [row[columns.index("id")] for row in rows]
    assert len(keys) == len(set(keys)), f"{stream}: DuckDB holds {len(keys) - len(set(keys))} duplicate keys"
    return {row[columns.index("id")]: dict(zip(columns, row, strict=True)) for row in rows}


def lake_view_rows(home: Path, stream: str) -> dict[str, dict[str, t.Any]]:
    """Return the rows of the deduplicated Parquet view of the stream by id."""
    keys = load_tenant_keys(home, TENANT, create=False)
    rows = read_stream(LocalLake(tenant_folder(home)), keys, SOURCE, stream).to_pylist()
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), f"{stream}: the Parquet view returns {len(ids) - len(set(ids))} keys twice"
    return {row["id"]: row for row in rows}


def differences(expected: dict[str, dict[str, t.Any]], stored: dict[str, dict[str, t.Any]], stream: str) -> list[str]:
    """Describe missing and unexpected keys, and up to 5 keys whose values differ (by column name, values left out)."""
    problems = []
    missing = sorted(expected.keys() - stored.keys())
    unexpected = sorted(stored.keys() - expected.keys())
    if missing:
        problems.append(f"{len(missing)} keys missing, e.g. {missing[:5]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[:5]}")

    differing = []
    for key in sorted(expected.keys() & stored.keys()):
        row = {name: stored_value(stream, name, value) for name, value in stored[key].items() if name != LOADED_AT}
        columns = sorted(name for name in expected[key].keys() | row.keys() if expected[key].get(name) != row.get(name))
        if columns:
            differing.append(f"{key}: {columns}")
    if differing:
        problems.append(f"{len(differing)} keys with other values, e.g. {differing[:5]}")
    return problems


def load_time_differences(duckdb: dict[str, dict[str, t.Any]], view: dict[str, dict[str, t.Any]]) -> list[str]:
    """Return the keys whose `_loaded_at` differs between DuckDB and the Parquet view."""
    return sorted(key for key in duckdb.keys() & view.keys() if duckdb[key][LOADED_AT] != view[key][LOADED_AT])


def lake_problems(home: Path) -> list[str]:
    """Compare the lake's files with the ledger, and look for hidden temporary files under the lake.

    The local lake is the tenant folder, so the database's spill folders count as well.
    """
    lake_root = tenant_folder(home)
    lake_files = set(LocalLake(lake_root).files(f"parquet/{SOURCE}"))
    ledger = query(home, "SELECT parquet_file FROM _spendlake.loads WHERE source = ?", [SOURCE])
    ledger_files = {name for (name,) in ledger}

    problems = []
    if lake_files - ledger_files:
        problems.append(f"Parquet files not in the ledger: {sorted(lake_files - ledger_files)[:5]}")
    if ledger_files - lake_files:
        problems.append(f"ledger files missing from the lake: {sorted(ledger_files - lake_files)[:5]}")
    hidden = [
        path.relative_to(lake_root).as_posix()
        for path in lake_root.rglob("*")
        if path.is_file() and path.name != TENANT_LOCK and any(part.startswith(".") for part in path.relative_to(lake_root).parts)
    ]
    if hidden:
        problems.append(f"{len(hidden)} hidden temporary files left under the lake, e.g. {sorted(hidden)[:5]}")
    return problems


def test_kill_nine_loses_and_duplicates_nothing(home: Path, tmp_path: Path) -> None:
    work = tmp_path / "runs"
    work.mkdir()
    config_path = work / "target.json"
    config = target_config(
        home,
        require_pii_mapping=False,
        batch_size_rows=BATCH_ROWS,
        max_batch_age_seconds=MAX_BATCH_AGE_SECONDS,
    )
    config_path.write_text(json.dumps(config))
    saved_state = work / "saved_state.json"
    lake_root = tenant_folder(home)

    planner = KillPlanner(random.Random(SEED))
    reports: list[RunReport] = []
    started = time.monotonic()

    while planner.kills < MIN_KILLS:
        position = saved_position(saved_state)
        assert position < RECORDS, (
            f"The load finished after only {planner.kills} kills; the planner must spread it over more runs.\n"
            + "\n".join(report.describe() for report in reports)
        )
        report = run_pipeline(work, config_path, saved_state, len(reports) + 1, planner.next_plan(position), lake_root)
        reports.append(report)
        planner.learn(report)

    final = run_pipeline(work, config_path, saved_state, len(reports) + 1, None, lake_root)
    reports.append(final)
    history = f"seed {SEED}, {planner.kills} kills:\n" + "\n".join(report.describe() for report in reports)
    print(f"\n{planner.kills} kills in {len(reports)} runs, {time.monotonic() - started:.1f} s.\n{history}")

    # The final run loaded the rest and acknowledged the whole load.
    assert final.returncode == 0, history
    assert final.end_position == RECORDS, history
    assert STATE_MARKER in json.loads(saved_state.read_text()), history
    # Runs resumed from saved STATEs, not only from the start.
    assert any(report.start_position > 0 for report in reports if report.interrupted), history

    expected = expected_tables()
    for stream in STREAMS:
        stored = duckdb_rows(home, stream)
        assert set(next(iter(stored.values()))) == {*PROPERTIES[stream], LOADED_AT}, stream
        assert differences(expected[stream], stored, stream) == [], f"DuckDB {SOURCE}.{stream}, {history}"

        view = lake_view_rows(home, stream)
        assert differences(expected[stream], view, stream) == [], f"Parquet view of {stream}, {history}"
        assert load_time_differences(stored, view)[:5] == [], f"{stream}: _loaded_at differs, {history}"

    assert lake_problems(home) == [], history
