"""Master-key providers that wrap and unwrap each tenant's key-encryption key (KEK).

The environment chooses the provider for new KEKs (a new keyring or a key rotation):

1. `SPENDLAKE_KMS_KEY_ID` (an AWS KMS key id, ARN or alias): envelope encryption.
   `GenerateDataKey` returns the KEK and its ciphertext, bound to the encryption
   context `{"spendlake:tenant": <tenant>, "spendlake:purpose": "tenant-kek"}`.
   boto3 reads the standard AWS settings (credentials, region, and
   `AWS_ENDPOINT_URL` for a local KMS such as moto's server).
2. `SPENDLAKE_MASTER_KEY`: the base64 encoding of 32 random bytes, kept in a
   secret store. The KEK is sealed with AES-256-GCM under it.
3. The local master-key file `<home>/keys/master.key` (demo only).

Unwrapping follows what the keyring records for each KEK, not the environment,
so a keyring made under a master key still opens after `SPENDLAKE_KMS_KEY_ID`
is set, and the next rotation moves it to KMS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.key_errors import MasterKeyError

if t.TYPE_CHECKING:
    from botocore.client import BaseClient

MASTER_KEY_ENV = "SPENDLAKE_MASTER_KEY"
ALLOW_LOCAL_MASTER_KEY_ENV = "SPENDLAKE_ALLOW_LOCAL_MASTER_KEY"
KMS_KEY_ID_ENV = "SPENDLAKE_KMS_KEY_ID"
#: When true, new KMS-wrapped KEKs record that their CMK serves this tenant alone, so
#: `spendlake keys destroy` may schedule the CMK's deletion.
KMS_KEY_DEDICATED_ENV = "SPENDLAKE_KMS_KEY_DEDICATED"

MASTER_KEY_FILE = "master.key"
KEY_BYTES = 32
NONCE_BYTES = 12
AWS_KMS = "aws-kms"
LOCAL_MASTER_KEY = "master-key"
KMS_DELETION_WINDOW_DAYS = 7

KekRecord = dict[str, t.Any]
"""Keyring entry of one wrapped KEK: a JSON object without key bytes in clear."""


def env_flag(name: str) -> bool:
    """Read a boolean environment variable (`1`, `true`, `yes`, `on` are true)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def master_key_id(master_key: bytes) -> str:
    """Return a short public fingerprint of the master key, to detect a mismatch."""
    digest = hmac.new(master_key, b"spendlake master key id", hashlib.sha256).hexdigest()
    return digest[:16]


class MasterKeyProvider(t.Protocol):
    """Wraps new tenant KEKs and unwraps the ones it wrapped."""

    #: Provider name stored in each KEK record (`aws-kms` or `master-key`).
    name: str

    def describe(self) -> str:
        """Name the provider and its key for status output and errors, without secrets."""
        ...

    def new_kek(self, tenant: str, generation: int) -> tuple[bytes, KekRecord]:
        """Return a new 32-byte KEK and the record that lets this provider unwrap it later."""
        ...

    def unwrap_kek(self, tenant: str, generation: int, record: KekRecord) -> bytes:
        """Return the KEK stored in `record`, raising `MasterKeyError` when it cannot be unwrapped."""
        ...


@dataclass(frozen=True)
class LocalMasterKey:
    """A 32-byte master key from `SPENDLAKE_MASTER_KEY` or the local master-key file."""

    key: bytes = field(repr=False)
    source: str
    from_file: bool
    name: str = LOCAL_MASTER_KEY

    def describe(self) -> str:
        """Name the key's source and fingerprint."""
        return f"master key from {self.source} (id {master_key_id(self.key)})"

    def new_kek(self, tenant: str, generation: int) -> tuple[bytes, KekRecord]:
        """Generate a KEK and seal it with AES-256-GCM under the master key."""
        kek = secrets.token_bytes(KEY_BYTES)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, kek, _kek_associated_data(tenant, generation))
        record = {
            "provider": LOCAL_MASTER_KEY,
            "master_key_id": master_key_id(self.key),
            "wrapped_kek": base64.b64encode(nonce + sealed).decode("ascii"),
        }
        return kek, record

    def unwrap_kek(self, tenant: str, generation: int, record: KekRecord) -> bytes:
        """Unseal the KEK, checking first that the record was sealed under this master key."""
        if record.get("master_key_id") != master_key_id(self.key):
            msg = (
                f"The keyring of tenant {tenant!r} (generation {generation}) was sealed with a different master key "
                f"than the one in use ({self.source}); set {MASTER_KEY_ENV} to the master key it was created with."
            )
            raise MasterKeyError(msg)

        try:
            blob = base64.b64decode(str(record.get("wrapped_kek")), validate=True)
            return AESGCM(self.key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _kek_associated_data(tenant, generation))
        except (binascii.Error, ValueError, InvalidTag):
            msg = (
                f"Cannot unseal the KEK of generation {generation} of tenant {tenant!r}: the keyring was changed "
                f"or belongs to another tenant. Restore it from backup."
            )
            raise MasterKeyError(msg) from None


