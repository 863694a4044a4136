"""Crypto-shredding: destroy a tenant's keys and stored data when a client leaves.

Under the tenant lock, `destroy_tenant` overwrites and deletes the tenant's
keyring, so every copy of its Parquet files and DuckDB database (backups
included) loses its keys. In KMS mode it also schedules the deletion of the
tenant's KMS key, but only when the keyring records that key as dedicated to
this tenant (`SPENDLAKE_KMS_KEY_DEDICATED=true` when the KEK was made): a
shared key protects other tenants too. It then deletes the tenant's warehouse
folder (DuckDB and Parquet) and its erasure list, keeps the audit log and
appends a `keys.destroy` event to it.

NOTE: Overwriting the keyring file does not reach older copies on disk, such as
blocks kept by a journaling or copy-on-write file system or by an earlier atomic
rewrite. The KMS key deletion and short backup retention cover those copies.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from privacy.audit import append_audit_event
from privacy.erasures import erasure_list_path
from privacy.key_errors import KeyringError, MasterKeyError
from privacy.keyring import fsync_folder, keyring_path, keys_folder_lock, read_document
from privacy.master_keys import AWS_KMS, schedule_cmk_deletion
from spendlake.paths import tenant_dir, validate_tenant
from spendlake.tenant_lock import tenant_lock


@dataclass(frozen=True)
class DestroyReport:
    """Deletions made by one `destroy_tenant` run, and KMS key deletions that failed."""

    tenant: str
    keyring_deleted: bool
    warehouse_files_deleted: int
    erasure_list_deleted: bool
    kms_keys_scheduled_for_deletion: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Return a short human-readable summary."""
        scheduled = ", ".join(self.kms_keys_scheduled_for_deletion) or "none"
        return (
            f"Destroyed tenant {self.tenant!r}: keyring {'deleted' if self.keyring_deleted else 'not found'}, "
            f"{self.warehouse_files_deleted} warehouse file(s) deleted, erasure list "
            f"{'deleted' if self.erasure_list_deleted else 'not found'}; KMS keys scheduled for deletion: {scheduled}. "
            f"The audit log was kept."
        )


def destroy_tenant(home: Path, tenant: str) -> DestroyReport:
    """Shred the tenant's keyring, delete its warehouse and erasure list, and audit it; see the module docstring.

    A failed KMS key deletion does not stop the rest; it is listed in `problems`.
    """
    validate_tenant(tenant)
    with tenant_lock(home, tenant, "the tenant destruction"):
        dedicated, problems = _dedicated_kms_keys(home, tenant)
        keyring_deleted = _shred_keyring(home, tenant)
        scheduled = _schedule_deletions(dedicated, problems)
        files_deleted = _delete_warehouse(home, tenant)
        erasure_list = erasure_list_path(home, tenant)
        erasure_list_deleted = erasure_list.exists()
        erasure_list.unlink(missing_ok=True)

        report = DestroyReport(
            tenant=tenant,
            keyring_deleted=keyring_deleted,
            warehouse_files_deleted=files_deleted,
            erasure_list_deleted=erasure_list_deleted,
            kms_keys_scheduled_for_deletion=scheduled,
            problems=problems,
        )
        details = {name: value for name, value in asdict(report).items() if name != "tenant"}
        append_audit_event(home, tenant, "keys.destroy", details)
    return report


def _dedicated_kms_keys(home: Path, tenant: str) -> tuple[list[str], list[str]]:
    """Return the ARNs of KMS keys the keyring marks as dedicated to the tenant, and any reading problem."""
    path = keyring_path(home, tenant)
    if not path.exists():
        return [], []
    try:
        document = read_document(path, tenant)
    except KeyringError as error:
        return [], [f"{error} No KMS key deletion was scheduled; schedule it by hand if the tenant had a dedicated key."]

    arns = set()
    for generation in document.get("generations") or []:
        record = generation.get("kek") if isinstance(generation, dict) else None
        if isinstance(record, dict) and record.get("provider") == AWS_KMS and record.get("dedicated_cmk") is True:
            arns.add(str(record.get("key_arn")))
    return sorted(arns), []


def _shred_keyring(home: Path, tenant: str) -> bool:
    """Overwrite the keyring (and leftover temporary copies) with random bytes, sync, and delete them."""
    with keys_folder_lock(home) as folder:
        path = keyring_path(home, tenant)
        leftovers = sorted(folder.glob(f".{path.name}.*.tmp"))
        existed = path.exists()
        for target in [path, *leftovers]:
            if target.exists():
                _overwrite_and_delete(target)
        fsync_folder(folder)
    return existed


def _overwrite_and_delete(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(secrets.token_bytes(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def _schedule_deletions(key_arns: list[str], problems: list[str]) -> list[str]:
    scheduled = []
    for key_arn in key_arns:
        try:
            schedule_cmk_deletion(key_arn)
        except MasterKeyError as error:
            problems.append(f"{error} Schedule the deletion of {key_arn} by hand.")
            continue
        scheduled.append(key_arn)
    return scheduled


def _delete_warehouse(home: Path, tenant: str) -> int:
    folder = tenant_dir(home, tenant)
    if not folder.exists():
        return 0
    # The lock file this process holds is deleted too; the lock stays valid until released.
    files = sum(1 for path in folder.rglob("*") if path.is_file() and path.name != ".tenant.lock")
    shutil.rmtree(folder)
    fsync_folder(folder.parent)
    return files
