"""`spendlake new-source NAME`: a plugin package with a declaration, a test and a Meltano entry."""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "spendlake-source-{dashed}"
version = "0.1.0"
description = "spendlake source {name}, declared in source.yaml."
requires-python = ">=3.11"
dependencies = ["spendlake"]

[project.scripts]
tap-{dashed} = "{package}:{tap_class}.cli"

[project.entry-points."spendlake.sources"]
{name} = "{package}"

[tool.setuptools.package-data]
"*" = ["*.yaml"]
"""

INIT = '''\
"""tap-{dashed}: a source declared in `source.yaml`."""

from taps.engine.plugins import tap_from_package

{tap_class} = tap_from_package(__name__)
'''

DECLARATION = """\
# Declaration of the {name} source. Every key is explained in spendlake's
# docs/declaring-a-source.md. Only declared fields leave the tap, and each needs
# a PII class (x-pii): none, email, phone, name, address, ip, free_text,
# identifier, date_of_birth or secret.
name: {name}
description: TODO describe the {name} API.
api:
  base_url: "{{config.api_url}}"
auth:
  type: bearer
  token: "{{config.api_key}}"
settings:
  - {{name: api_key, type: string, required: true, secret: true, description: API token.}}
  - {{name: api_url, type: string, format: uri, required: true, description: API root URL.}}
  - {{name: start_date, type: string, format: date-time, description: Earliest record to read on the first run.}}
stream_defaults:
  records: "$.data[*]"
  paginator: {{type: cursor, has_more: has_more, cursor_field: id, cursor_param: starting_after}}
  params: {{limit: 100}}
streams:
  items:
    path: /v1/items
    primary_key: [id]
    replication: {{key: created, request_param: "created[gte]", request_format: epoch_seconds}}
    fields:
      id: {{type: string, pii: none}}
      created: {{type: string, format: date-time, transform: epoch_seconds, pii: none}}
      email: {{type: string, pii: email}}
"""

TEST = '''\
"""tap-{dashed} against a mocked API."""

from __future__ import annotations

import responses

from {package} import {tap_class}

API = "http://api.test"


def test_reads_declared_fields(capsys) -> None:
    page = {{"has_more": False, "data": [{{"id": "1", "created": 1700000000, "email": "a@example.com", "extra": 1}}]}}
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{{API}}/v1/items", json=page)
        {tap_class}(config={{"api_key": "test-key", "api_url": API}}, parse_env_config=False).sync_all()

    output = capsys.readouterr().out
    assert '"x-pii":"email"' in output
    assert '"extra"' not in output
'''

MELTANO_ENTRY = """\
  - name: tap-{dashed}
    namespace: tap_{name}
    executable: tap-{dashed}
    load_schema: {name}
    capabilities: [catalog, discover, state, about]
    settings:
    - name: api_key
      kind: string
      sensitive: true
    - name: api_url
      kind: string
    - name: start_date
      kind: date_iso8601
"""


class ScaffoldError(ValueError):
    """Raised when a source cannot be scaffolded. The message gives the reason."""


def scaffold_source(name: str, parent: Path, *, meltano_yml: Path | None = None) -> Path:
    """Write a plugin package for source `name` under `parent` and return its folder.

    When `meltano_yml` is given, the new extractor is added under `plugins.extractors`.
    """
    if not _NAME.match(name):
        msg = f"Invalid source name {name!r}: use lower-case letters, digits and '_', starting with a letter."
        raise ScaffoldError(msg)

    names = {
        "name": name,
        "dashed": name.replace("_", "-"),
        "package": f"spendlake_source_{name}",
        "tap_class": "Tap" + "".join(part.capitalize() for part in name.split("_")),
    }
    folder = parent / f"spendlake-source-{names['dashed']}"
    if folder.exists():
        msg = f"{folder} already exists; choose another name or remove it."
        raise ScaffoldError(msg)

    package = folder / names["package"]
    package.mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "pyproject.toml").write_text(PYPROJECT.format(**names))
    (package / "__init__.py").write_text(INIT.format(**names))
    (package / "source.yaml").write_text(DECLARATION.format(**names))
    (folder / "tests" / f"test_{name}.py").write_text(TEST.format(**names))

    if meltano_yml is not None:
        add_meltano_extractor(meltano_yml, MELTANO_ENTRY.format(**names))
    return folder


def add_meltano_extractor(meltano_yml: Path, entry: str) -> None:
    """Insert an extractor entry at the top of `plugins.extractors`, keeping the file's text."""
    text = meltano_yml.read_text()
    marker = "  extractors:\n"
    if marker not in text:
        msg = f"{meltano_yml} has no 'plugins: extractors:' list to add the source to."
        raise ScaffoldError(msg)
    meltano_yml.write_text(text.replace(marker, marker + entry, 1))
