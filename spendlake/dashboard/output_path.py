"""Checks on the `--output` path, so a typo cannot replace the warehouse, a keyring or any other file.

The dashboard replaces the regular file that `--output` names. Inside the
spendlake home only the tenant's own dashboard folder may be written, because
the home contains the encrypted databases and the keyrings. Outside the home an
existing file is replaced only when its name ends in .html or .htm.
"""

from __future__ import annotations

import os
from pathlib import Path

from spendlake.dashboard.errors import DashboardError
from spendlake.dashboard.output import check_replaceable
from spendlake.paths import dashboard_path

#: Name endings of the existing files that --output may replace outside the home (compared in lower case).
HTML_SUFFIXES = (".html", ".htm")
#: Last parts of a path that name a folder: "new/" ends in an empty part, "new/." in ".".
FOLDER_NAMES = ("", ".", "..")


def resolve_output(raw: str) -> Path:
    """Return the absolute --output path with symbolic links resolved.

    Raises `DashboardError` when `raw` ends in a slash, "." or "..", which
    name a folder, or when the path cannot be resolved.
    """
    if raw and os.path.basename(raw) in FOLDER_NAMES:
        # pathlib drops a trailing slash, so "new/" would otherwise write a file named "new".
        example = Path(raw) / "dashboard.html"
        msg = f"The output path {raw} names a folder, not a file. Pass a file name to --output, such as {example}."
        raise DashboardError(msg)

    try:
        return Path(raw).expanduser().resolve()
    except (OSError, RuntimeError) as error:
        # RuntimeError is Python 3.11's error for a symbolic link loop.
        msg = f"Invalid --output path {raw}: {error}. Pass a path to an HTML file."
        raise DashboardError(msg) from None


def check_output_path(path: Path, home: Path, tenant: str) -> None:
    """Raise `DashboardError` unless the dashboard may write the resolved --output `path`.

    Allowed are paths below the tenant's dashboard folder, and outside the
    spendlake `home` a missing file or an existing regular file named *.html
    or *.htm. Anything else inside the home is rejected.
    """
    resolved_home = home.resolve()
    dashboard_folder = dashboard_path(resolved_home, tenant).parent.resolve()
    if path.is_relative_to(dashboard_folder) and path != dashboard_folder:
        check_replaceable(path)
        return

    if path.is_relative_to(resolved_home):
        msg = (
            f"The output path {path} is inside the spendlake home {resolved_home}, which contains the warehouse "
            f"and the keys. Pass a path outside it to --output, or one inside {dashboard_folder}."
        )
        raise DashboardError(msg)

    check_replaceable(path)
    if os.path.lexists(path) and not path.name.lower().endswith(HTML_SUFFIXES):
        msg = (
            f"The output path {path} is an existing file whose name does not end in .html or .htm, so the "
            "dashboard does not replace it. Pass a new file name or an HTML file to --output."
        )
        raise DashboardError(msg)
