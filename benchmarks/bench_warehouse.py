"""Measure `mapper-pii | target-warehouse` against a peer Singer pipeline and DuckDB's own JSON reader, in one run.

Run: .venv/bin/python benchmarks/bench_warehouse.py [--records 1000000] [--repeats 3]

The script writes one file of Stripe-charge-like Singer messages to a
temporary folder: a SCHEMA, RECORD lines of about 650 bytes (15 fields, two of
them objects, `time_extracted` on each), and a STATE every 10,000 records.
Three contenders read that same file:

(a) `mapper-pii | target-warehouse`, this project's executables from the
    venv's bin folder, writing encrypted Parquet files and the encrypted
    DuckDB database into a temporary spendlake home. The mapper runs without
    a policy file, so the built-in policy applies: HMAC of `customer` and
    `billing_email`, `billing_name` and `description` dropped.
(b) `meltano-map-transform | target-duckdb`: md5() of `billing_email` and
    `billing_name`, `description` set to null, loaded into a plain DuckDB
    file. Each peer runs from its own virtualenv, which this script creates
    from PyPI with pinned versions: `benchmarks/.venv-peers` (shared with
    bench_pii_mapper.py) and `benchmarks/.venv-peers-duckdb`.
(c) a floor: DuckDB's `read_json` of the RECORD lines, with explicit column
    types, copied into one plain Parquet file by a process of this venv's
    Python. No hashing, no encryption, no Singer framework.

Each pipeline stage is its own process and the stages are joined by pipes.
The wall time covers the whole pipeline, start-up included. The CPU time of
each process comes from `os.wait4`, its peak RSS from GNU time
(`/usr/bin/time --verbose`) where that is installed. The contenders run
interleaved, `--repeats` times, and the script prints medians, the ratios
a/b and a/c of records per second, and the rows each contender stored.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import random
import re
import resource
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pii_mapper import PEER_PACKAGE as MAP_TRANSFORM_PACKAGE  # noqa: E402
from bench_pii_mapper import PEER_SDK as MAP_TRANSFORM_SDK  # noqa: E402
from bench_pii_mapper import peer_executable as map_transform_executable  # noqa: E402

BIN = Path(sys.executable).parent
TENANT = "bench"
SOURCE = "stripe"
STREAM = "charges"
STATE_EVERY = 10_000
CUSTOMERS = 50_000
SEED = 42
FLOOR_FLAG = "--run-floor"
GNU_TIME = Path("/usr/bin/time")
_MAX_RSS_LINE = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")

#: target-duckdb 0.8.0 does not pin duckdb, so this pins 2.0.1, the release pip chose for it on 2026-12-05.
TARGET_DUCKDB_PACKAGES = ("target-duckdb==0.8.0", "duckdb==2.0.1")
TARGET_DUCKDB_VENV = Path(__file__).resolve().parent / ".venv-peers-duckdb"

#: The stream maps of the peer mapper: the same three fields mapper-pii's built-in policy acts on.
PEER_STREAM_MAPS = {STREAM: {"billing_email": "md5(billing_email)", "billing_name": "md5(billing_name)", "description": "__NULL__"}}

_NULLABLE_STRING = {"type": ["string", "null"]}

SCHEMA = {
    "type": "SCHEMA",
    "stream": STREAM,
    "key_properties": ["id"],
    "bookmark_properties": ["created"],
    "schema": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "x-pii": "none"},
            "created": {"type": ["string", "null"], "format": "date-time", "x-pii": "none"},
            "amount": {"type": ["integer", "null"], "x-pii": "none"},
            "currency": {**_NULLABLE_STRING, "x-pii": "none"},
            "status": {**_NULLABLE_STRING, "x-pii": "none"},
            "customer": {**_NULLABLE_STRING, "x-pii": "identifier"},
            "billing_email": {**_NULLABLE_STRING, "x-pii": "email"},
            "billing_name": {**_NULLABLE_STRING, "x-pii": "name"},
            "billing_country": {**_NULLABLE_STRING, "x-pii": "none"},
            "description": {**_NULLABLE_STRING, "x-pii": "free_text"},
            "metadata": {
                "type": ["object", "null"],
                "x-pii": "none",
                "properties": {"order_id": _NULLABLE_STRING, "channel": _NULLABLE_STRING},
            },
            "paid": {"type": ["boolean", "null"], "x-pii": "none"},
            "refunded": {"type": ["boolean", "null"], "x-pii": "none"},
            # multipleOf 0.01 makes target-warehouse store the fee as DECIMAL(38,2), exactly.
            "fee": {"type": ["number", "null"], "multipleOf": 0.01, "x-pii": "none"},
            "outcome": {
                "type": ["object", "null"],
                "x-pii": "none",
                "properties": {
                    "network_status": _NULLABLE_STRING,
                    "risk_level": _NULLABLE_STRING,
                    "risk_score": {"type": ["integer", "null"]},
                    "seller_message": _NULLABLE_STRING,
                    "type": _NULLABLE_STRING,
                },
            },
        },
    },
}

#: Column types of the floor's read_json, the same shape as SCHEMA.
FLOOR_RECORD_TYPE = (
    "STRUCT(id VARCHAR, created TIMESTAMPTZ, amount BIGINT, currency VARCHAR, status VARCHAR, customer VARCHAR, "
    "billing_email VARCHAR, billing_name VARCHAR, billing_country VARCHAR, description VARCHAR, "
    "metadata STRUCT(order_id VARCHAR, channel VARCHAR), paid BOOLEAN, refunded BOOLEAN, fee DECIMAL(18,2), "
    "outcome STRUCT(network_status VARCHAR, risk_level VARCHAR, risk_score BIGINT, seller_message VARCHAR, type VARCHAR))"
)

FIRST_NAMES = ("Anna", "Jan", "Li", "Omar", "Sofia", "Mateo", "Amara", "Kenji", "Chloe", "Lars", "Priya", "Tomasz")
LAST_NAMES = ("Martinez", "Schneider", "Okafor", "Nakamura", "Dubois", "Kowalski", "Haddad", "Lindqvist", "Patel", "Rossi")
DOMAINS = ("example.com", "mail.example.org", "shop.example.net", "inbox.example.de")
COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "NL", "CA")
CURRENCIES = ("usd", "usd", "eur", "gbp")
CHANNELS = ("web_checkout", "mobile_app", "marketplace", "phone_order")
SEASONS = ("spring", "summer", "autumn", "winter")
SHIPPING = ("standard", "express", "next-day")
ID_ALPHABET = string.ascii_letters + string.digits
CREATED_START = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
TIME_EXTRACTED = "2026-12-05T06:00:00Z"


# Input


@dataclass(frozen=True)
class Customer:
    """The billing details one customer repeats on each of their charges."""

    id: str
    email: str
    name: str
    country: str


def customer_pool(rnd: random.Random, count: int) -> list[Customer]:
    """Return `count` customers with distinct ids and e-mail addresses."""
    pool = []
    for number in range(count):
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        email = f"{first.lower()}.{last.lower()}.{number}@{rnd.choice(DOMAINS)}"
        customer_id = "cus_" + "".join(rnd.choices(ID_ALPHABET, k=14))
        pool.append(Customer(customer_id, email, f"{first} {last}", rnd.choice(COUNTRIES)))
    return pool


def charge_record(index: int, rnd: random.Random, customer: Customer) -> dict[str, t.Any]:
    """Return charge number `index`: a Stripe-like charge, `created` 20 seconds after the previous one."""
    approved = rnd.random() < 0.93
    amount = 500 + rnd.randrange(50_000)
    order = 100_000 + index
    created = CREATED_START + datetime.timedelta(seconds=20 * index)
    description = f"Order {order}: {1 + rnd.randrange(6)} items, {rnd.choice(SEASONS)} sale, {rnd.choice(SHIPPING)} delivery"
    return {
        "id": "ch_" + "".join(rnd.choices(ID_ALPHABET, k=24)),
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "amount": amount,
        "currency": rnd.choice(CURRENCIES),
        "status": "succeeded" if approved else "failed",
        "customer": customer.id,
        "billing_email": customer.email,
        "billing_name": customer.name,
        "billing_country": customer.country,
        "description": description if rnd.random() < 0.9 else None,
        "metadata": {"order_id": f"ord_{order:08d}", "channel": rnd.choice(CHANNELS)},
        "paid": approved,
        "refunded": approved and rnd.random() < 0.03,
        "fee": round((amount * 0.029 + 30) / 100, 2),
        "outcome": {
            "network_status": "approved_by_network" if approved else "declined_by_network",
            "risk_level": rnd.choice(("normal", "normal", "normal", "elevated")),
            "risk_score": rnd.randrange(100),
            "seller_message": "Payment complete." if approved else "The bank did not return any further details with this decline.",
            "type": "authorized" if approved else "issuer_declined",
        },
    }


def state_message(created: str) -> dict[str, t.Any]:
    """Return a STATE message bookmarking the stream at `created`."""
    bookmark = {"replication_key": "created", "replication_key_value": created}
    return {"type": "STATE", "value": {"bookmarks": {STREAM: bookmark}}}


def write_input(path: Path, records: int) -> int:
    """Write SCHEMA, `records` RECORD lines, and a STATE after every 10,000 records and at the end. Return the bytes written."""
    rnd = random.Random(SEED)
    customers = customer_pool(rnd, CUSTOMERS)
    encoder = msgspec.json.Encoder()
    created = ""
    with path.open("wb") as handle:
        handle.write(encoder.encode(SCHEMA) + b"\n")
        for index in range(records):
            record = charge_record(index, rnd, rnd.choice(customers))
            created = record["created"]
            message = {"type": "RECORD", "stream": STREAM, "record": record, "time_extracted": TIME_EXTRACTED}
            handle.write(encoder.encode(message) + b"\n")
            if (index + 1) % STATE_EVERY == 0:
                handle.write(encoder.encode(state_message(created)) + b"\n")
        if records % STATE_EVERY:
            handle.write(encoder.encode(state_message(created)) + b"\n")
    return path.stat().st_size


# Peers


def target_duckdb_executable() -> Path:
    """Create target-duckdb's virtualenv on first use and return its executable.

    target-duckdb gets a virtualenv of its own because its dependencies may
    conflict with meltano-map-transform's.
    """
    executable = TARGET_DUCKDB_VENV / "bin" / "target-duckdb"
    if executable.exists():
        return executable

    print(f"Creating {TARGET_DUCKDB_VENV} with {', '.join(TARGET_DUCKDB_PACKAGES)} (one time)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(TARGET_DUCKDB_VENV)], check=True)
    pip = [str(TARGET_DUCKDB_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, *TARGET_DUCKDB_PACKAGES], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(TARGET_DUCKDB_VENV, ignore_errors=True)
        raise SystemExit(f"Installing {' '.join(TARGET_DUCKDB_PACKAGES)} failed (exit code {result.returncode}):\n{result.stderr}")
    return executable


def target_duckdb_rows(database: Path) -> dict[str, int]:
    """Count the rows target-duckdb stored, with the duckdb release of its own virtualenv."""
    query = (
        "import duckdb, sys; "
        f"print(duckdb.connect(sys.argv[1], read_only=True).execute('SELECT count(*) FROM main.{STREAM}').fetchone()[0])"
    )
    python = TARGET_DUCKDB_VENV / "bin" / "python"
    output = subprocess.run([str(python), "-c", query, str(database)], capture_output=True, text=True, check=True).stdout
    return {"DuckDB table": int(output)}


# Floor


def run_floor(input_path: str, output_path: str) -> None:
    """Copy the RECORD lines of the Singer file into one Parquet file with DuckDB's read_json (runs as its own process)."""
    import duckdb

    source = input_path.replace("'", "''")
    target = output_path.replace("'", "''")
    query = (
        f"SELECT record.* FROM read_json('{source}', format = 'newline_delimited', "
        f"columns = {{type: 'VARCHAR', stream: 'VARCHAR', record: '{FLOOR_RECORD_TYPE}'}}) WHERE type = 'RECORD'"
    )
    duckdb.connect().execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION snappy)")


