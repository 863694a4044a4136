"""Per-tenant keys, created on first use and stored sealed in the tenant keyring.

Key hierarchy of one tenant:

- a master key outside the keyring: an AWS KMS key (`SPENDLAKE_KMS_KEY_ID`),
  the master key in `SPENDLAKE_MASTER_KEY`, or the local file
  `<home>/keys/master.key` (demo only; see `privacy.master_keys`);
- per generation, a key-encryption key (KEK) wrapped by that master key;
- under the KEK, sealed with AES-256-GCM: the HMAC key for pseudonyms, the field
  key for the mapper's `encrypt` action, the Parquet master keys `footer` and
  `pii`, and the DuckDB database key (see `privacy.keyring` for the file format).

Files under `<home>/keys/` are private (folder mode 0700, files mode 0600).
No function here logs or returns key material in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from privacy.duckdb_swap import swap_completed
from privacy.key_errors import KeyringError, MasterKeyError
from privacy.keyring import (
    FORMAT_V1,
    KEY_BYTES,
    UnlockedKeyring,
    fresh_generation_keys,
    keyring_path,
    keys_folder_lock,
    new_document,
    read_document,
    unlock_document,
    unseal_v1,
    write_document,
)
from privacy.master_keys import (
    ALLOW_LOCAL_MASTER_KEY_ENV,
    KMS_KEY_ID_ENV,
    MASTER_KEY_ENV,
    LocalMasterKey,
    env_flag,
    load_local_master_key,
    master_key_id,
    select_provider,
)
from spendlake.paths import validate_tenant

__all__ = [
    "ALLOW_LOCAL_MASTER_KEY_ENV",
    "KMS_KEY_ID_ENV",
    "MASTER_KEY_ENV",
    "KeyringError",
    "MasterKeyError",
    "TenantKeys",
    "changing_keyring",
    "env_flag",
    "load_tenant_keys",
    "master_key_id",
    "parquet_key_generation",
    "parquet_key_ids",
]

FOOTER = "footer"
PII = "pii"
_GENERATION_KEY_ID = re.compile(r"^(footer|pii)\.g([0-9]+)$")


@dataclass(frozen=True, kw_only=True)
class TenantKeys:
    """The unsealed keys of one tenant. `repr` shows the tenant only."""

    tenant: str
    hmac_key: bytes = field(repr=False)
    #: 32-byte key for the values mapper-pii encrypts (its `encrypt` action); the same in every generation.
    field_key: bytes = field(repr=False)
    duckdb_key: bytes = field(repr=False)
    #: The generation that new Parquet files and new keys use.
    generation: int = field(repr=False)
    #: The generation whose KEK seals `duckdb_key`.
    duckdb_key_generation: int = field(repr=False)
    _parquet_keys: dict[str, bytes] = field(repr=False)

    @property
    def pseudonym_key_id(self) -> str:
        """Return a public fingerprint of the HMAC key, so a loader can check who made the pseudonyms."""
        return hmac.new(self.hmac_key, b"spendlake pseudonym key id", hashlib.sha256).hexdigest()[:16]

    @property
    def parquet_footer_key_id(self) -> str:
        """Parquet master key id for footers and plain columns of new files (`footer`, `footer.g2`, …)."""
        return parquet_key_ids(self.generation)[0]

    @property
    def parquet_pii_key_id(self) -> str:
        """Parquet master key id for the pseudonymised columns of new files (`pii`, `pii.g2`, …)."""
        return parquet_key_ids(self.generation)[1]

    @property
    def parquet_key_id_list(self) -> list[str]:
        """Every Parquet master key id this keyring resolves, across its generations."""
        return sorted(self._parquet_keys)

    def parquet_master_key(self, key_id: str) -> bytes:
        """Return the Parquet master key `key_id` of any generation still in the keyring.

        Generation 1 uses the plain ids `footer` and `pii`; later generations
        `footer.g<n>` and `pii.g<n>`.
        """
        try:
            return self._parquet_keys[key_id]
        except KeyError:
            allowed = ", ".join(sorted(self._parquet_keys))
            msg = (
                f"Unknown Parquet master key id {key_id!r} for tenant {self.tenant!r}; this keyring holds: {allowed}. "
                f"The file was written under a generation that was retired or under another tenant's keys."
            )
            raise KeyringError(msg) from None


def parquet_key_ids(generation: int) -> tuple[str, str]:
    """Return the (footer, pii) Parquet master key ids of a generation."""
    if generation == 1:
        return FOOTER, PII
    return f"{FOOTER}.g{generation}", f"{PII}.g{generation}"


def parquet_key_generation(key_id: str) -> int | None:
    """Return the generation a Parquet master key id belongs to, or None for an id of another form."""
    if key_id in (FOOTER, PII):
        return 1
    match = _GENERATION_KEY_ID.match(key_id)
    return int(match.group(2)) if match else None


def load_tenant_keys(
    home: Path,
    tenant: str,
    *,
    allow_local_master_key: bool | None = None,
    create: bool = True,
) -> TenantKeys:
    """Load the tenant's keys, creating the keyring on first use unless `create` is false.

    A new keyring's KEK comes from the provider the environment selects
    (`privacy.master_keys.select_provider`). Generating the local master-key
    file, or sealing a new keyring under it, needs `allow_local_master_key`
    true, or `SPENDLAKE_ALLOW_LOCAL_MASTER_KEY` set when the argument is None.
    A version 1 keyring is converted to version 2 in place.
    """
    validate_tenant(tenant)
    if allow_local_master_key is None:
        allow_local_master_key = env_flag(ALLOW_LOCAL_MASTER_KEY_ENV)

    with keys_folder_lock(home) as folder:
        path = keyring_path(home, tenant)
        if not path.exists():
            if not create:
                msg = (
                    f"Tenant {tenant!r} has no keyring at {path}: it was never created here, was destroyed, or "
                    "the spendlake home is wrong. Restore the keyring or check --home and SPENDLAKE_HOME."
                )
                raise KeyringError(msg)
            _create_keyring(folder, path, tenant, allow_local=allow_local_master_key)
        keyring = _unlock(path, tenant)

    return _tenant_keys(home, keyring)


@contextlib.contextmanager
def changing_keyring(home: Path, tenant: str) -> Iterator[UnlockedKeyring]:
    """Open the tenant's existing keyring for a change under the keys-folder lock; call `save()` to keep it."""
    validate_tenant(tenant)
    with keys_folder_lock(home):
        path = keyring_path(home, tenant)
        if not path.exists():
            msg = f"Tenant {tenant!r} has no keyring ({path}); nothing was loaded for this tenant yet."
            raise KeyringError(msg)
        yield _unlock(path, tenant)


