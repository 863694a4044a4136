"""Measure mapper-pii throughput against a bare decode/encode baseline, in one process.

Run: .venv/bin/python benchmarks/bench_mapper.py [records] [repeats]

Both sides read the same Singer lines and write to an in-memory buffer, so the
ratio shows what the mapping itself costs over plain JSON work. Wall times on
a shared 2-core machine are noisy: the script interleaves the two and prints
medians.
"""

from __future__ import annotations

import base64
import io
import json
import os
import statistics
import sys
import tempfile
import time
import typing as t

import msgspec

SCHEMA = {
    "type": "SCHEMA",
    "stream": "charges",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "x-pii": "none"},
            "created": {"type": ["string", "null"], "format": "date-time", "x-pii": "none"},
            "amount": {"type": ["integer", "null"], "x-pii": "none"},
            "currency": {"type": ["string", "null"], "x-pii": "none"},
            "customer": {"type": ["string", "null"], "x-pii": "identifier"},
            "billing_email": {"type": ["string", "null"], "x-pii": "email"},
            "billing_name": {"type": ["string", "null"], "x-pii": "name"},
            "billing_address_line1": {"type": ["string", "null"], "x-pii": "address"},
            "description": {"type": ["string", "null"], "x-pii": "free_text"},
            "status": {"type": ["string", "null"], "x-pii": "none"},
            "utm_campaign": {"type": ["string", "null"], "x-pii": "none"},
        },
    },
}


def make_lines(count: int) -> str:
    """Build a SCHEMA line and `count` RECORD lines shaped like Stripe charges."""
    lines = [json.dumps(SCHEMA)]
    for index in range(count):
        record = {
            "id": f"ch_{index:024d}",
            "created": "2026-11-01T10:00:00+00:00",
            "amount": 1000 + index % 5000,
            "currency": "usd",
            "customer": f"cus_{index % 900:014d}",
            "billing_email": f"person{index % 900}@example.com",
            "billing_name": f"Person {index % 900}",
            "billing_address_line1": f"{index % 90} Example Street",
            "description": f"Order {index} for person{index % 900}@example.com",
            "status": "succeeded",
            "utm_campaign": "brand_search",
        }
        lines.append(json.dumps({"type": "RECORD", "stream": "charges", "record": record}))
    return "\n".join(lines) + "\n"


def baseline(text: str) -> None:
    """Decode and re-encode every line, the floor of any Singer mapper."""
    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()
    out = io.BytesIO()
    for line in io.StringIO(text):
        out.write(encoder.encode(decoder.decode(line)) + b"\n")


def mapper(text: str) -> None:
    """Run the real mapper over the same lines, writing into a discarded buffer."""
    from mappers.pii import PIIMapper

    raw = io.BytesIO()
    wrapper = io.TextIOWrapper(raw, encoding="utf-8")
    original = sys.stdout
    sys.stdout = wrapper
    try:
        PIIMapper(config={"tenant": "bench"}).listen(io.StringIO(text))
        wrapper.flush()
    finally:
        sys.stdout = original
        wrapper.detach()


def median_seconds(function: t.Callable[[str], None], text: str, repeats: int) -> list[float]:
    """Time one call per repeat."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(text)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    os.environ["SPENDLAKE_HOME"] = tempfile.mkdtemp(prefix="spendlake-bench-")
    os.environ["SPENDLAKE_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()

    import logging

    logging.disable(logging.INFO)
    text = make_lines(records)
    base_times: list[float] = []
    mapper_times: list[float] = []
    for _ in range(repeats):  # interleave, so background load hits both sides alike
        base_times += median_seconds(baseline, text, 1)
        mapper_times += median_seconds(mapper, text, 1)

    base = statistics.median(base_times)
    mapped = statistics.median(mapper_times)
    print(f"records: {records}, repeats: {repeats}, host cores: {os.cpu_count()}")
    print(f"baseline decode+encode: median {base:.3f} s = {records / base:,.0f} records/s")
    print(f"mapper-pii:             median {mapped:.3f} s = {records / mapped:,.0f} records/s")
    print(f"mapper / baseline throughput ratio: {base / mapped:.2f}")


if __name__ == "__main__":
    main()
