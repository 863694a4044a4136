"""Sources installed as plugins: packages that register a declaration under an entry point.

A plugin package lists its module in the `spendlake.sources` entry-point group
and ships `source.yaml` beside that module's `__init__.py`. Its console script
(`tap-<name>`) builds the tap with `tap_from_package`.
"""

from __future__ import annotations

from importlib import metadata, resources

from taps.engine.declaration import SourceSpec, load_declaration
from taps.engine.tap import DeclarativeTap, tap_from_declaration

ENTRY_POINT_GROUP = "spendlake.sources"
DECLARATION_FILE = "source.yaml"


def tap_from_package(package: str) -> type[DeclarativeTap]:
    """Build the tap class of a plugin package from its `source.yaml`."""
    return tap_from_declaration(resources.files(package).joinpath(DECLARATION_FILE))


def installed_sources() -> dict[str, SourceSpec]:
    """Load and validate the declaration of every installed source plugin, by entry-point name."""
    sources = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        sources[entry_point.name] = load_declaration(resources.files(entry_point.value).joinpath(DECLARATION_FILE))
    return sources
