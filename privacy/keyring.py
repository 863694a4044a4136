"""The tenant keyring file `<home>/keys/<tenant>.json`: generations of sealed keys.

Format `spendlake-keyring-v2`:

    {"format": "spendlake-keyring-v2", "tenant": "acme", "created_at": "…",
     "current": 2,
     "generations": [{"id": 2, "created_at": "…", "kek": {<master-key provider record>},
                      "keys": {"hmac": "…", "field": "…", "parquet-footer": "…", "parquet-pii": "…"}}],
     "duckdb": {"active": {"generation": 2, "created_at": "…", "sealed": "…"},
                "pending": null}}

Each generation has its own key-encryption key (KEK), wrapped by a master-key
provider (`privacy.master_keys`). Every key of a generation is 32 random bytes
sealed with AES-256-GCM under that KEK, with the format, tenant, purpose and
generation as associated data, so a sealed key cannot move to another tenant,
purpose or generation.

The HMAC key and the field key are the same bytes in every generation: changing
them would change every pseudonym and require re-encrypting every encrypted
value, so rotation re-seals them under the new KEK instead.

The DuckDB key has its own section because compaction after an erasure replaces
it without a new generation. `pending` is the next key while a database is
being re-encrypted (`privacy.duckdb_rekey`). It is stored with the SHA-256 of the
new file's main header, so a loader can check whether the file swap happened.

Version 1 keyrings (keys sealed directly under the master key) are converted to
version 2 on load, keeping the key bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.key_errors import KeyringError
from privacy.master_keys import MasterKeyProvider, provider_for_record
from spendlake.paths import keys_dir, validate_tenant

FORMAT_V1 = "spendlake-keyring-v1"
FORMAT_V2 = "spendlake-keyring-v2"
KEY_BYTES = 32
NONCE_BYTES = 12
#: Keys sealed in every generation.
GENERATION_PURPOSES = ("hmac", "field", "parquet-footer", "parquet-pii")
#: Keys that keep their bytes across generations.
STABLE_PURPOSES = ("hmac", "field")
DUCKDB_PURPOSE = "duckdb"
V1_PURPOSES = ("hmac", "duckdb", "parquet-footer", "parquet-pii")

Document = dict[str, t.Any]


def keyring_path(home: Path, tenant: str) -> Path:
    """Return the path of the tenant's keyring file."""
    return keys_dir(home) / f"{validate_tenant(tenant)}.json"


def ensure_keys_folder(home: Path) -> Path:
    """Create `<home>/keys` with mode 0700 and return it."""
    folder = keys_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


@contextlib.contextmanager
def keys_folder_lock(home: Path) -> Iterator[Path]:
    """Hold an exclusive lock on the keys folder, so keyring changes of concurrent processes do not interleave."""
    folder = ensure_keys_folder(home)
    descriptor = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield folder
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def now_text() -> str:
    """Return the current UTC time as ISO 8601 text, as stored in the keyring."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def seal(kek: bytes, tenant: str, purpose: str, generation: int, key: bytes) -> str:
    """Seal `key` with AES-256-GCM under `kek`; return base64 of nonce and ciphertext."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(kek).encrypt(nonce, key, _associated_data(tenant, purpose, generation))
    return base64.b64encode(nonce + ciphertext).decode("ascii")


def unseal(kek: bytes, tenant: str, purpose: str, generation: int, sealed: object, path: Path) -> bytes:
    """Open a key sealed by `seal`, raising `KeyringError` when the keyring was changed or moved."""
    try:
        blob = base64.b64decode(str(sealed), validate=True)
        return AESGCM(kek).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated_data(tenant, purpose, generation))
    except (binascii.Error, ValueError, InvalidTag):
        msg = (
            f"Cannot unseal the {purpose!r} key of generation {generation} in {path}: the file was changed "
            f"or belongs to another tenant."
        )
        raise KeyringError(msg) from None


