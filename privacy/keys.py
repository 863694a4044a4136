"""Per-tenant keys, created on first use and stored wrapped by a master key.

Layout under `<home>/keys/` (folder mode 0700, files mode 0600):

- `master.key`: a generated local master key, only when the caller allows it
  (the demo). Production sets `SPENDLAKE_MASTER_KEY` instead.
- `<tenant>.json`: the tenant keyring. Each key is 32 random bytes sealed with
  AES-256-GCM under the master key, with the tenant and the key's purpose as
  associated data, so a sealed key cannot be moved to another tenant or purpose.

No function here logs or returns key material in a message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from spendlake.paths import keys_dir, validate_tenant

MASTER_KEY_ENV = "SPENDLAKE_MASTER_KEY"
ALLOW_LOCAL_MASTER_KEY_ENV = "SPENDLAKE_ALLOW_LOCAL_MASTER_KEY"

KEYRING_FORMAT = "spendlake-keyring-v1"
KEY_BYTES = 32
NONCE_BYTES = 12
PURPOSES = ("hmac", "duckdb", "parquet-footer", "parquet-pii")
PARQUET_KEY_IDS = {"footer": "parquet-footer", "pii": "parquet-pii"}


class KeyringError(RuntimeError):
    """Raised when keys cannot be created, read or unsealed. Messages carry no key bytes."""


@dataclass(frozen=True)
class TenantKeys:
    """The unsealed keys of one tenant. `repr` shows the tenant only."""

    tenant: str
    hmac_key: bytes = field(repr=False)
    duckdb_key: bytes = field(repr=False)
    _parquet_keys: dict[str, bytes] = field(repr=False)

    @property
    def pseudonym_key_id(self) -> str:
        """Return a public fingerprint of the HMAC key, so a loader can check who made the pseudonyms."""
        return hmac.new(self.hmac_key, b"spendlake pseudonym key id", hashlib.sha256).hexdigest()[:16]

    def parquet_master_key(self, key_id: str) -> bytes:
        """Return the key-encryption key for Parquet master key id `footer` or `pii`."""
        try:
            return self._parquet_keys[key_id]
        except KeyError:
            allowed = ", ".join(sorted(self._parquet_keys))
            msg = f"Unknown Parquet master key id {key_id!r}; expected one of: {allowed}."
            raise KeyringError(msg) from None


def env_flag(name: str) -> bool:
    """Read a boolean environment variable (`1`, `true`, `yes`, `on` are true)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def load_tenant_keys(
    home: Path,
    tenant: str,
    *,
    allow_local_master_key: bool | None = None,
) -> TenantKeys:
    """Load the tenant's keys, creating the keyring on first use.

    The master key comes from `SPENDLAKE_MASTER_KEY`. Without it, the local
    master-key file `<home>/keys/master.key` opens keyrings that already exist.
    Generating that file, or sealing a new keyring under it, needs
    `allow_local_master_key` true, or `SPENDLAKE_ALLOW_LOCAL_MASTER_KEY` set
    when the argument is None.
    """
    validate_tenant(tenant)
    if allow_local_master_key is None:
        allow_local_master_key = env_flag(ALLOW_LOCAL_MASTER_KEY_ENV)

    folder = _ensure_keys_dir(home)
    with _exclusive_lock(folder):
        master_key = _load_master_key(folder, allow_local=allow_local_master_key)
        path = folder / f"{tenant}.json"
        if not path.exists():
            _check_may_create(tenant, allow_local=allow_local_master_key)
            _write_private_json(path, _new_keyring(master_key, tenant))
        sealed = _read_keyring(path, tenant)

    return _unseal_keyring(master_key, tenant, sealed, path)


def master_key_id(master_key: bytes) -> str:
    """Return a short public fingerprint of the master key, to detect a mismatch."""
    digest = hmac.new(master_key, b"spendlake master key id", hashlib.sha256).hexdigest()
    return digest[:16]


def _check_may_create(tenant: str, *, allow_local: bool) -> None:
    """Seal new keys under the local master-key file only where that file is allowed.

    Otherwise a production tenant created in a checkout that once ran the demo
    would be protected by a key stored in clear beside its keyring.
    """
    if os.environ.get(MASTER_KEY_ENV) or allow_local:
        return
    msg = (
        f"Refusing to create keys for tenant {tenant!r} under the local demo master-key file; "
        f"set {MASTER_KEY_ENV} to a master key kept in a secret store."
    )
    raise KeyringError(msg)


