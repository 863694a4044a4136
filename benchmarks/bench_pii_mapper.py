"""Measure mapper-pii against a pass-through singer-sdk mapper and meltano-map-transform, in one run.

Run: .venv/bin/python benchmarks/bench_pii_mapper.py [--records 1000000] [--customers 200000] [--repeats 3]

The script writes Stripe-charge-like RECORD lines to a temporary file: three
personal fields (`billing_email`, `billing_phone`, `customer`) and eleven
marketing fields, with each customer's values repeated across its charges.
Each contender reads the file on standard input as its own process and writes
to /dev/null:

(a) a pass-through singer-sdk InlineMapper defined here, with spendlake's
    msgspec reader and writer. It measures the SDK's per-message path alone.
(b) meltano-map-transform, hashing the three fields with its `sha256()`
    stream-map expression. That hash is unkeyed, so it protects less than (c).
    It runs from `benchmarks/.venv-peers`, a virtualenv this script creates
    with a pinned version from PyPI and the project's singer-sdk version.
(c) `mapper-pii` with the built-in policy: keyed HMAC of the three fields,
    with e-mails lower-cased and phones parsed to E.164 first.

The contenders run interleaved, `--repeats` times, and the script prints the
median wall time, records per second, the processes' CPU time, and the ratios
c/a and c/b. `--worst-case` adds a run where every record has a new customer.
Wall times on a shared machine are noisy; the CPU times are steadier.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import msgspec

PEER_PACKAGE = "meltano-map-transform==0.12.3"
#: The peer runs on the singer-sdk release the project pins, so both use the same framework.
PEER_SDK = "singer-sdk==0.54.9"
PEER_VENV = Path(__file__).resolve().parent / ".venv-peers"
PASS_THROUGH_FLAG = "--run-pass-through"
HASHED_FIELDS = ("customer", "billing_email", "billing_phone")

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
            "status": {"type": ["string", "null"], "x-pii": "none"},
            "paid": {"type": ["boolean", "null"], "x-pii": "none"},
            "customer": {"type": ["string", "null"], "x-pii": "identifier"},
            "billing_email": {"type": ["string", "null"], "x-pii": "email"},
            "billing_phone": {"type": ["string", "null"], "x-pii": "phone"},
            "card_brand": {"type": ["string", "null"], "x-pii": "none"},
            "card_country": {"type": ["string", "null"], "x-pii": "none"},
            "utm_source": {"type": ["string", "null"], "x-pii": "none"},
            "utm_medium": {"type": ["string", "null"], "x-pii": "none"},
            "utm_campaign": {"type": ["string", "null"], "x-pii": "none"},
            "livemode": {"type": ["boolean", "null"], "x-pii": "none"},
        },
    },
}
CAMPAIGNS = ("brand_search", "generic_search", "retargeting", "prospecting_lookalike", "newsletter_nov")
SOURCES = (("google", "cpc"), ("facebook", "paid_social"), ("newsletter", "email"), ("direct", "none"))
#: Phone formats as customers type them: (country code, national digits, layout).
PHONE_FORMATS = (("1", 10, "+1 ({0}) {1}-{2}"), ("44", 10, "+44 {0} {1} {2}"), ("49", 10, "0049 {0} {1}{2}"), ("33", 9, "+33 {0} {1} {2}"))
_RECORDS_LINE = re.compile(r"completed processing \d+ lines of input \(\d+ schemas, (\d+) records")


# Input


def customer_values(number: int, rnd: random.Random, phone_share: float) -> tuple[str, str, str | None]:
    """Return the customer id, e-mail and phone (None for a `1 - phone_share` part of them) of customer `number`."""
    _, length, layout = PHONE_FORMATS[number % len(PHONE_FORMATS)]
    digits = f"{2 + rnd.randrange(8)}{rnd.randrange(10 ** (length - 1)):0{length - 1}d}"
    phone = layout.format(digits[:3], digits[3:6], digits[6:])
    name = rnd.choice(("anna", "jan", "li", "omar", "sofia"))
    domain = rnd.choice(("example.com", "mail.example.org", "shop.example.net"))
    email = f"{name}.{number}@{domain}"
    return f"cus_{number:014d}", email, phone if rnd.random() < phone_share else None


def write_input(path: Path, records: int, customers: int, phone_share: float = 1.0, seed: int = 7) -> int:
    """Write a SCHEMA line and `records` RECORD lines; return the file size in bytes."""
    rnd = random.Random(seed)
    people = [customer_values(number, rnd, phone_share) for number in range(customers)]
    encoder = msgspec.json.Encoder()
    with path.open("wb") as handle:
        handle.write(encoder.encode(SCHEMA) + b"\n")
        for index in range(records):
            customer, email, phone = people[rnd.randrange(customers)] if customers < records else people[index]
            source, medium = SOURCES[index % len(SOURCES)]
            record = {
                "id": f"ch_{index:024d}",
                "created": f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:{index % 60:02d}:00Z",
                "amount": 500 + rnd.randrange(50_000),
                "currency": "usd",
                "status": "succeeded",
                "paid": True,
                "customer": customer,
                "billing_email": email,
                "billing_phone": phone,
                "card_brand": ("visa", "mastercard", "amex")[index % 3],
                "card_country": ("US", "GB", "DE", "FR")[index % 4],
                "utm_source": source,
                "utm_medium": medium,
                "utm_campaign": CAMPAIGNS[index % len(CAMPAIGNS)],
                "livemode": False,
            }
            message = {"type": "RECORD", "stream": "charges", "record": record, "time_extracted": "2026-12-01T06:00:00.000000Z"}
            handle.write(encoder.encode(message) + b"\n")
    return path.stat().st_size


# Contender (a): a pass-through mapper on the SDK's per-message path.


def pass_through_mapper() -> type:
    """Return a minimal InlineMapper that emits every message unchanged."""
    from singer_sdk import InlineMapper
    from singer_sdk import singerlib as singer
    from singer_sdk import typing as th

    from spendlake.singer_io import BufferedMsgSpecWriter, SafeMsgSpecReader

    class PassThroughMapper(InlineMapper):
        name = "pass-through-mapper"
        message_reader_class = SafeMsgSpecReader
        message_writer_class = BufferedMsgSpecWriter
        config_jsonschema = th.PropertiesList().to_dict()

        def map_schema_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
            yield singer.SchemaMessage.from_dict(message_dict)

        def map_record_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
            yield singer.RecordMessage.from_dict(message_dict)

        def map_state_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
            yield singer.StateMessage.from_dict(message_dict)

        def map_activate_version_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
            yield singer.ActivateVersionMessage.from_dict(message_dict)

        def process_endofpipe(self) -> None:
            sys.stdout.flush()

    return PassThroughMapper


# Contender (b): meltano-map-transform in its own virtualenv.


def peer_executable() -> Path:
    """Create the peers' virtualenv on first use and return meltano-map-transform's executable."""
    executable = PEER_VENV / "bin" / "meltano-map-transform"
    if executable.exists():
        return executable
    print(f"Creating {PEER_VENV} with {PEER_PACKAGE} (one time)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, PEER_PACKAGE, PEER_SDK], check=True)
    return executable


def peer_config() -> dict[str, t.Any]:
    """Hash the three personal fields with the SDK's unkeyed sha256() stream-map function."""
    return {"stream_maps": {"charges": {name: f"sha256({name}) if {name} else None" for name in HASHED_FIELDS}}}


