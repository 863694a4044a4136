"""Installed source declarations, found by source name, for the record of processing and retention.

A source is either a built-in tap (`taps/<name>/<name>.yaml`) or a plugin
package registered in the `spendlake.sources` entry-point group with a
`source.yaml` beside its module.
"""

from __future__ import annotations

import functools
import typing as t
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.abc import Traversable

import yaml

ENTRY_POINT_GROUP = "spendlake.sources"
PLUGIN_DECLARATION_FILE = "source.yaml"
#: Folders of the `taps` package that hold no source.
_NOT_SOURCES = frozenset({"engine"})


@dataclass(frozen=True)
class SourceDeclaration:
    """A validated declaration (`taps.engine.declaration.SourceSpec`) and its optional record-of-processing keys."""

    spec: t.Any
    data_subjects: tuple[str, ...]
    purpose: str | None

    @property
    def name(self) -> str:
        """Return the source name (the DuckDB schema and Parquet folder)."""
        return str(self.spec.name)


def installed_source_names() -> list[str]:
    """Return the names of the built-in sources and the installed source plugins, sorted."""
    names = set(_builtin_resources()) | {entry_point.name for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


@functools.cache
def load_source_declaration(source: str) -> SourceDeclaration | None:
    """Return the declaration of `source`, or None when no installed source has that name."""
    from taps.engine.declaration import parse_declaration

    resource = _builtin_resources().get(source) or _plugin_resource(source)
    if resource is None:
        return None

    document = yaml.safe_load(resource.read_text(encoding="utf-8"))
    spec = parse_declaration(document, label=str(resource))
    return SourceDeclaration(
        spec=spec,
        data_subjects=tuple(document.get("data_subjects") or ()),
        purpose=document.get("purpose"),
    )


def replication_key(source: str, stream: str) -> str | None:
    """Return the declared bookmark field of `source.stream`, or None when it has none or is not declared."""
    from taps.engine.stream import declared_replication_key

    declaration = load_source_declaration(source)
    if declaration is None:
        return None
    for spec in declaration.spec.streams:
        if spec.name == stream:
            return declared_replication_key(spec)
    return None


def _builtin_resources() -> dict[str, Traversable]:
    package = resources.files("taps")
    found = {}
    for folder in package.iterdir():
        if not folder.is_dir() or folder.name in _NOT_SOURCES or folder.name.startswith(("_", ".")):
            continue
        candidate = folder.joinpath(f"{folder.name}.yaml")
        if candidate.is_file():
            found[folder.name] = candidate
    return found


def _plugin_resource(source: str) -> Traversable | None:
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP, name=source):
        candidate = resources.files(entry_point.value).joinpath(PLUGIN_DECLARATION_FILE)
        if candidate.is_file():
            return candidate
    return None