def _ensure_keys_dir(home: Path) -> Path:
    folder = keys_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


@contextlib.contextmanager
def _exclusive_lock(folder: Path) -> Iterator[None]:
    """Serialise key creation between processes (the mapper and target start together)."""
    lock_path = folder / ".lock"
    descriptor = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def _load_master_key(folder: Path, *, allow_local: bool) -> bytes:
    encoded = os.environ.get(MASTER_KEY_ENV)
    if encoded:
        return _decode_master_key(encoded, source=f"the environment variable {MASTER_KEY_ENV}")

    path = folder / "master.key"
    if not path.exists() and not allow_local:
        msg = (
            f"No master key: set {MASTER_KEY_ENV} to the base64 encoding of 32 random bytes "
            f"(keep it in a secret store), or set {ALLOW_LOCAL_MASTER_KEY_ENV}=true to generate "
            f"a local master-key file (demo only)."
        )
        raise KeyringError(msg)

    if not path.exists():
        generated = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
        _write_private_text(path, generated + "\n")
    return _decode_master_key(path.read_text().strip(), source=f"the file {path}")


def _decode_master_key(encoded: str, *, source: str) -> bytes:
    text = encoded.strip()
    altchars = b"-_" if ("-" in text or "_" in text) else None  # accept the URL-safe alphabet too
    try:
        key = base64.b64decode(text, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        msg = f"Invalid master key in {source}: expected the base64 encoding of exactly {KEY_BYTES} bytes."
        raise KeyringError(msg)
    return key


def _new_keyring(master_key: bytes, tenant: str) -> dict[str, object]:
    sealed = {purpose: _seal(master_key, tenant, purpose, secrets.token_bytes(KEY_BYTES)) for purpose in PURPOSES}
    return {
        "format": KEYRING_FORMAT,
        "tenant": tenant,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "master_key_id": master_key_id(master_key),
        "keys": sealed,
    }


def _read_keyring(path: Path, tenant: str) -> dict[str, object]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        msg = f"Cannot read the keyring {path}: {type(error).__name__}. Restore it from backup."
        raise KeyringError(msg) from None

    if document.get("format") != KEYRING_FORMAT or document.get("tenant") != tenant:
        msg = f"The keyring {path} is not a {KEYRING_FORMAT} keyring for tenant {tenant!r}."
        raise KeyringError(msg)
    return document


def _unseal_keyring(master_key: bytes, tenant: str, document: dict[str, object], path: Path) -> TenantKeys:
    if document.get("master_key_id") != master_key_id(master_key):
        msg = (
            f"The keyring {path} was sealed with a different master key than the one in use; "
            f"set {MASTER_KEY_ENV} to the master key it was created with."
        )
        raise KeyringError(msg)

    sealed = document.get("keys")
    if not isinstance(sealed, dict) or set(PURPOSES) - set(sealed):
        msg = f"The keyring {path} is missing keys; expected: {', '.join(PURPOSES)}."
        raise KeyringError(msg)

    unsealed = {purpose: _unseal(master_key, tenant, purpose, sealed[purpose], path) for purpose in PURPOSES}
    return TenantKeys(
        tenant=tenant,
        hmac_key=unsealed["hmac"],
        duckdb_key=unsealed["duckdb"],
        _parquet_keys={key_id: unsealed[purpose] for key_id, purpose in PARQUET_KEY_IDS.items()},
    )


def _associated_data(tenant: str, purpose: str) -> bytes:
    return f"{KEYRING_FORMAT}|{tenant}|{purpose}".encode()


def _seal(master_key: bytes, tenant: str, purpose: str, key: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(master_key).encrypt(nonce, key, _associated_data(tenant, purpose))
    return base64.b64encode(nonce + ciphertext).decode("ascii")


def _unseal(master_key: bytes, tenant: str, purpose: str, sealed: object, path: Path) -> bytes:
    try:
        blob = base64.b64decode(str(sealed), validate=True)
        key = AESGCM(master_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated_data(tenant, purpose))
    except (binascii.Error, ValueError, InvalidTag):
        msg = f"Cannot unseal the {purpose!r} key in {path}: the file was changed or belongs to another tenant."
        raise KeyringError(msg) from None
    return key


def _write_private_text(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically (temporary file, then rename)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _write_private_json(path: Path, document: dict[str, object]) -> None:
    _write_private_text(path, json.dumps(document, indent=2) + "\n")
