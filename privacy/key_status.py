"""A description of a tenant keyring for `spendlake keys status`: providers, generations, key ids, never key bytes."""

from __future__ import annotations

import typing as t
from pathlib import Path

from privacy.key_errors import KeyringError
from privacy.keyring import keyring_path, read_document
from privacy.keys import load_tenant_keys, parquet_key_ids
from privacy.master_keys import AWS_KMS

Status = dict[str, t.Any]


def keyring_status(home: Path, tenant: str) -> Status:
    """Describe the tenant's keyring without creating one; `opens` is true when its keys unwrap now."""
    path = keyring_path(home, tenant)
    if not path.exists():
        msg = f"Tenant {tenant!r} has no keyring ({path}); it is created by the first load."
        raise KeyringError(msg)

    # Loading first converts a version 1 keyring, so the description below shows version 2.
    try:
        keys = load_tenant_keys(home, tenant)
        problem = None
    except KeyringError as error:
        keys = None
        problem = str(error)

    document = read_document(path, tenant)
    status: Status = {
        "tenant": tenant,
        "keyring": str(path),
        "format": document["format"],
        "created_at": document.get("created_at"),
        "current_generation": document.get("current", 1),
        "generations": [_generation_status(generation) for generation in document.get("generations") or []],
        "duckdb_key": _duckdb_status(document.get("duckdb")),
    }

    status["opens"] = keys is not None
    if keys is None:
        status["problem"] = problem
    else:
        status["pseudonym_key_id"] = keys.pseudonym_key_id
    return status


def format_status(status: Status) -> list[str]:
    """Return the status as lines of text."""
    lines = [
        f"Tenant {status['tenant']}: keyring {status['keyring']} ({status['format']}, created {status['created_at']})",
        f"  current generation: {status['current_generation']}",
    ]
    for generation in status["generations"]:
        lines.append(
            f"  generation {generation['id']} (created {generation['created_at']}): KEK wrapped by {generation['provider']}; "
            f"Parquet master key ids {', '.join(generation['parquet_key_ids'])}"
        )
    duckdb = status["duckdb_key"]
    if duckdb:
        pending = "yes (an interrupted re-encryption; the next rotation or compaction settles it)" if duckdb["pending"] else "no"
        lines.append(f"  DuckDB key: generation {duckdb['generation']} (created {duckdb['created_at']}); re-encryption pending: {pending}")
    if status["opens"]:
        lines.append(f"  keys unwrap with the current master key: yes; pseudonym key id {status['pseudonym_key_id']}")
    else:
        lines.append(f"  keys unwrap with the current master key: no. {status['problem']}")
    return lines


def _generation_status(generation: dict[str, t.Any]) -> dict[str, t.Any]:
    record = generation.get("kek") or {}
    if record.get("provider") == AWS_KMS:
        dedicated = ", dedicated to this tenant" if record.get("dedicated_cmk") else ", shared"
        provider = f"AWS KMS key {record.get('key_arn')}{dedicated}"
    else:
        provider = f"master key id {record.get('master_key_id')}"
    return {
        "id": generation.get("id"),
        "created_at": generation.get("created_at"),
        "provider": provider,
        "parquet_key_ids": list(parquet_key_ids(int(generation.get("id", 1)))),
    }


def _duckdb_status(section: object) -> dict[str, t.Any] | None:
    if not isinstance(section, dict) or not isinstance(section.get("active"), dict):
        return None
    active = section["active"]
    return {"generation": active.get("generation"), "created_at": active.get("created_at"), "pending": section.get("pending") is not None}
