"""Measure `mapper-pii | target-warehouse` against a one-process floor on the same input.

Run: .venv/bin/python benchmarks/bench_pipeline.py [records] [repeats]

The floor reads the same Singer file, decodes it with msgspec, builds Arrow
batches and writes unencrypted Parquet, all in this process: no hashing, no
encryption, no DuckDB, no pipes. The pipeline is the two real executables
joined by a pipe, writing the encrypted DuckDB database and Parquet files. The
two are interleaved and the medians are printed, because this 2-core machine
is shared and noisy.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mapper import make_lines  # noqa: E402

BIN = Path(sys.executable).parent
BATCH_ROWS = 10_000


def floor(input_path: Path, output_path: Path) -> None:
    """Decode, batch into Arrow and write plain Parquet: the least a Python loader must do."""
    decoder = msgspec.json.Decoder()
    schema: pa.Schema | None = None
    writer: pq.ParquetWriter | None = None
    batch: list[dict[str, object]] = []
    with input_path.open("rb") as lines:
        for line in lines:
            message = decoder.decode(line)
            if message["type"] == "SCHEMA":
                schema = pa.schema([(name, pa.string() if name != "amount" else pa.int64()) for name in message["schema"]["properties"]])
                writer = pq.ParquetWriter(output_path, schema)
            elif message["type"] == "RECORD":
                batch.append(message["record"])
                if len(batch) == BATCH_ROWS:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))  # type: ignore[union-attr]
                    batch.clear()
    if batch:
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))  # type: ignore[union-attr]
    writer.close()  # type: ignore[union-attr]


def pipeline(input_path: Path, home: Path, config_dir: Path, env: dict[str, str]) -> None:
    """Run the real mapper and target joined by a pipe."""
    shutil.rmtree(home / "warehouse", ignore_errors=True)
    command = (
        f"{BIN / 'mapper-pii'} --config {config_dir / 'mapper.json'} < {input_path} "
        f"| {BIN / 'target-warehouse'} --config {config_dir / 'target.json'} > /dev/null"
    )
    subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, check=True, stderr=subprocess.DEVNULL)


def timed(function: object, *args: object) -> float:
    start = time.perf_counter()
    function(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = Path(tempfile.mkdtemp(prefix="spendlake-bench-"))
    home = work / "home"
    input_path = work / "charges.singer.jsonl"
    input_path.write_text(make_lines(records))
    (work / "mapper.json").write_text(json.dumps({"tenant": "bench", "home": str(home)}))
    (work / "target.json").write_text(json.dumps({"tenant": "bench", "source": "stripe", "home": str(home)}))
    env = {**os.environ, "SPENDLAKE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}

    floor_times, pipeline_times = [], []
    for _ in range(repeats):
        floor_times.append(timed(floor, input_path, work / "floor.parquet"))
        pipeline_times.append(timed(pipeline, input_path, home, work, env))

    floor_median = statistics.median(floor_times)
    pipeline_median = statistics.median(pipeline_times)
    print(f"records: {records}, repeats: {repeats}, cores: {os.cpu_count()}")
    print(f"floor (decode + Arrow + plain Parquet, 1 process): median {floor_median:.2f} s = {records / floor_median:,.0f} records/s")
    print(f"mapper-pii | target-warehouse (encrypted):        median {pipeline_median:.2f} s = {records / pipeline_median:,.0f} records/s")
    print(f"pipeline / floor throughput ratio: {floor_median / pipeline_median:.2f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