def floor_rows(path: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    return {"Parquet file": pq.read_metadata(path).num_rows}


# This project's pipeline


def warehouse_rows(home: Path) -> dict[str, int]:
    """Count the rows target-warehouse committed to the DuckDB table and to the Parquet files of the stream."""
    from privacy.keys import load_tenant_keys
    from spendlake.paths import parquet_dir
    from targets.warehouse.duckdb_store import connect_warehouse
    from targets.warehouse.parquet_store import read_parquet_file

    connection = connect_warehouse(home, TENANT, read_only=True)
    try:
        table_rows = connection.execute(f"SELECT count(*) FROM {SOURCE}.{STREAM}").fetchone()[0]
    finally:
        connection.close()

    keys = load_tenant_keys(home, TENANT, create=False)
    files = sorted(parquet_dir(home, TENANT, SOURCE, STREAM).glob("part-*.parquet"))
    parquet_rows = sum(read_parquet_file(path, keys, columns=["id"]).num_rows for path in files)
    return {"DuckDB table": table_rows, "Parquet files": parquet_rows}


# Timing


@dataclass
class Stage:
    """A process of a pipeline: its label, its command line and its measurements from each run."""

    label: str
    command: list[str]
    peak_rss_mb: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


@dataclass
class Contender:
    """A pipeline to time, how to clear its output, and how to count the rows it stored."""

    key: str
    label: str
    stages: list[Stage]
    clear_output: t.Callable[[], None]
    count_rows: t.Callable[[], dict[str, int]]
    wall: list[float] = field(default_factory=list)
    rows: list[dict[str, int]] = field(default_factory=list)


def timed_command(stage: Stage, report: Path) -> list[str]:
    """Return the stage's command line, run under GNU time when it is installed."""
    if GNU_TIME.exists():
        return [str(GNU_TIME), "--verbose", "--output", str(report), *stage.command]
    return stage.command


def start_pipeline(contender: Contender, input_path: Path, workdir: Path) -> list[subprocess.Popen[bytes]]:
    """Start every stage with its stdin connected to the previous stage's stdout, and the first stage's to the input file."""
    processes: list[subprocess.Popen[bytes]] = []
    with input_path.open("rb") as input_file:
        stdin: t.IO[bytes] = input_file
        for index, stage in enumerate(contender.stages):
            last = index == len(contender.stages) - 1
            command = timed_command(stage, stage_file(workdir, contender, index, "time"))
            with stage_file(workdir, contender, index, "log").open("wb") as stderr:
                stdout = subprocess.DEVNULL if last else subprocess.PIPE
                process = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr, cwd=workdir)
            if index > 0:
                # Only the next stage may hold the pipe's read end, so a failed reader stops the writer.
                stdin.close()
            processes.append(process)
            if process.stdout is not None:
                stdin = process.stdout
    return processes


