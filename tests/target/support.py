"""Helpers for target-warehouse tests: Singer message builders, target runs and warehouse queries."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import simplejson
from singer_sdk.testing.runners import TargetTestRunner

from privacy.keys import load_tenant_keys
from targets.warehouse import TargetWarehouse
from targets.warehouse.duckdb_store import connect_warehouse

TENANT = "acme"
SOURCE = "stripe"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def fixtures_folder() -> Path:
    """Return the public payload folder; skip when absent, except in CI where it must exist."""
    if FIXTURES.is_dir():
        return FIXTURES
    if os.environ.get("CI") == "true":
        pytest.fail(f"The fixture folder {FIXTURES} is missing, and CI=true requires it.")
    pytest.skip(f"The fixture folder {FIXTURES} is not present on this machine.")


def target_config(home: Path, **extra: Any) -> dict[str, Any]:
    return {"tenant": TENANT, "source": SOURCE, "home": str(home), **extra}


def schema_message(
    stream: str,
    properties: dict[str, Any],
    key_properties: Sequence[str] = ("id",),
    required: Sequence[str] = (),
) -> dict[str, Any]:
    # Mark the stream as mapper-pii would, so the target's PII guard accepts it.
    marked = {name: {"x-pii-applied": "keep", **prop} for name, prop in properties.items()}
    schema: dict[str, Any] = {"type": "object", "properties": marked, "x-pii-tenant": TENANT, "x-pii-key-id": KEY_ID_OF_HOME}
    if required:
        schema["required"] = list(required)
    return {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": list(key_properties)}


def record_message(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": record}


def state_message(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "STATE", "value": value}


#: Placeholder for the fingerprint of the tenant key in the run's home; `singer_text` fills it in.
KEY_ID_OF_HOME = "<key id of the tenant keyring in home>"


def singer_text(messages: Iterable[dict[str, Any]], home: Path | None = None) -> str:
    # simplejson writes `Decimal` values as exact JSON numbers, which the standard library cannot.
    text = "".join(simplejson.dumps(message, use_decimal=True) + "\n" for message in messages)
    if home is not None and KEY_ID_OF_HOME in text:
        text = text.replace(KEY_ID_OF_HOME, load_tenant_keys(home, TENANT).pseudonym_key_id)
    return text


def run_target(home: Path, messages: Iterable[dict[str, Any]], **config: Any) -> list[dict[str, Any]]:
    """Run the target on `messages` through the SDK test runner; return the STATE values it wrote."""
    runner = TargetTestRunner(
        TargetWarehouse,
        config=target_config(home, **config),
        input_io=io.StringIO(singer_text(messages, home)),
    )
    runner.sync_all()
    return runner.state_messages


def run_target_expecting_error(home: Path, messages: Iterable[dict[str, Any]], **config: Any) -> Exception:
    """Run the target on input it must reject; return the error after closing the database."""
    target = TargetWarehouse(config=target_config(home, **config))
    try:
        target.listen(file_input=io.StringIO(singer_text(messages, home)))
    except Exception as error:  # noqa: BLE001 - the caller asserts the type and text
        return error
    finally:
        target.close()
    pytest.fail("The target accepted input that it must reject.")


def query(home: Path, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` on the tenant's warehouse, opened read-only."""
    with connect_warehouse(home, TENANT, read_only=True) as connection:
        return connection.execute(sql, list(parameters)).fetchall()


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def tenant_folder(home: Path) -> Path:
    return home / "warehouse" / TENANT