# Timing


@dataclass
class Contender:
    """One process to time: its label and command line."""

    label: str
    command: list[str]
    wall: list[float]
    cpu: list[float]


def run_once(contender: Contender, input_path: Path, records: int, workdir: Path, env: dict[str, str]) -> None:
    """Run a contender on the input once, check it handled every record, and keep its wall and CPU times."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with input_path.open("rb") as stdin:
        start = time.perf_counter()
        result = subprocess.run(
            contender.command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir, env=env, check=False
        )
        elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise SystemExit(f"{contender.label} failed with exit code {result.returncode}:\n{stderr[-3000:]}")
    counted = _RECORDS_LINE.search(stderr)
    if counted is None or int(counted.group(1)) != records:
        raise SystemExit(f"{contender.label} did not report reading {records} records:\n{stderr[-3000:]}")
    contender.wall.append(elapsed)
    contender.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def measure(contenders: list[Contender], input_path: Path, records: int, repeats: int, workdir: Path, env: dict[str, str]) -> None:
    """Run every contender `repeats` times, interleaved so background load hits them alike."""
    for repeat in range(repeats):
        for contender in contenders:
            run_once(contender, input_path, records, workdir, env)
            print(f"  repeat {repeat + 1}: {contender.label}: {contender.wall[-1]:.2f} s", flush=True)


def report(title: str, contenders: list[Contender], records: int) -> None:
    """Print medians, records per second and the ratios of mapper-pii to each baseline."""
    print(f"\n{title}")
    print(f"{'contender':36s} {'median s':>9s} {'records/s':>11s} {'CPU s':>7s}")
    rates: dict[str, float] = {}
    for contender in contenders:
        wall = statistics.median(contender.wall)
        rates[contender.label] = records / wall
        print(f"{contender.label:36s} {wall:9.2f} {records / wall:11,.0f} {statistics.median(contender.cpu):7.2f}")
    mapper = rates[contenders[-1].label]
    for contender in contenders[:-1]:
        print(f"ratio mapper-pii / {contender.label}: {mapper / rates[contender.label]:.2f}")


def contenders_for(include_peer: bool) -> list[Contender]:
    """Return the processes to time, mapper-pii last."""
    bin_dir = Path(sys.executable).parent
    pass_through = [sys.executable, __file__, PASS_THROUGH_FLAG, "--config", "pass.json"]
    contenders = [Contender("(a) pass-through singer-sdk mapper", pass_through, [], [])]
    if include_peer:
        contenders.append(Contender(f"(b) {PEER_PACKAGE.replace('==', ' ')}", [str(peer_executable()), "--config", "peer.json"], [], []))
    contenders.append(Contender("(c) mapper-pii", [str(bin_dir / "mapper-pii"), "--config", "mapper.json"], [], []))
    return contenders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="RECORD lines in the input (default 1000000)")
    parser.add_argument("--customers", type=int, default=200_000, help="distinct customers among them (default 200000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each contender (default 3)")
    parser.add_argument("--phone-share", type=float, default=1.0, help="share of customers with a billing phone (default 1.0)")
    parser.add_argument("--worst-case", action="store_true", help="also run with a new customer on every record")
    parser.add_argument("--skip-peer", action="store_true", help="leave out meltano-map-transform")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="spendlake-bench-mapper-"))
    try:
        env = {**os.environ, "SPENDLAKE_HOME": str(workdir / "home"), "SPENDLAKE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
        (workdir / "mapper.json").write_text(json.dumps({"tenant": "bench", "source": "stripe"}))
        (workdir / "pass.json").write_text("{}")
        (workdir / "peer.json").write_text(json.dumps(peer_config()))
        contenders = contenders_for(not options.skip_peer)
        print(f"host cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}")

        cases = [("repeated customers" if options.customers < options.records else "every customer distinct", options.customers)]
        if options.worst_case:
            cases.append(("every customer distinct", options.records))
        for title, customers in cases:
            input_path = workdir / "input.jsonl"
            size = write_input(input_path, options.records, customers, options.phone_share)
            print(f"\n{title}: {options.records:,} records, {customers:,} customers, {size / 1e6:.0f} MB, phone share {options.phone_share}")
            for contender in contenders:
                contender.wall.clear()
                contender.cpu.clear()
            measure(contenders, input_path, options.records, options.repeats, workdir, env)
            heading = f"{title} ({options.records:,} records, {customers:,} customers, {options.repeats} repeats)"
            report(heading, contenders, options.records)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == [PASS_THROUGH_FLAG]:
        del sys.argv[1]
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        pass_through_mapper().cli()
    else:
        main()