def stage_file(workdir: Path, contender: Contender, index: int, suffix: str) -> Path:
    """Return the path of a stage's stderr log (`log`) or GNU time report (`time`)."""
    return workdir / f"{contender.key}-{index}.{suffix}"


def peak_rss_mb(report: Path, usage: resource.struct_rusage) -> float:
    """Return a stage's peak RSS in MB (2**20 bytes) from its GNU time report, else from `os.wait4`'s usage.

    Linux counts the pages a child shares with its parent before `exec` in the
    child's peak RSS, so `ru_maxrss` of a process started from this script
    includes this script's own RSS. GNU time starts the stage from a process
    of about 1 MB instead.
    """
    if not GNU_TIME.exists():
        return usage.ru_maxrss / 1024
    match = _MAX_RSS_LINE.search(report.read_text())
    if match is None:
        raise SystemExit(f"{report} has no line 'Maximum resident set size'; is {GNU_TIME} GNU time?")
    return int(match.group(1)) / 1024


def run_once(contender: Contender, input_path: Path, workdir: Path) -> None:
    """Run the pipeline once, then record its wall time, each process's peak RSS and CPU time, and the rows stored."""
    contender.clear_output()

    start = time.perf_counter()
    processes = start_pipeline(contender, input_path, workdir)
    usages = []
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        usages.append(usage)
    elapsed = time.perf_counter() - start

    failures = []
    for index, (stage, process) in enumerate(zip(contender.stages, processes, strict=True)):
        if process.returncode != 0:
            log = stage_file(workdir, contender, index, "log").read_text(errors="replace")
            failures.append(f"{stage.label} exited with {process.returncode}:\n{log[-3000:]}")
    if failures:
        raise SystemExit(f"{contender.label} failed.\n" + "\n".join(failures))

    contender.wall.append(elapsed)
    for index, (stage, usage) in enumerate(zip(contender.stages, usages, strict=True)):
        stage.peak_rss_mb.append(peak_rss_mb(stage_file(workdir, contender, index, "time"), usage))
        # Under GNU time, the usage covers both time and the stage. GNU time itself uses under 0.01 s of CPU.
        stage.cpu.append(usage.ru_utime + usage.ru_stime)
    contender.rows.append(contender.count_rows())
    # Three contenders' outputs of a large input would otherwise stay on disk together.
    contender.clear_output()


