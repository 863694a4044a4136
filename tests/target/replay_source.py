"""A replayable Singer source for crash tests of target-warehouse.

Run as `python -m tests.target.replay_source --records N --seed S [--state FILE]`.
It writes SCHEMA messages for two keyed streams, `charges` and `refunds` (about
1 record in 10), then N RECORD messages in an order fixed by the seed, with a
STATE message every 1,500 to 2,500 records whose value is
`{"bookmarks": {"position": <index of the next record>}}`.

Some keys come back later with a new version, and some records are tombstones
(`_sdc_deleted_at` set, only the key besides it). Two versions of one key are
always more than `KEY_REUSE_GAP` records of their stream apart, so no batch of
a target with `batch_size_rows` up to that gap holds one key twice, wherever
a resumed run starts its batches.

`--state FILE` names a file holding the last STATE value the target wrote (one
JSON line). The source resumes at its position, re-emitting the SCHEMA messages
first, and passes the target's `spendlake_warehouse` marker back unchanged in
every STATE it writes. The test computes the expected tables from
`generate_records`, the same generator.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

CHARGES = "charges"
REFUNDS = "refunds"
STATE_MARKER = "spendlake_warehouse"

#: Minimum distance, in records of one stream, between two versions of the same key.
KEY_REUSE_GAP = 6_000
STATE_INTERVAL = (1_500, 2_500)

_REFUND_SHARE = 0.1
_REUSE_SHARE = 0.25
_TOMBSTONE_SHARE_OF_REUSES = 0.3
_TOMBSTONE_ONLY_SHARE = 0.02
_EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
_AMOUNT = {"type": ["number", "null"], "multipleOf": 0.01}

PROPERTIES: dict[str, dict[str, t.Any]] = {
    CHARGES: {
        "id": {"type": "string"},
        "created": _DATE_TIME,
        "amount": _AMOUNT,
        "currency": {"type": ["string", "null"]},
        "paid": {"type": ["boolean", "null"]},
        "attempt_count": {"type": ["integer", "null"]},
        "settled_on": {"type": ["string", "null"], "format": "date"},
        "description": {"type": ["string", "null"]},
        "metadata": {"type": ["object", "null"], "properties": {}},
        "updated": _DATE_TIME,
        "_sdc_deleted_at": _DATE_TIME,
    },
    REFUNDS: {
        "id": {"type": "string"},
        "charge_id": {"type": ["string", "null"]},
        "amount": _AMOUNT,
        "reason": {"type": ["string", "null"]},
        "created": _DATE_TIME,
        "_sdc_deleted_at": _DATE_TIME,
    },
}

_KEY_PREFIX = {CHARGES: "ch_", REFUNDS: "re_"}
_DESCRIPTIONS = ("Monthly plan", "Ünïcode façade", "Sale 🎉 50%", "line one\nline two", "quote \" and \\ backslash")


def schema_messages() -> list[dict[str, t.Any]]:
    """Return the SCHEMA message of each stream (key `id`)."""
    return [
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": {"type": "object", "properties": properties},
            "key_properties": ["id"],
        }
        for stream, properties in PROPERTIES.items()
    ]


@dataclass
class _StreamKeys:
    """Keys issued so far in one stream, in creation order, with the stream index of their last version."""

    prefix: str
    created_at: list[int] = field(default_factory=list)
    last_index: dict[str, int] = field(default_factory=dict)
    #: How many keys (the oldest ones) were created more than KEY_REUSE_GAP records ago.
    eligible: int = 0

    def choose(self, index: int, rng: random.Random) -> tuple[str, bool]:
        """Return a key for the stream's record `index` and whether it was issued before."""
        while self.eligible < len(self.created_at) and self.created_at[self.eligible] + KEY_REUSE_GAP < index:
            self.eligible += 1

        if self.eligible and rng.random() < _REUSE_SHARE:
            key = self._name(rng.randrange(self.eligible))
            if self.last_index[key] + KEY_REUSE_GAP < index:
                self.last_index[key] = index
                return key, True

        key = self._name(len(self.created_at))
        self.created_at.append(index)
        self.last_index[key] = index
        return key, False

    def _name(self, number: int) -> str:
        return f"{self.prefix}{number:07d}"


