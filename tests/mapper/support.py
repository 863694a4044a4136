"""Run mapper-pii in-process on Singer messages built from the taps' own declarations."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import typing as t
from dataclasses import dataclass
from pathlib import Path

from singer_sdk.exceptions import ConfigValidationError

from mappers.pii import PIIMapper
from mappers.pii.plan import MappingError
from taps.engine.fields import stream_schema
from taps.magento import TapMagento
from taps.stripe import TapStripe
from tests.singer_run import captured_stdout, parse_messages

TENANT = "acme"
TAPS: dict[str, t.Any] = {"stripe": TapStripe, "magento": TapMagento}


@dataclass
class MapperRun:
    """What one mapper run wrote to standard output, and the error that stopped it, if any."""

    text: str
    messages: list[dict[str, t.Any]]
    error: Exception | None

    def records(self, stream: str | None = None) -> list[dict[str, t.Any]]:
        """Return the record payloads written, of one stream or of all."""
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and stream in (None, m["stream"])]

    def schema(self, stream: str) -> dict[str, t.Any]:
        """Return the last schema written for a stream."""
        return [m["schema"] for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream][-1]


def declared_schema(source: str, stream: str) -> dict[str, t.Any]:
    """Return the SCHEMA message the source's tap sends for a stream (the `--discover` schema with x-pii)."""
    spec = next(spec for spec in TAPS[source].source.streams if spec.name == stream)
    return {"type": "SCHEMA", "stream": stream, "schema": stream_schema(spec), "key_properties": list(spec.primary_key)}


def record(stream: str, values: dict[str, t.Any], **extra: t.Any) -> dict[str, t.Any]:
    """Return a RECORD message."""
    return {"type": "RECORD", "stream": stream, "record": values, **extra}


def write_policy(folder: Path, body: str, tenant: str = TENANT) -> Path:
    """Write a policy file for the tenant and return its path."""
    path = folder / f"{tenant}.yaml"
    path.write_text(f"version: 1\ntenant: {tenant}\n" + textwrap.dedent(body))
    return path


def run_mapper(lines: t.Iterable[dict[str, t.Any] | str], config: dict[str, t.Any] | None = None) -> MapperRun:
    """Run the mapper on messages; a mapping or config error is returned with the output written before it."""
    text = "".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines)
    error: Exception | None = None
    with captured_stdout() as raw:
        try:
            PIIMapper(config={"tenant": TENANT, **(config or {})}).listen(io.StringIO(text))
        except (MappingError, ConfigValidationError) as caught:
            error = caught
        sys.stdout.flush()
    return MapperRun(raw.getvalue().decode(), parse_messages(raw.getvalue()), error)


def error_text(error: Exception | None) -> str:
    """Return an error's message, with a config error's listed problems."""
    assert error is not None, "the run did not fail"
    if isinstance(error, ConfigValidationError):
        return "\n".join(error.errors)
    return str(error)
