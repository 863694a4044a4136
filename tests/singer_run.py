"""Run Singer plugins in-process and collect the messages they write."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import typing as t


@contextlib.contextmanager
def captured_stdout() -> t.Iterator[io.BytesIO]:
    """Swap sys.stdout for an in-memory binary-backed text stream."""
    raw = io.BytesIO()
    wrapper = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    original = sys.stdout
    sys.stdout = wrapper
    try:
        yield raw
    finally:
        wrapper.flush()
        wrapper.detach()  # keep `raw` open after the wrapper is collected
        sys.stdout = original


def parse_messages(raw: bytes) -> list[dict[str, t.Any]]:
    """Parse Singer JSON lines."""
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


def run_tap(
    tap_class: type,
    config: dict[str, t.Any],
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
) -> list[dict[str, t.Any]]:
    """Sync the selected streams of a tap (by default, those selected by default) and return its messages."""
    with captured_stdout() as raw:
        tap = tap_class(config=config, state=state, catalog=catalog, parse_env_config=False)
        tap.sync_all()
        sys.stdout.flush()
    return parse_messages(raw.getvalue())


def records_of(messages: list[dict[str, t.Any]], stream: str) -> list[dict[str, t.Any]]:
    """Return the record payloads of one stream."""
    return [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream]


def schema_of(messages: list[dict[str, t.Any]], stream: str) -> dict[str, t.Any]:
    """Return the last SCHEMA message's schema for a stream."""
    schemas = [m["schema"] for m in messages if m["type"] == "SCHEMA" and m["stream"] == stream]
    assert schemas, f"no SCHEMA message for stream {stream}"
    return schemas[-1]


def final_state(messages: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """Return the value of the last STATE message."""
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert states, "no STATE message"
    return states[-1]


def catalog_selecting_all(tap_class: type, config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Return the tap's discovered catalog with every stream selected."""
    catalog = tap_class(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = True
    return catalog