def lost_rows_warning(contender: Contender, records: int) -> str | None:
    """Return a warning naming each place where the last run stored more or fewer rows than the input has records."""
    wrong = {place: count for place, count in contender.rows[-1].items() if count != records}
    if not wrong:
        return None
    counts = ", ".join(f"{count:,} rows in the {place} ({_difference(count - records)})" for place, count in wrong.items())
    return f"WARNING: {contender.label} stored {counts} for {records:,} input records"


def _difference(extra: int) -> str:
    return f"{extra:,} extra" if extra > 0 else f"{-extra:,} missing"


def measure(contenders: list[Contender], input_path: Path, records: int, repeats: int, workdir: Path) -> None:
    """Run every contender `repeats` times, interleaved so background load hits them alike."""
    for repeat in range(repeats):
        for contender in contenders:
            load = os.getloadavg()[0]
            run_once(contender, input_path, workdir)
            wall = contender.wall[-1]
            rate = f"{wall:.2f} s, {records / wall:,.0f} records/s"
            print(f"  repeat {repeat + 1}: {contender.label}: {rate} (load average before: {load:.1f})", flush=True)
            warning = lost_rows_warning(contender, records)
            if warning:
                print(f"  {warning}", flush=True)


def report(contenders: list[Contender], records: int, repeats: int) -> None:
    """Print each contender's medians and the ratios of (a)'s records per second to the others'."""
    print(f"\nMedians of {repeats} run(s), {records:,} records; CPU is user + system time of the process.")
    rates = {}
    for contender in contenders:
        wall = statistics.median(contender.wall)
        rates[contender.label] = records / wall
        cpu = sum(statistics.median(stage.cpu) for stage in contender.stages)
        print(f"\n{contender.label}")
        walls = ", ".join(f"{value:.2f}" for value in contender.wall)
        print(f"  wall {wall:.2f} s ({walls}), {records / wall:,.0f} records/s, CPU {cpu:.1f} s")
        for stage in contender.stages:
            print(f"  {stage.label}: peak RSS {statistics.median(stage.peak_rss_mb):,.0f} MB, CPU {statistics.median(stage.cpu):.1f} s")
        for place in contender.rows[-1]:
            counts = " / ".join(f"{run[place]:,}" for run in contender.rows)
            print(f"  rows stored in the {place}, each run: {counts}")
        warning = lost_rows_warning(contender, records)
        if warning:
            print(f"  {warning}")

    ours = contenders[0]
    print()
    for other in contenders[1:]:
        print(f"ratio of records/s {ours.key}/{other.key}: {rates[ours.label] / rates[other.label]:.3f}")


