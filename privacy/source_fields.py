"""Declared streams and fields of a source, looked up by the source's name.

A policy names streams as `<source>.<stream>` and fields by name. Where the
source is declared in YAML (a built-in tap under `taps/<name>/<name>.yaml`, or
a plugin package registered in the `spendlake.sources` entry-point group),
its declaration lists which streams and fields exist and their PII classes, so
a rule with a typo fails before any data moves.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from privacy.declarations import load_source_declaration

#: Sources whose taps add streams from their config: a stream with this name prefix may exist
#: although the declaration lacks it (GA4 custom reports are read as `custom_<name>`).
CONFIG_DEFINED_STREAM_PREFIXES: dict[str, str] = {"google_analytics": "custom_"}

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class DeclaredSource:
    """The streams of one declared source, each with its fields and their PII classes."""

    name: str
    streams: dict[str, dict[str, str]]

    def may_have_stream(self, stream: str) -> bool:
        """Return whether a stream of this name is declared or may be added by the tap's config."""
        if stream in self.streams:
            return True
        prefix = CONFIG_DEFINED_STREAM_PREFIXES.get(self.name)
        return prefix is not None and stream.startswith(prefix)


@functools.cache
def declared_source(source: str) -> DeclaredSource | None:
    """Return the declaration of `source` when it is a built-in tap or an installed plugin, else None."""
    if not _SOURCE_NAME.match(source):
        return None
    declaration = load_source_declaration(source)
    if declaration is None:
        return None

    # Imported here: the taps import this package for the PII classes.
    from taps.engine.fields import stream_schema

    streams = {
        stream.name: {name: prop.get("x-pii", "none") for name, prop in stream_schema(stream)["properties"].items()}
        for stream in declaration.spec.streams
    }
    return DeclaredSource(name=source, streams=streams)