def generate_records(records: int, seed: int) -> Iterator[tuple[str, dict[str, t.Any]]]:
    """Yield `(stream, record)` for record positions 0 to `records - 1`, always the same for one seed."""
    rng = random.Random(seed)
    keys = {stream: _StreamKeys(prefix) for stream, prefix in _KEY_PREFIX.items()}
    stream_counts = dict.fromkeys(keys, 0)

    for _ in range(records):
        stream = REFUNDS if rng.random() < _REFUND_SHARE else CHARGES
        index = stream_counts[stream]
        stream_counts[stream] += 1
        key, reused = keys[stream].choose(index, rng)

        tombstone_share = _TOMBSTONE_SHARE_OF_REUSES if reused else _TOMBSTONE_ONLY_SHARE
        if rng.random() < tombstone_share:
            yield stream, {"id": key, "_sdc_deleted_at": _timestamp(rng)}
        elif stream == CHARGES:
            yield stream, _charge(key, rng)
        else:
            yield stream, _refund(key, rng)


def _charge(key: str, rng: random.Random) -> dict[str, t.Any]:
    record = {
        "id": key,
        "created": _timestamp(rng),
        "amount": _amount(rng),
        "currency": rng.choice(("eur", "usd", "gbp", None)),
        "paid": rng.choice((True, False, None)),
        "attempt_count": rng.choice((rng.randrange(0, 10), -rng.randrange(1, 2**62), 2**63 - 1, None)),
        "settled_on": (_EPOCH.date() + datetime.timedelta(days=rng.randrange(0, 400))).isoformat(),
        "description": rng.choice((*_DESCRIPTIONS, None)),
        "metadata": {"order": rng.randrange(10**6), "tags": rng.sample(["a", "b", "c", "d"], rng.randrange(0, 3))},
        "updated": _timestamp(rng),
    }
    if rng.random() < 0.2:
        record["_sdc_deleted_at"] = None
    return record


def _refund(key: str, rng: random.Random) -> dict[str, t.Any]:
    return {
        "id": key,
        "charge_id": f"ch_{rng.randrange(10**7):07d}",
        "amount": _amount(rng),
        "reason": rng.choice(("duplicate", "fraudulent", "requested_by_customer", None)),
        "created": _timestamp(rng),
    }


def _timestamp(rng: random.Random) -> str:
    moment = _EPOCH + datetime.timedelta(microseconds=rng.randrange(400 * 86_400 * 10**6))
    return moment.isoformat()


def _amount(rng: random.Random) -> float | None:
    # A float of cents / 100 prints as the shortest decimal that reads back the same: at most 2 decimals.
    if rng.random() < 0.05:
        return None
    return rng.randrange(-10**9, 10**9) / 100


def state_positions(records: int, seed: int) -> list[int]:
    """Return the positions after which a STATE is written; the last one is `records`."""
    rng = random.Random(f"{seed}-state")
    positions = []
    position = rng.randint(*STATE_INTERVAL)
    while position < records:
        positions.append(position)
        position += rng.randint(*STATE_INTERVAL)
    positions.append(records)
    return positions


def read_saved_state(path: Path | None) -> tuple[int, t.Any]:
    """Return the position and the warehouse marker of the STATE saved in `path` (0 and None without one)."""
    if path is None or not path.exists() or not path.read_text().strip():
        return 0, None

    value = json.loads(path.read_text())
    return int(value["bookmarks"]["position"]), value.get(STATE_MARKER)


def messages(records: int, seed: int, start: int = 0, marker: t.Any = None) -> Iterator[dict[str, t.Any]]:
    """Yield the SCHEMA messages, then the records from position `start` with their STATE messages."""
    yield from schema_messages()

    checkpoints = iter(state_positions(records, seed))
    checkpoint = next(checkpoints)
    while checkpoint <= start and checkpoint < records:
        checkpoint = next(checkpoints)

    for position, (stream, record) in enumerate(generate_records(records, seed)):
        if position >= start:
            yield {"type": "RECORD", "stream": stream, "record": record}
        if position + 1 == checkpoint:
            if checkpoint > start:
                yield _state_message(checkpoint, marker)
            checkpoint = next(checkpoints, records + 1)

    if records == 0 or start >= records:
        yield _state_message(records, marker)


def _state_message(position: int, marker: t.Any) -> dict[str, t.Any]:
    value: dict[str, t.Any] = {"bookmarks": {"position": position}}
    if marker is not None:
        value[STATE_MARKER] = marker
    return {"type": "STATE", "value": value}


def main(argv: list[str] | None = None) -> int:
    """Write the messages to stdout; exit quietly when the reader (a killed target) goes away."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, required=True, help="number of RECORD messages of the whole load")
    parser.add_argument("--seed", type=int, required=True, help="seed of the record order and values")
    parser.add_argument("--state", type=Path, help="file with the last STATE value the target wrote")
    arguments = parser.parse_args(argv)

    start, marker = read_saved_state(arguments.state)
    encoder = msgspec.json.Encoder()
    output = sys.stdout.buffer
    try:
        for message in messages(arguments.records, arguments.seed, start, marker):
            output.write(encoder.encode(message) + b"\n")
        output.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so that the flush at interpreter exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