# Setup


def warehouse_contender(workdir: Path, home: Path) -> Contender:
    """Return contender (a): mapper-pii with the built-in policy piped into target-warehouse."""
    (workdir / "mapper.json").write_text(json.dumps({"tenant": TENANT, "source": SOURCE, "home": str(home)}))
    (workdir / "target.json").write_text(json.dumps({"tenant": TENANT, "source": SOURCE, "home": str(home)}))
    stages = [
        Stage("mapper-pii", [str(BIN / "mapper-pii"), "--config", str(workdir / "mapper.json")]),
        Stage("target-warehouse", [str(BIN / "target-warehouse"), "--config", str(workdir / "target.json")]),
    ]
    # The keyring under home/keys stays between runs; only the warehouse is removed.
    return Contender(
        "a",
        "(a) mapper-pii | target-warehouse",
        stages,
        lambda: shutil.rmtree(home / "warehouse", ignore_errors=True),
        lambda: warehouse_rows(home),
    )


def peer_contender(workdir: Path) -> Contender:
    """Return contender (b): meltano-map-transform piped into target-duckdb, each from its own virtualenv."""
    database = workdir / "target-duckdb.duckdb"
    (workdir / "map-transform.json").write_text(json.dumps({"stream_maps": PEER_STREAM_MAPS}))
    (workdir / "target-duckdb.json").write_text(json.dumps({"path": str(database), "default_target_schema": "main"}))
    stages = [
        Stage("meltano-map-transform", [str(map_transform_executable()), "--config", str(workdir / "map-transform.json")]),
        Stage("target-duckdb", [str(target_duckdb_executable()), "--config", str(workdir / "target-duckdb.json")]),
    ]
    return Contender(
        "b",
        "(b) meltano-map-transform | target-duckdb",
        stages,
        lambda: remove_database(database),
        lambda: target_duckdb_rows(database),
    )


