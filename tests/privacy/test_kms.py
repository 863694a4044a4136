"""Tenant keyrings whose KEK is wrapped by AWS KMS, against moto's server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import boto3
import pytest

from privacy.key_errors import MasterKeyError
from privacy.keys import KeyringError, load_tenant_keys
from privacy.rotation import rotate_tenant
from privacy.shredding import destroy_tenant
from tests.moto_server import aws_env, moto_endpoint  # noqa: F401 - pytest fixtures

from .lake_support import duckdb_rows, lead, load_leads, parquet_files, parquet_rows

pytestmark = pytest.mark.usefixtures("aws_env")


def _kms(endpoint: str):
    return boto3.client("kms", endpoint_url=endpoint)


@pytest.fixture
def kms_key(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811 - the imported fixture
    """A new KMS key with an alias, selected by SPENDLAKE_KMS_KEY_ID; no local master key is set."""
    client = _kms(aws_env)
    arn = client.create_key(Description="spendlake test tenant key")["KeyMetadata"]["Arn"]
    alias = f"alias/spendlake-test-{uuid.uuid4().hex[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=arn)
    monkeypatch.setenv("SPENDLAKE_KMS_KEY_ID", alias)
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    monkeypatch.delenv("SPENDLAKE_KMS_KEY_DEDICATED", raising=False)
    return arn


def _keyring(home: Path, tenant: str) -> dict:
    return json.loads((home / "keys" / f"{tenant}.json").read_text())


def test_keyring_created_and_reopened_through_kms(spendlake_env: Path, kms_key: str) -> None:
    first = load_tenant_keys(spendlake_env, "acme")
    second = load_tenant_keys(spendlake_env, "acme")

    assert (second.hmac_key, second.field_key, second.duckdb_key) == (first.hmac_key, first.field_key, first.duckdb_key)
    record = _keyring(spendlake_env, "acme")["generations"][0]["kek"]
    assert record["provider"] == "aws-kms"
    assert record["key_arn"] == kms_key  # the ARN from the response, not the alias
    assert record["dedicated_cmk"] is False
    assert len(base64.b64decode(record["ciphertext_blob"])) > 32
    assert not (spendlake_env / "keys" / "master.key").exists()


def test_kek_unwraps_only_with_tenant_context(spendlake_env: Path, kms_key: str, aws_env: str) -> None:  # noqa: F811
    load_tenant_keys(spendlake_env, "acme")
    record = _keyring(spendlake_env, "acme")["generations"][0]["kek"]
    blob = base64.b64decode(record["ciphertext_blob"])
    client = _kms(aws_env)

    plain = client.decrypt(
        CiphertextBlob=blob,
        KeyId=kms_key,
        EncryptionContext={"spendlake:tenant": "acme", "spendlake:purpose": "tenant-kek"},
    )["Plaintext"]

    assert len(plain) == 32
    with pytest.raises(client.exceptions.InvalidCiphertextException):
        client.decrypt(CiphertextBlob=blob, KeyId=kms_key, EncryptionContext={"spendlake:tenant": "globex"})


def test_wrong_encryption_context_fails_clearly(spendlake_env: Path, kms_key: str) -> None:
    load_tenant_keys(spendlake_env, "acme")
    load_tenant_keys(spendlake_env, "globex")
    acme = _keyring(spendlake_env, "acme")
    globex_path = spendlake_env / "keys" / "globex.json"
    globex = json.loads(globex_path.read_text())
    globex["generations"][0]["kek"] = acme["generations"][0]["kek"]
    globex_path.write_text(json.dumps(globex))

    with pytest.raises(MasterKeyError, match=r"Decrypt for key .* failed \(InvalidCiphertextException\): the encryption context does not match") as raised:
        load_tenant_keys(spendlake_env, "globex")

    text = str(raised.value)
    assert "tenant 'globex'" in text
    assert acme["generations"][0]["kek"]["ciphertext_blob"] not in text


def test_missing_kms_key_named_in_error(spendlake_env: Path, kms_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDLAKE_KMS_KEY_ID", "alias/spendlake-no-such-key")

    with pytest.raises(MasterKeyError, match=r"GenerateDataKey for key alias/spendlake-no-such-key failed \(NotFoundException\): the key does not exist"):
        load_tenant_keys(spendlake_env, "acme")
    assert not (spendlake_env / "keys" / "acme.json").exists()


def test_missing_credentials_named_in_error(spendlake_env: Path, kms_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    load_tenant_keys(spendlake_env, "acme")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(KeyringError, match=r"AWS KMS Decrypt for key arn:aws:kms:.* failed: no AWS credentials found\. Set AWS_ACCESS_KEY_ID"):
        load_tenant_keys(spendlake_env, "acme")


def test_target_loads_and_reads_through_kms_keys(spendlake_env: Path, kms_key: str) -> None:
    load_leads(spendlake_env, "acme", range(1, 5))

    assert [row["id"] for row in parquet_rows(spendlake_env, "acme")] == [1, 2, 3, 4]
    assert parquet_rows(spendlake_env, "acme")[0] == lead(1)
    assert [row[0] for row in duckdb_rows(spendlake_env, "acme")] == [1, 2, 3, 4]
    assert len(parquet_files(spendlake_env, "acme")) == 2


def test_rotation_moves_master_key_keyring_to_kms(spendlake_env: Path, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    load_leads(spendlake_env, "acme", range(1, 5))
    before = (duckdb_rows(spendlake_env, "acme"), parquet_rows(spendlake_env, "acme"))
    arn = _kms(aws_env).create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setenv("SPENDLAKE_KMS_KEY_ID", arn)

    report = rotate_tenant(spendlake_env, "acme")
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY")

    assert report.retired_generations == [1]
    generations = _keyring(spendlake_env, "acme")["generations"]
    assert [(g["id"], g["kek"]["provider"]) for g in generations] == [(2, "aws-kms")]
    assert (duckdb_rows(spendlake_env, "acme"), parquet_rows(spendlake_env, "acme")) == before


def test_destroy_asks_kms_to_delete_dedicated_key(spendlake_env: Path, kms_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDLAKE_KMS_KEY_DEDICATED", "true")
    load_leads(spendlake_env, "acme", range(1, 3))
    assert _keyring(spendlake_env, "acme")["generations"][0]["kek"]["dedicated_cmk"] is True

    report = destroy_tenant(spendlake_env, "acme")

    assert report.keyring_deleted is True
    assert not (spendlake_env / "keys" / "acme.json").exists()
    assert report.warehouse_files_deleted == 2  # one Parquet file and the DuckDB database
    assert report.kms_keys_scheduled_for_deletion == [kms_key]
    assert report.problems == []


def test_destroy_schedules_deletion_of_dedicated_key(spendlake_env: Path, kms_key: str, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("SPENDLAKE_KMS_KEY_DEDICATED", "true")
    load_leads(spendlake_env, "acme", range(1, 3))

    report = destroy_tenant(spendlake_env, "acme")

    assert report.problems == []
    assert report.kms_keys_scheduled_for_deletion == [kms_key]
    assert _kms(aws_env).describe_key(KeyId=kms_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_destroy_keeps_shared_key(spendlake_env: Path, kms_key: str, aws_env: str) -> None:  # noqa: F811
    load_leads(spendlake_env, "acme", range(1, 3))
    load_tenant_keys(spendlake_env, "globex")

    report = destroy_tenant(spendlake_env, "acme")

    assert report.kms_keys_scheduled_for_deletion == []
    assert _kms(aws_env).describe_key(KeyId=kms_key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert load_tenant_keys(spendlake_env, "globex").generation == 1
