"""Parquet files of the lake: encrypted footer, per-file data keys, a separate key for pseudonymised columns."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.keys import load_tenant_keys
from targets.warehouse.errors import WarehouseKeyError
from targets.warehouse.parquet_crypto import ParquetCrypto
from targets.warehouse.parquet_store import read_parquet_file
from .support import (
    TENANT,
    files_under,
    query,
    record_message,
    run_target,
    schema_message,
    tenant_folder,
)

PLAIN_MARKER = "plain-canary-51d0e2"
PII_MARKER = "pii-canary-93ab47"

PROPERTIES = {
    "id": {"type": "integer"},
    "campaign": {"type": "string", "x-pii": "none"},
    "email_hash": {"type": ["null", "string"], "x-pii": "email", "x-pii-applied": "keep"},  # free-form test text, so not marked hmac
    "phone_sealed": {"type": ["null", "string"], "x-pii": "phone", "x-pii-applied": "keep"},
    "country": {"type": ["null", "string"], "x-pii": "none", "x-pii-applied": "keep"},
    "spend": {"type": "number"},
}
PII_COLUMNS = ["email_hash", "phone_sealed"]
NON_PII_COLUMNS = ["id", "campaign", "country", "spend", "_loaded_at"]


def _record(number: int) -> dict:
    return record_message(
        "leads",
        {
            "id": number,
            "campaign": f"{PLAIN_MARKER}-{number}",
            "email_hash": f"{PII_MARKER}-{number}",
            "phone_sealed": f"{PII_MARKER}-phone-{number}",
            "country": "DE",
            "spend": number * 1.5,
        },
    )


@pytest.fixture
def lake(home: Path) -> list[Path]:
    """Two batches, so two Parquet files, with markers in pseudonymised and plain columns."""
    run_target(home, [schema_message("leads", PROPERTIES), *(_record(n) for n in range(1, 5))], batch_size_rows=2)
    return files_under(tenant_folder(home) / "parquet")


def _only_footer_key(home: Path) -> ParquetCrypto:
    keys = load_tenant_keys(home, TENANT)

    def footer_only(key_id: str) -> bytes:
        if key_id != "footer":
            raise PermissionError(f"this reader holds no {key_id!r} master key")
        return keys.parquet_master_key(key_id)

    return ParquetCrypto(footer_only)


def test_files_use_encrypted_footer_magic(lake: list[Path]) -> None:
    assert len(lake) == 2
    for path in lake:
        data = path.read_bytes()
        assert data[:4] == b"PARE"
        assert data[-4:] == b"PARE"


def test_file_unreadable_without_keys(lake: list[Path]) -> None:
    with pytest.raises(OSError, match="no decryption found in reader's properties"):
        pq.read_table(lake[0])


def test_file_unreadable_with_other_tenant_keys(home: Path, lake: list[Path]) -> None:
    other_keys = load_tenant_keys(home, "other-tenant")

    with pytest.raises(WarehouseKeyError, match="does not unwrap the file's key"):
        read_parquet_file(lake[0], other_keys)


def test_file_reads_back_with_keys(home: Path, lake: list[Path]) -> None:
    keys = load_tenant_keys(home, TENANT)

    tables = [read_parquet_file(path, keys) for path in lake]

    rows = sorted((row for table in tables for row in table.to_pylist()), key=lambda row: row["id"])
    assert [row["id"] for row in rows] == [1, 2, 3, 4]
    assert rows[0]["email_hash"] == f"{PII_MARKER}-1"
    assert rows[3]["campaign"] == f"{PLAIN_MARKER}-4"
    assert rows[2]["spend"] == 4.5
    assert tables[0].schema.field("_loaded_at").type == pa.timestamp("us", tz="UTC")
    assert tables[0].schema.field("id").type == pa.int64()


def test_parquet_column_encodings(home: Path, lake: list[Path]) -> None:
    decryption = ParquetCrypto(load_tenant_keys(home, TENANT).parquet_master_key).decryption_properties()
    metadata = pq.ParquetFile(lake[0], decryption_properties=decryption).metadata
    chunks = {metadata.schema.column(index).name: metadata.row_group(0).column(index) for index in range(metadata.num_columns)}

    assert not any("DICTIONARY" in encoding for encoding in chunks["id"].encodings)
    assert any("DICTIONARY" in encoding for encoding in chunks["campaign"].encodings)
    assert {name for name, chunk in chunks.items() if chunk.is_stats_set} == set(NON_PII_COLUMNS)
    assert chunks["id"].statistics.min == 1
    assert chunks["id"].statistics.max == 2


def test_footer_key_reads_only_plain_columns(home: Path, lake: list[Path]) -> None:
    crypto = _only_footer_key(home)

    plain = pq.read_table(lake[0], columns=NON_PII_COLUMNS, decryption_properties=crypto.decryption_properties())
    assert plain.num_rows == 2
    assert plain.column("country").to_pylist() == ["DE", "DE"]

    for column in PII_COLUMNS:
        with pytest.raises(PermissionError, match="holds no 'pii' master key"):
            pq.read_table(lake[0], columns=[column], decryption_properties=crypto.decryption_properties())


def _footer_data_key(path: Path, footer_master_key: bytes) -> bytes:
    """Unwrap the footer's data key from the key material pyarrow stores in the file tail."""
    material = re.findall(rb'\{"keyMaterialType":[^}]*\}', path.read_bytes())
    assert len(material) == 1
    metadata = json.loads(material[0])
    assert metadata["masterKeyID"] == "footer"
    assert metadata["doubleWrapping"] is True

    key_encryption_key = keywrap.aes_key_unwrap(footer_master_key, base64.b64decode(metadata["wrappedKEK"]))
    wrapped = base64.b64decode(metadata["wrappedDEK"])
    associated_data = base64.b64decode(metadata["keyEncryptionKeyID"])
    return AESGCM(key_encryption_key).decrypt(wrapped[:12], wrapped[12:], associated_data)


def test_each_file_has_its_own_data_key(home: Path, lake: list[Path]) -> None:
    footer_master_key = load_tenant_keys(home, TENANT).parquet_master_key("footer")

    data_keys = [_footer_data_key(path, footer_master_key) for path in lake]

    assert all(len(key) == 32 for key in data_keys)
    assert data_keys[0] != data_keys[1]


def test_no_plaintext_marker_in_any_file(home: Path, lake: list[Path]) -> None:
    stored = query(home, "SELECT campaign, email_hash FROM stripe.leads WHERE id = 1")
    assert stored == [(f"{PLAIN_MARKER}-1", f"{PII_MARKER}-1")]
    all_files = files_under(home)
    assert any(path.suffix == ".duckdb" for path in all_files)
    assert len(lake) == 2

    for path in all_files:
        data = path.read_bytes()
        for marker in (PLAIN_MARKER, PII_MARKER):
            assert marker.encode() not in data, f"{marker} found in {path.relative_to(home)}"
            assert marker.encode("utf-16-le") not in data, f"{marker} (UTF-16) found in {path.relative_to(home)}"