def remove_database(database: Path) -> None:
    """Remove a DuckDB database file and its write-ahead log."""
    database.unlink(missing_ok=True)
    database.with_name(database.name + ".wal").unlink(missing_ok=True)


def floor_contender(workdir: Path, input_path: Path) -> Contender:
    """Return contender (c): DuckDB's read_json of the RECORD lines into one plain Parquet file."""
    output = workdir / "floor.parquet"
    command = [sys.executable, str(Path(__file__).resolve()), FLOOR_FLAG, str(input_path), str(output)]
    stages = [Stage("duckdb read_json -> Parquet", command)]
    return Contender(
        "c",
        "(c) DuckDB read_json -> Parquet (floor)",
        stages,
        lambda: output.unlink(missing_ok=True),
        lambda: floor_rows(output),
    )


def set_up_home(home: Path) -> None:
    """Point this process and its children at a fresh spendlake home with a random master key, and create the keyring.

    With the keyring made here, the first run of (a) does no more key work than the later ones.
    """
    from privacy.keys import load_tenant_keys

    os.environ["SPENDLAKE_HOME"] = str(home)
    os.environ["SPENDLAKE_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    os.environ.pop("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", None)
    load_tenant_keys(home, TENANT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="RECORD lines in the input (default 1000000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each contender (default 3)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out meltano-map-transform | target-duckdb")
    options = parser.parse_args()
    if options.records < 1 or options.repeats < 1:
        parser.error("--records and --repeats must be at least 1")

    workdir = Path(tempfile.mkdtemp(prefix="spendlake-bench-warehouse-"))
    try:
        # The working folder has no policies/ folder, so mapper-pii runs with the built-in policy.
        home = workdir / "home"
        set_up_home(home)
        input_path = workdir / "charges.singer.jsonl"
        contenders = [warehouse_contender(workdir, home)]
        if not options.skip_peer:
            contenders.append(peer_contender(workdir))
        contenders.append(floor_contender(workdir, input_path))

        print(f"host cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}")
        if not options.skip_peer:
            print(f"peers: {MAP_TRANSFORM_PACKAGE} ({MAP_TRANSFORM_SDK}), {' with '.join(TARGET_DUCKDB_PACKAGES)}")
        if not GNU_TIME.exists():
            print(f"NOTE: {GNU_TIME} is not installed, so each peak RSS includes this script's RSS when it started the process.")
        size = write_input(input_path, options.records)
        print(f"input: {options.records:,} records, {size / 1e6:.0f} MB ({size / options.records:.0f} bytes per record), {input_path}")
        measure(contenders, input_path, options.records, options.repeats, workdir)
        report(contenders, options.records, options.repeats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == [FLOOR_FLAG]:
        run_floor(sys.argv[2], sys.argv[3])
    else:
        main()
