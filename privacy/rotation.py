"""Key rotation: move a tenant's data to a new key generation and retire the old one.

Under the tenant lock, `rotate_tenant`:

1. finishes or undoes an interrupted DuckDB re-encryption;
2. adds a keyring generation with a new KEK, new Parquet master keys and a new
   DuckDB key (the HMAC and field keys keep their bytes, re-sealed);
3. rewrites every Parquet file of the tenant with new data keys under the new
   generation, skipping files already on it;
4. re-encrypts the DuckDB database into a fresh file under the new generation;
5. removes the old generations from the keyring, so copies of the old files
   (backups included) no longer open.

A run that stops midway leaves two generations in the keyring, and the next run
resumes it instead of starting another rotation.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from privacy.audit import append_audit_event
from privacy.duckdb_rekey import recover_interrupted_rekey, rekey_database
from privacy.keyring import KEY_BYTES
from privacy.keys import KeyringError, TenantKeys, changing_keyring, load_tenant_keys, parquet_key_generation
from privacy.master_keys import select_provider
from privacy.parquet_rewrite import file_master_key_ids, lake_files, remove_stale_rewrites, rewrite_parquet_file
from spendlake.paths import duckdb_path, keys_dir, tenant_dir, validate_tenant
from spendlake.tenant_lock import tenant_lock
from targets.warehouse.errors import WarehouseKeyError


class RotationError(RuntimeError):
    """Raised when a rotation cannot go on; what it already rewrote stays readable, and a rerun resumes."""


@dataclass(frozen=True)
class RotationReport:
    """Counts and generations of one rotation run."""

    tenant: str
    generation: int
    resumed: bool
    retired_generations: list[int] = field(default_factory=list)
    files_rewritten: int = 0
    files_skipped: int = 0
    files_removed: int = 0
    parquet_rows: int = 0
    tables_copied: int = 0
    duckdb_rows: int = 0
    interrupted_rekey: str | None = None

    def summary(self) -> str:
        """Return a short human-readable summary."""
        action = "Resumed the rotation to" if self.resumed else "Rotated tenant keys to"
        retired = ", ".join(str(generation) for generation in self.retired_generations) or "none"
        return (
            f"{action} generation {self.generation} for tenant {self.tenant!r}: "
            f"{self.files_rewritten} Parquet file(s) rewritten ({self.parquet_rows} rows), "
            f"{self.files_skipped} already on generation {self.generation}; "
            f"{self.tables_copied} DuckDB table(s) copied ({self.duckdb_rows} rows); "
            f"retired generation(s): {retired}."
        )


def rotate_tenant(home: Path, tenant: str) -> RotationReport:
    """Rotate the tenant's keys under the tenant lock and record a `keys.rotate` audit event."""
    validate_tenant(tenant)
    with tenant_lock(home, tenant, "the key rotation"):
        interrupted = recover_interrupted_rekey(home, tenant)
        generation, resumed = _start_or_resume(home, tenant)
        keys = load_tenant_keys(home, tenant)

        parquet = _rewrite_lake(home, tenant, keys)
        tables_copied, duckdb_rows = _rekey_if_needed(home, tenant, keys)
        retired = _retire_old_generations(home, tenant)

        report = RotationReport(
            tenant=tenant,
            generation=generation,
            resumed=resumed,
            retired_generations=retired,
            files_rewritten=parquet["rewritten"],
            files_skipped=parquet["skipped"],
            files_removed=parquet["removed"],
            parquet_rows=parquet["rows"],
            tables_copied=tables_copied,
            duckdb_rows=duckdb_rows,
            interrupted_rekey=interrupted,
        )
        details = {name: value for name, value in asdict(report).items() if name != "tenant"}
        append_audit_event(home, tenant, "keys.rotate", details)
    return report


def _start_or_resume(home: Path, tenant: str) -> tuple[int, bool]:
    """Add a generation, or return the current one when an earlier run left old generations behind."""
    with changing_keyring(home, tenant) as keyring:
        if len(keyring.generation_ids) > 1:
            return keyring.current, True
        generation = keyring.add_generation(select_provider(keys_dir(home), allow_local=False))
        keyring.save()
    return generation, False


def _rewrite_lake(home: Path, tenant: str, keys: TenantKeys) -> dict[str, int]:
    lake = tenant_dir(home, tenant) / "parquet"
    remove_stale_rewrites(lake)
    counts = {"rewritten": 0, "skipped": 0, "removed": 0, "rows": 0}
    for path in lake_files(lake):
        try:
            if _on_generation(path, keys):
                counts["skipped"] += 1
                continue
            result = rewrite_parquet_file(path, keys, keys)
        except (KeyringError, WarehouseKeyError, OSError, ValueError) as error:
            msg = (
                f"Cannot rewrite {path} ({type(error).__name__}: {_safe_text(error)}). The files rewritten so far "
                f"are on the new generation; fix or move this file away, then run the rotation again."
            )
            raise RotationError(msg) from None
        counts["rewritten"] += 1
        counts["removed"] += int(result.removed)
        counts["rows"] += result.rows_after
    return counts


def _on_generation(path: Path, keys: TenantKeys) -> bool:
    key_ids = file_master_key_ids(path, keys)
    return bool(key_ids) and all(parquet_key_generation(key_id) == keys.generation for key_id in key_ids)


def _rekey_if_needed(home: Path, tenant: str, keys: TenantKeys) -> tuple[int, int]:
    if keys.duckdb_key_generation == keys.generation:
        return 0, 0

    if not duckdb_path(home, tenant).exists():
        # No database was created yet, so no data depends on the old DuckDB key.
        with changing_keyring(home, tenant) as keyring:
            keyring.replace_unused_duckdb_key(secrets.token_bytes(KEY_BYTES))
            keyring.save()
        return 0, 0

    result = rekey_database(home, tenant)
    return len(result.tables), result.rows


def _retire_old_generations(home: Path, tenant: str) -> list[int]:
    with changing_keyring(home, tenant) as keyring:
        retired = keyring.retire_generations()
        if retired:
            keyring.save()
    return retired


def _safe_text(error: BaseException) -> str:
    """Return our own errors' text; library errors are reduced to their type, since they may quote values."""
    if isinstance(error, KeyringError | WarehouseKeyError):
        return str(error)
    return "the file cannot be read; check its permissions and whether it is complete"