def _create_keyring(folder: Path, path: Path, tenant: str, *, allow_local: bool) -> None:
    provider = select_provider(folder, allow_local=allow_local)
    if isinstance(provider, LocalMasterKey) and provider.from_file and not allow_local:
        # Otherwise a production tenant created in a checkout that once ran the demo
        # would be protected by a key stored in clear beside its keyring.
        msg = (
            f"Refusing to create keys for tenant {tenant!r} under the local demo master-key file; "
            f"set {KMS_KEY_ID_ENV} to an AWS KMS key or {MASTER_KEY_ENV} to a master key kept in a secret store."
        )
        raise KeyringError(msg)

    document, _ = new_document(tenant, provider, fresh_generation_keys(), secrets.token_bytes(KEY_BYTES))
    write_document(path, document)


def _unlock(path: Path, tenant: str) -> UnlockedKeyring:
    document = read_document(path, tenant)
    if document["format"] == FORMAT_V1:
        document = _convert_v1(path, tenant, document)
    return unlock_document(path, tenant, document)


def _convert_v1(path: Path, tenant: str, document: dict[str, object]) -> dict[str, object]:
    """Rewrite a version 1 keyring as version 2: the same key bytes under a new KEK, plus a new field key."""
    local = load_local_master_key(path.parent)
    if local is None or document.get("master_key_id") != master_key_id(local.key):
        msg = (
            f"The keyring {path} was sealed with a different master key than the one in use; "
            f"set {MASTER_KEY_ENV} to the master key it was created with."
        )
        raise KeyringError(msg)

    old = unseal_v1(local.key, tenant, document, path)
    keys = fresh_generation_keys({purpose: old[purpose] for purpose in ("hmac", "parquet-footer", "parquet-pii")})
    provider = select_provider(path.parent, allow_local=False)
    converted, _ = new_document(tenant, provider, keys, old["duckdb"])
    converted["created_at"] = document.get("created_at", converted["created_at"])
    write_document(path, converted)
    return converted


def _tenant_keys(home: Path, keyring: UnlockedKeyring) -> TenantKeys:
    parquet_keys = {}
    for generation in keyring.generation_ids:
        footer_id, pii_id = parquet_key_ids(generation)
        parquet_keys[footer_id] = keyring.unseal("parquet-footer", generation)
        parquet_keys[pii_id] = keyring.unseal("parquet-pii", generation)

    slot = _duckdb_slot_in_use(home, keyring)
    record = keyring.duckdb_record(slot) or {}
    return TenantKeys(
        tenant=keyring.tenant,
        hmac_key=keyring.unseal("hmac", keyring.current),
        field_key=keyring.unseal("field", keyring.current),
        duckdb_key=keyring.unseal_duckdb(slot),
        generation=keyring.current,
        duckdb_key_generation=int(record.get("generation", keyring.current)),
        _parquet_keys=parquet_keys,
    )


def _duckdb_slot_in_use(home: Path, keyring: UnlockedKeyring) -> str:
    """Pick the DuckDB key that opens the database file: `pending` once an interrupted re-encryption swapped files."""
    pending = keyring.duckdb_record("pending")
    if pending is not None and swap_completed(home, keyring.tenant, str(pending.get("file_header_sha256"))):
        return "pending"
    return "active"
