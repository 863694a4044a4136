"""Parquet modular encryption with keys wrapped under a tenant's Parquet master keys.

pyarrow generates a fresh data key (DEK) for the footer and for each column of
every file. With double wrapping it wraps each DEK with a key-encryption key
(KEK) it generates and caches, and calls `KeyWrapKmsClient` only to wrap or
unwrap those KEKs. The client uses RFC 3394 AES key wrap under the tenant's
master key `footer` or `pii`. Columns the mapper pseudonymised get DEKs under
`pii`, and every other column and the footer get DEKs under `footer`. So a
reader with only the `footer` master key reads every column except the
pseudonymised ones.

Master key ids carry the keyring generation after a key rotation (`footer.g2`,
`pii.g2`); generation 1 uses the plain ids. Each file stores the ids it was
written with, so a reader resolves any generation the keyring still holds.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable, Sequence

import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.hazmat.primitives import keywrap

from targets.warehouse.errors import WarehouseKeyError

FOOTER_KEY_ID = "footer"
PII_KEY_ID = "pii"
KMS_INSTANCE_ID = "spendlake-tenant-keyring"
KEK_CACHE_LIFETIME = datetime.timedelta(minutes=10)

MasterKeyLookup = Callable[[str], bytes]
"""Returns the 32-byte master key for an id such as `footer` or `pii.g2` (for example `TenantKeys.parquet_master_key`)."""


class KeyWrapKmsClient(pe.KmsClient):
    """KMS client for pyarrow that wraps keys locally with RFC 3394 AES key wrap."""

    def __init__(self, master_key: MasterKeyLookup) -> None:
        super().__init__()
        self._master_key = master_key

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Wrap `key_bytes` under the master key `master_key_identifier`; return it as base64 text."""
        wrapped = keywrap.aes_key_wrap(self._master_key(master_key_identifier), key_bytes)
        return base64.b64encode(wrapped).decode("ascii")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        """Unwrap a key written by `wrap_key`, raising `WarehouseKeyError` when the master key does not fit."""
        master_key = self._master_key(master_key_identifier)
        try:
            return keywrap.aes_key_unwrap(master_key, base64.b64decode(wrapped_key, validate=True))
        except (keywrap.InvalidUnwrap, binascii.Error, ValueError):
            msg = (
                f"The Parquet master key {master_key_identifier!r} of this keyring does not unwrap the file's "
                f"key: the file was written under another tenant's or another keyring's keys."
            )
            raise WarehouseKeyError(msg) from None


class ParquetCrypto:
    """Encryption and decryption properties for one tenant's Parquet files.

    Each instance owns its `CryptoFactory`, so cached KEKs never cross tenants.
    New files are written under the master key ids `footer_key_id` and
    `pii_key_id` (the keyring's current generation).
    """

    def __init__(
        self,
        master_key: MasterKeyLookup,
        *,
        footer_key_id: str = FOOTER_KEY_ID,
        pii_key_id: str = PII_KEY_ID,
    ) -> None:
        self._factory = pe.CryptoFactory(lambda _config: KeyWrapKmsClient(master_key))
        self._kms_config = pe.KmsConnectionConfig(kms_instance_id=KMS_INSTANCE_ID)
        self.footer_key_id = footer_key_id
        self.pii_key_id = pii_key_id

    def encryption_properties(
        self,
        column_names: Sequence[str],
        pii_columns: Sequence[str],
    ) -> pq.FileEncryptionProperties:
        """Return new `FileEncryptionProperties` (new DEKs) for one file; never reuse them for a second file."""
        pii_set = set(pii_columns)
        pii = [name for name in column_names if name in pii_set]
        other = [name for name in column_names if name not in pii_set]
        column_keys = {key_id: names for key_id, names in ((self.footer_key_id, other), (self.pii_key_id, pii)) if names}
        config = pe.EncryptionConfiguration(
            footer_key=self.footer_key_id,
            column_keys=column_keys,
            encryption_algorithm="AES_GCM_V1",
            plaintext_footer=False,
            double_wrapping=True,
            cache_lifetime=KEK_CACHE_LIFETIME,
            internal_key_material=True,
            data_key_length_bits=256,
        )
        return self._factory.file_encryption_properties(self._kms_config, config)

    def decryption_properties(self) -> pq.FileDecryptionProperties:
        """Return `FileDecryptionProperties` that unwrap keys through this tenant's master keys."""
        config = pe.DecryptionConfiguration(cache_lifetime=KEK_CACHE_LIFETIME)
        return self._factory.file_decryption_properties(self._kms_config, config)