@dataclass(frozen=True)
class AwsKmsMasterKey:
    """An AWS KMS key that makes and unwraps tenant KEKs by envelope encryption."""

    key_id: str
    dedicated: bool = False
    name: str = AWS_KMS

    def describe(self) -> str:
        """Name the KMS key."""
        return f"AWS KMS key {self.key_id}"

    def new_kek(self, tenant: str, generation: int) -> tuple[bytes, KekRecord]:
        """Call `GenerateDataKey` (AES_256) with the tenant's encryption context."""
        response = _call_kms(
            "GenerateDataKey",
            self.key_id,
            lambda client: client.generate_data_key(
                KeyId=self.key_id,
                KeySpec="AES_256",
                EncryptionContext=kms_encryption_context(tenant),
            ),
        )
        # Store the key ARN from the response, never the alias: an alias can later point at another key.
        record = {
            "provider": AWS_KMS,
            "key_arn": response["KeyId"],
            "ciphertext_blob": base64.b64encode(response["CiphertextBlob"]).decode("ascii"),
            "dedicated_cmk": self.dedicated,
        }
        return response["Plaintext"], record

    def unwrap_kek(self, tenant: str, generation: int, record: KekRecord) -> bytes:
        """Call `Decrypt` with the stored key ARN and the tenant's encryption context."""
        key_arn = str(record.get("key_arn") or self.key_id)
        try:
            blob = base64.b64decode(str(record.get("ciphertext_blob")), validate=True)
        except (binascii.Error, ValueError):
            msg = f"The KMS-wrapped KEK of generation {generation} of tenant {tenant!r} is not valid base64; restore the keyring from backup."
            raise MasterKeyError(msg) from None

        response = _call_kms(
            "Decrypt",
            key_arn,
            lambda client: client.decrypt(
                CiphertextBlob=blob,
                KeyId=key_arn,
                EncryptionContext=kms_encryption_context(tenant),
            ),
            tenant=tenant,
        )
        kek = response["Plaintext"]
        if len(kek) != KEY_BYTES:
            msg = f"AWS KMS returned a {len(kek)}-byte KEK for tenant {tenant!r}; expected {KEY_BYTES} bytes (an AES_256 data key)."
            raise MasterKeyError(msg)
        return kek


def kms_encryption_context(tenant: str) -> dict[str, str]:
    """Return the KMS encryption context that binds a tenant KEK to its tenant."""
    return {"spendlake:tenant": tenant, "spendlake:purpose": "tenant-kek"}


def select_provider(keys_folder: Path, *, allow_local: bool) -> MasterKeyProvider:
    """Return the provider for new KEKs: AWS KMS, then `SPENDLAKE_MASTER_KEY`, then the local file.

    The local master-key file is generated only when `allow_local` is true.
    """
    kms_key_id = os.environ.get(KMS_KEY_ID_ENV, "").strip()
    if kms_key_id:
        return AwsKmsMasterKey(kms_key_id, dedicated=env_flag(KMS_KEY_DEDICATED_ENV))

    local = load_local_master_key(keys_folder)
    if local is not None:
        return local

    if not allow_local:
        msg = (
            f"No master key: set {KMS_KEY_ID_ENV} to an AWS KMS key id, or set {MASTER_KEY_ENV} to the base64 "
            f"encoding of 32 random bytes (keep it in a secret store), or set {ALLOW_LOCAL_MASTER_KEY_ENV}=true "
            f"to generate a local master-key file (demo only)."
        )
        raise MasterKeyError(msg)
    return _generate_local_master_key(keys_folder)


def provider_for_record(keys_folder: Path, record: KekRecord) -> MasterKeyProvider:
    """Return the provider that can unwrap the KEK described by `record`."""
    name = record.get("provider")
    if name == AWS_KMS:
        return AwsKmsMasterKey(str(record.get("key_arn")), dedicated=bool(record.get("dedicated_cmk")))

    if name == LOCAL_MASTER_KEY:
        local = load_local_master_key(keys_folder)
        if local is None:
            msg = (
                f"No master key: this keyring was sealed with a master key; set {MASTER_KEY_ENV} to it "
                f"(the base64 encoding of 32 bytes)."
            )
            raise MasterKeyError(msg)
        return local

    msg = f"Unknown master-key provider {name!r} in the keyring; expected {AWS_KMS!r} or {LOCAL_MASTER_KEY!r}."
    raise MasterKeyError(msg)


def load_local_master_key(keys_folder: Path) -> LocalMasterKey | None:
    """Return the master key from `SPENDLAKE_MASTER_KEY`, else from the local file, else None."""
    encoded = os.environ.get(MASTER_KEY_ENV)
    if encoded:
        source = f"the environment variable {MASTER_KEY_ENV}"
        return LocalMasterKey(_decode_master_key(encoded, source=source), source=source, from_file=False)

    path = keys_folder / MASTER_KEY_FILE
    if not path.exists():
        return None
    source = f"the file {path}"
    return LocalMasterKey(_decode_master_key(path.read_text(), source=source), source=source, from_file=True)