def unseal_v1(master_key: bytes, tenant: str, document: Document, path: Path) -> dict[str, bytes]:
    """Return the keys of a version 1 keyring, sealed directly under the master key."""
    sealed = document.get("keys")
    if not isinstance(sealed, dict) or set(V1_PURPOSES) - set(sealed):
        msg = f"The keyring {path} is missing keys; expected: {', '.join(V1_PURPOSES)}."
        raise KeyringError(msg)

    keys = {}
    for purpose in V1_PURPOSES:
        try:
            blob = base64.b64decode(str(sealed[purpose]), validate=True)
            associated_data = f"{FORMAT_V1}|{tenant}|{purpose}".encode()
            keys[purpose] = AESGCM(master_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
        except (binascii.Error, ValueError, InvalidTag):
            msg = f"Cannot unseal the {purpose!r} key in {path}: the file was changed or belongs to another tenant."
            raise KeyringError(msg) from None
    return keys


def read_document(path: Path, tenant: str) -> Document:
    """Read a keyring file of either format, checking that it belongs to `tenant`."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        msg = f"Cannot read the keyring {path}: {type(error).__name__}. Restore it from backup."
        raise KeyringError(msg) from None

    if not isinstance(document, dict) or document.get("format") not in (FORMAT_V1, FORMAT_V2) or document.get("tenant") != tenant:
        msg = f"The keyring {path} is not a {FORMAT_V2} (or {FORMAT_V1}) keyring for tenant {tenant!r}."
        raise KeyringError(msg)
    return document


def write_document(path: Path, document: Document) -> None:
    """Write the keyring readable by its owner only, atomically and durably."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(json.dumps(document, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk. An fsync through a new descriptor flushes the whole file."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_folder(folder: Path) -> None:
    """Make a rename or unlink in `folder` durable (no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def new_document(
    tenant: str,
    provider: MasterKeyProvider,
    keys: dict[str, bytes],
    duckdb_key: bytes,
) -> tuple[Document, bytes]:
    """Build a version 2 keyring with generation 1 holding `keys`; return it and the new KEK."""
    kek, record = provider.new_kek(tenant, 1)
    created_at = now_text()
    document: Document = {
        "format": FORMAT_V2,
        "tenant": tenant,
        "created_at": created_at,
        "current": 1,
        "generations": [_generation(kek, record, tenant, 1, keys, created_at)],
        "duckdb": {"active": _duckdb_record(kek, tenant, 1, duckdb_key), "pending": None},
    }
    return document, kek


def fresh_generation_keys(stable: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Return random keys for every generation purpose, keeping the given stable keys."""
    keys = {purpose: secrets.token_bytes(KEY_BYTES) for purpose in GENERATION_PURPOSES}
    keys.update(stable or {})
    return keys


@dataclass
class UnlockedKeyring:
    """A version 2 keyring document with the KEK of every generation unwrapped.

    Methods change the document in memory; `save` writes it. Hold
    `keys_folder_lock` from reading to saving.
    """

    path: Path
    tenant: str
    document: Document
    keks: dict[int, bytes] = field(repr=False)

    @property
    def current(self) -> int:
        """The generation that seals new keys and whose Parquet key ids new files use."""
        return int(self.document["current"])

    @property
    def generation_ids(self) -> list[int]:
        """Ids of the generations still in the keyring, oldest first."""
        return sorted(int(generation["id"]) for generation in self.document["generations"])

    def unseal(self, purpose: str, generation: int) -> bytes:
        """Return one key of one generation."""
        sealed = self._generation(generation)["keys"].get(purpose)
        return unseal(self.keks[generation], self.tenant, purpose, generation, sealed, self.path)

    def duckdb_record(self, slot: str) -> dict[str, t.Any] | None:
        """Return the `active` or `pending` DuckDB key record."""
        return self.document["duckdb"].get(slot)

    def unseal_duckdb(self, slot: str) -> bytes:
        """Return the `active` or `pending` DuckDB key."""
        record = self.duckdb_record(slot)
        if record is None:
            msg = f"The keyring {self.path} has no {slot} DuckDB key."
            raise KeyringError(msg)
        generation = int(record["generation"])
        if generation not in self.keks:
            msg = (
                f"The {slot} DuckDB key in {self.path} is sealed under generation {generation}, which the keyring "
                f"no longer holds. Restore the keyring from backup."
            )
            raise KeyringError(msg)
        return unseal(self.keks[generation], self.tenant, DUCKDB_PURPOSE, generation, record["sealed"], self.path)

    def add_generation(self, provider: MasterKeyProvider) -> int:
        """Add a generation with a new KEK and new keys (HMAC and field keys kept); make it current."""
        stable = {purpose: self.unseal(purpose, self.current) for purpose in STABLE_PURPOSES}
        generation = max(self.generation_ids) + 1
        kek, record = provider.new_kek(self.tenant, generation)
        keys = fresh_generation_keys(stable)
        self.document["generations"].append(_generation(kek, record, self.tenant, generation, keys, now_text()))
        self.document["current"] = generation
        self.keks[generation] = kek
        return generation

    def retire_generations(self) -> list[int]:
        """Remove every generation except the current one; return the removed ids.

        Raises `KeyringError` while a DuckDB key still depends on an older generation.
        """
        for slot in ("active", "pending"):
            record = self.duckdb_record(slot)
            if record is not None and int(record["generation"]) != self.current:
                msg = (
                    f"Cannot retire old generations of tenant {self.tenant!r}: the {slot} DuckDB key is sealed under "
                    f"generation {record['generation']}. Re-encrypt the database first (`spendlake keys rotate`)."
                )
                raise KeyringError(msg)

        retired = [generation for generation in self.generation_ids if generation != self.current]
        self.document["generations"] = [g for g in self.document["generations"] if int(g["id"]) == self.current]
        for generation in retired:
            del self.keks[generation]
        return retired

    def stage_duckdb_key(self, key: bytes, header_sha256: str) -> None:
        """Record `key` as the pending DuckDB key of the file whose main header hashes to `header_sha256`."""
        record = _duckdb_record(self.keks[self.current], self.tenant, self.current, key)
        record["file_header_sha256"] = header_sha256
        self.document["duckdb"]["pending"] = record

    def commit_duckdb_key(self) -> None:
        """Make the pending DuckDB key the active one; the previous key is gone from the keyring."""
        pending = self.duckdb_record("pending")
        if pending is None:
            msg = f"The keyring {self.path} has no pending DuckDB key to commit."
            raise KeyringError(msg)
        pending.pop("file_header_sha256", None)
        self.document["duckdb"] = {"active": pending, "pending": None}

    def replace_unused_duckdb_key(self, key: bytes) -> None:
        """Make `key` the active DuckDB key under the current generation; only for a tenant without a database."""
        self.document["duckdb"] = {"active": _duckdb_record(self.keks[self.current], self.tenant, self.current, key), "pending": None}

    def discard_pending_duckdb_key(self) -> None:
        """Forget the pending DuckDB key (the re-encrypted file was not swapped in)."""
        self.document["duckdb"]["pending"] = None

    def save(self) -> None:
        """Write the document atomically."""
        write_document(self.path, self.document)

    def _generation(self, generation: int) -> dict[str, t.Any]:
        for entry in self.document["generations"]:
            if int(entry["id"]) == generation:
                return entry
        msg = f"The keyring {self.path} has no generation {generation}."
        raise KeyringError(msg)


def unlock_document(path: Path, tenant: str, document: Document) -> UnlockedKeyring:
    """Check a version 2 document's structure and unwrap the KEK of every generation."""
    _check_structure(path, document)
    keks = {}
    for generation in document["generations"]:
        generation_id = int(generation["id"])
        record = generation["kek"]
        provider = provider_for_record(path.parent, record)
        keks[generation_id] = provider.unwrap_kek(tenant, generation_id, record)
    return UnlockedKeyring(path=path, tenant=tenant, document=document, keks=keks)


def _check_structure(path: Path, document: Document) -> None:
    problem = None
    generations = document.get("generations")
    duckdb = document.get("duckdb")
    if not isinstance(generations, list) or not generations:
        problem = "'generations' is missing or empty"
    elif not all(isinstance(g, dict) and isinstance(g.get("id"), int) and isinstance(g.get("kek"), dict) for g in generations):
        problem = "a generation lacks an integer 'id' or a 'kek' object"
    elif any(set(GENERATION_PURPOSES) - set(g.get("keys") or {}) for g in generations):
        problem = f"a generation lacks one of the keys {', '.join(GENERATION_PURPOSES)}"
    elif document.get("current") not in {g["id"] for g in generations}:
        problem = "'current' does not name a generation of the keyring"
    elif not isinstance(duckdb, dict) or not isinstance(duckdb.get("active"), dict):
        problem = "'duckdb.active' is missing"

    if problem:
        msg = f"The keyring {path} is damaged: {problem}. Restore it from backup."
        raise KeyringError(msg)


def _generation(
    kek: bytes,
    kek_record: dict[str, t.Any],
    tenant: str,
    generation: int,
    keys: dict[str, bytes],
    created_at: str,
) -> dict[str, t.Any]:
    return {
        "id": generation,
        "created_at": created_at,
        "kek": kek_record,
        "keys": {purpose: seal(kek, tenant, purpose, generation, keys[purpose]) for purpose in GENERATION_PURPOSES},
    }


def _duckdb_record(kek: bytes, tenant: str, generation: int, key: bytes) -> dict[str, t.Any]:
    return {"generation": generation, "created_at": now_text(), "sealed": seal(kek, tenant, DUCKDB_PURPOSE, generation, key)}


def _associated_data(tenant: str, purpose: str, generation: int) -> bytes:
    return f"{FORMAT_V2}|{tenant}|{purpose}|{generation}".encode()