def schedule_cmk_deletion(key_arn: str, pending_window_days: int = KMS_DELETION_WINDOW_DAYS) -> str:
    """Schedule the deletion of a KMS key and return the deletion date AWS reports (empty when absent)."""
    # The client is made in the ARN's region, where the bare key id names the same key. moto 5.2.6
    # resolves only bare ids in ScheduleKeyDeletion (HTTP 500 for an ARN); AWS accepts both.
    key_id = key_arn.rsplit("/", 1)[-1] if key_arn.startswith("arn:") else key_arn
    response = _call_kms(
        "ScheduleKeyDeletion",
        key_arn,
        lambda client: client.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=pending_window_days),
    )
    deletion_date = response.get("DeletionDate")
    return deletion_date.isoformat() if deletion_date is not None else ""


def _generate_local_master_key(keys_folder: Path) -> LocalMasterKey:
    path = keys_folder / MASTER_KEY_FILE
    generated = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(generated + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    source = f"the file {path}"
    return LocalMasterKey(_decode_master_key(generated, source=source), source=source, from_file=True)


def _decode_master_key(encoded: str, *, source: str) -> bytes:
    text = encoded.strip()
    altchars = b"-_" if ("-" in text or "_" in text) else None  # accept the URL-safe alphabet too
    try:
        key = base64.b64decode(text, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        msg = f"Invalid master key in {source}: expected the base64 encoding of exactly {KEY_BYTES} bytes."
        raise MasterKeyError(msg)
    return key


def _kek_associated_data(tenant: str, generation: int) -> bytes:
    return f"spendlake-keyring-v2|{tenant}|tenant-kek|{generation}".encode()


def _kms_client(region_hint: str | None) -> BaseClient:
    """Build a KMS client from the standard AWS settings, with bounded timeouts and retries."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or region_hint
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    # A new session per client reads the current environment; boto3's default session caches credentials.
    return boto3.session.Session().client("kms", region_name=region, endpoint_url=endpoint, config=config)


def _region_of(key_id: str) -> str | None:
    """Return the region of a key ARN (`arn:aws:kms:<region>:…`), or None for a key id or alias."""
    parts = key_id.split(":")
    return parts[3] if key_id.startswith("arn:") and len(parts) > 3 and parts[3] else None


def _call_kms(
    operation: str,
    key_id: str,
    call: t.Callable[[BaseClient], dict[str, t.Any]],
    *,
    tenant: str | None = None,
) -> dict[str, t.Any]:
    """Run one KMS call, turning botocore errors into `MasterKeyError` messages that name the fix."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError

    try:
        return call(_kms_client(_region_of(key_id)))
    except (NoCredentialsError, PartialCredentialsError):
        msg = (
            f"AWS KMS {operation} for key {key_id} failed: no AWS credentials found. Set AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role."
        )
        raise MasterKeyError(msg) from None
    except NoRegionError:
        msg = f"AWS KMS {operation} for key {key_id} failed: no AWS region set. Set AWS_REGION or use the key's ARN."
        raise MasterKeyError(msg) from None
    except ClientError as error:
        raise _client_error(operation, key_id, error, tenant) from None
    except BotoCoreError as error:
        msg = (
            f"AWS KMS {operation} for key {key_id} failed ({type(error).__name__}). Check the network path to KMS "
            f"and AWS_ENDPOINT_URL, then retry."
        )
        raise MasterKeyError(msg) from None


def _client_error(operation: str, key_id: str, error: t.Any, tenant: str | None) -> MasterKeyError:
    code = str(error.response.get("Error", {}).get("Code", "Unknown"))
    prefix = f"AWS KMS {operation} for key {key_id} failed ({code})"
    fixes = {
        "NotFoundException": "the key does not exist in this account and region. Check SPENDLAKE_KMS_KEY_ID and AWS_REGION.",
        "InvalidCiphertextException": (
            f"the encryption context does not match the one the KEK was made with: the keyring does not belong to "
            f"tenant {tenant!r} or it was edited. Restore the tenant's own keyring."
        ),
        "IncorrectKeyException": "the KEK was wrapped by another KMS key; restore the keyring that names its key.",
        "AccessDeniedException": "the AWS identity in use may not use this key. Grant kms:GenerateDataKey and kms:Decrypt on it.",
        "DisabledException": "the key is disabled. Enable it, or restore access to the key the keyring names.",
        "KMSInvalidStateException": "the key is pending deletion or not usable. Cancel the deletion if the data is still needed.",
        "UnrecognizedClientException": "the AWS credentials are not valid for this endpoint. Check AWS_ACCESS_KEY_ID.",
        "InvalidSignatureException": "the AWS secret access key does not match the access key id.",
    }
    fix = fixes.get(code, "see the AWS KMS documentation for this error code, then retry.")
    return MasterKeyError(f"{prefix}: {fix}")
