"""The S3 lake store against moto's server on 127.0.0.1: SSE-KMS checks, encrypted Parquet, errors, a target run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.client import BaseClient

from privacy.keys import load_tenant_keys
from targets.warehouse.errors import LakeLocationError, WarehouseError
from targets.warehouse.lake import LocalLake
from targets.warehouse.lake_location import open_lake, parse_s3_url
from targets.warehouse.lake_s3 import S3Lake
from targets.warehouse.parquet_crypto import ParquetCrypto
from tests.moto_server import REGION, aws_env, moto_endpoint, running_moto_server  # noqa: F401 - fixtures
from .support import TENANT, query, record_message, schema_message, singer_text, state_message, target_config

MARKER = "lake-s3-canary-5d21b7"
PARQUET_PATH = "parquet/stripe/charges/part-20261205T080000-0001.parquet"
EXECUTABLE = Path(sys.executable).parent / "target-warehouse"


# ---- helpers -------------------------------------------------------------------------------------------------------


def s3_client() -> BaseClient:
    return boto3.client("s3")


def create_kms_key() -> str:
    return boto3.client("kms").create_key(Description="lake test key")["KeyMetadata"]["Arn"]


def create_bucket(algorithm: str | None, kms_key_arn: str | None = None) -> str:
    """Create a bucket with a unique name and the given default encryption (None: no default encryption)."""
    bucket = f"lake-{uuid.uuid4().hex[:20]}"
    client = s3_client()
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    if algorithm is not None:
        default: dict[str, str] = {"SSEAlgorithm": algorithm}
        if kms_key_arn is not None:
            default["KMSMasterKeyID"] = kms_key_arn
        client.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]},
        )
    return bucket


def bucket_keys(bucket: str) -> list[str]:
    response = s3_client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in response.get("Contents", []))


def object_bytes(bucket: str, key: str) -> bytes:
    return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()


def tenant_crypto(home: Path) -> ParquetCrypto:
    keys = load_tenant_keys(home, TENANT)
    return ParquetCrypto(
        keys.parquet_master_key,
        footer_key_id=keys.parquet_footer_key_id,
        pii_key_id=keys.parquet_pii_key_id,
    )


def sample_table() -> pa.Table:
    return pa.table({"id": pa.array([1, 2], pa.int64()), "email_hash": [f"{MARKER}-1", f"{MARKER}-2"]})


def publish_encrypted(lake: S3Lake, relative: str, table: pa.Table, crypto: ParquetCrypto) -> None:
    properties = crypto.encryption_properties(table.column_names, ["email_hash"])
    # No compression, so only the Parquet encryption can hide the marker in the bytes.
    lake.publish(
        relative,
        lambda handle: pq.write_table(table, handle, encryption_properties=properties, compression="none"),
    )


def closed_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def kms_bucket(aws_env: str) -> str:
    """A bucket whose default encryption is SSE-KMS under a new KMS key."""
    return create_bucket("aws:kms", create_kms_key())


@pytest.fixture
def lake(kms_bucket: str, tmp_path: Path) -> S3Lake:
    opened = open_lake(tmp_path / "unused", TENANT, f"s3://{kms_bucket}/lake")
    assert isinstance(opened, S3Lake)
    return opened


# ---- opening the lake ----------------------------------------------------------------------------------------------


def test_unset_url_gives_local_lake(tmp_path: Path) -> None:
    for lake_url in (None, ""):
        lake = open_lake(tmp_path / "tenant", TENANT, lake_url)
        assert isinstance(lake, LocalLake)
        assert lake.root == tmp_path / "tenant"


def test_kms_bucket_opens(kms_bucket: str, tmp_path: Path) -> None:
    lake = open_lake(tmp_path, TENANT, f"s3://{kms_bucket}/lake/")

    assert isinstance(lake, S3Lake)
    assert lake.describe() == f"s3://{kms_bucket}/lake/{TENANT}"
    assert lake.describe(PARQUET_PATH) == f"s3://{kms_bucket}/lake/{TENANT}/{PARQUET_PATH}"


def test_dsse_kms_bucket_opens(aws_env: str, tmp_path: Path) -> None:
    bucket = create_bucket("aws:kms:dsse", create_kms_key())

    assert isinstance(open_lake(tmp_path, TENANT, f"s3://{bucket}"), S3Lake)


@pytest.mark.parametrize(("algorithm", "found"), [(None, "found: none"), ("AES256", "found: AES256")])
def test_bucket_without_sse_kms_rejected(aws_env: str, tmp_path: Path, algorithm: str | None, found: str) -> None:
    bucket = create_bucket(algorithm)

    with pytest.raises(LakeLocationError) as caught:
        open_lake(tmp_path, TENANT, f"s3://{bucket}/lake")

    message = str(caught.value)
    assert f"The S3 bucket '{bucket}' does not use SSE-KMS as its default encryption" in message
    assert found in message
    assert "Set the bucket's default encryption to SSE-KMS (aws:kms)" in message
    assert isinstance(caught.value, WarehouseError)


def test_unknown_bucket_rejected(aws_env: str, tmp_path: Path) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"

    with pytest.raises(LakeLocationError) as caught:
        open_lake(tmp_path, TENANT, f"s3://{bucket}/lake")

    message = str(caught.value)
    assert f"the bucket '{bucket}' does not exist" in message
    assert "error code 404" in message
    assert aws_env in message
    assert "correct the bucket in `lake_url`" in message


def test_endpoint_argument_overrides_env(kms_bucket: str, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_local_port()}"

    with pytest.raises(LakeLocationError) as caught:
        open_lake(tmp_path, TENANT, f"s3://{kms_bucket}", endpoint_url=endpoint)

    message = str(caught.value)
    assert f"The S3 endpoint {endpoint} could not be reached" in message
    assert "EndpointConnectionError" in message
    assert "Check `s3_endpoint_url` (or AWS_ENDPOINT_URL)" in message


def test_missing_credentials_rejected(kms_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(LakeLocationError) as caught:
        open_lake(tmp_path, TENANT, f"s3://{kms_bucket}")

    message = str(caught.value)
    assert f"No complete AWS credentials were found to check s3://{kms_bucket}" in message
    assert "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message


@pytest.fixture(scope="module")
def moto_endpoint_with_auth() -> Iterator[str]:
    """A second moto server that checks IAM permissions after the first four requests (the test's set-up)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "4")
        with running_moto_server() as url:
            yield url


def test_access_denied_rejected(
    moto_endpoint_with_auth: str, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint_with_auth)
    iam = boto3.client("iam", endpoint_url=moto_endpoint_with_auth)
    bucket = f"denied-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]},
    )
    iam.create_user(UserName="lake-reader")
    access_key = iam.create_access_key(UserName="lake-reader")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", access_key["SecretAccessKey"])

    with pytest.raises(LakeLocationError) as caught:
        open_lake(tmp_path, TENANT, f"s3://{bucket}/lake", endpoint_url=moto_endpoint_with_auth)

    message = str(caught.value)
    assert f"S3 request to check s3://{bucket} at {moto_endpoint_with_auth} failed with error code 403" in message
    assert "access denied" in message
    assert f"s3:GetEncryptionConfiguration, s3:PutObject, s3:GetObject and s3:DeleteObject on bucket '{bucket}'" in message
    assert access_key["SecretAccessKey"] not in message


@pytest.mark.parametrize(
    ("lake_url", "problem"),
    [
        ("gs://bucket/lake", "it has 'gs', and only s3:// is supported"),
        ("/data/lake", "it has no scheme, and only s3:// is supported"),
        ("s3://", "it names no bucket"),
        ("s3:///lake", "it names no bucket"),
        ("s3://Bad_Bucket/lake", "the bucket name 'Bad_Bucket' is not valid"),
        ("s3://ab/lake", "the bucket name 'ab' is not valid"),
        ("s3://bucket..name/lake", "the bucket name 'bucket..name' is not valid"),
        ("s3://bucket/lake?version=2", "it has a query or fragment"),
        ("s3://bucket/lake#top", "it has a query or fragment"),
        ("s3://bucket/a//b", "its prefix has an empty, '.' or '..' part"),
        ("s3://bucket/lake/../other", "its prefix has an empty, '.' or '..' part"),
        ("s3://bucket:9000/lake", "it contains a user, password or port"),
        ("s3://[::1/lake", "it is not a valid URL"),
    ],
)
def test_malformed_url_rejected(tmp_path: Path, lake_url: str, problem: str) -> None:
    with pytest.raises(LakeLocationError) as caught:
        open_lake(tmp_path, TENANT, lake_url)

    message = str(caught.value)
    assert message.startswith("Invalid `lake_url`")
    assert problem in message
    assert "s3://bucket or s3://bucket/prefix" in message


def test_url_with_credentials_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(LakeLocationError) as caught:
        open_lake(tmp_path, TENANT, "s3://AKIDEXAMPLE:hunter2-secret@bucket/lake")

    message = str(caught.value)
    assert "it contains a user, password or port" in message
    assert "hunter2-secret" not in message
    assert "AKIDEXAMPLE" not in message


def test_url_prefix_forms() -> None:
    assert parse_s3_url("s3://my-bucket").prefix == ""
    assert parse_s3_url("s3://my-bucket/").prefix == ""
    assert parse_s3_url("s3://my-bucket/a/b/").prefix == "a/b"
    assert parse_s3_url("s3://my.bucket.eu/lake").bucket == "my.bucket.eu"


# ---- publishing and reading ----------------------------------------------------------------------------------------


def test_publish_round_trip_encrypted(lake: S3Lake, kms_bucket: str, home: Path) -> None:
    crypto = tenant_crypto(home)
    table = sample_table()

    publish_encrypted(lake, PARQUET_PATH, table, crypto)

    key = f"lake/{TENANT}/{PARQUET_PATH}"
    assert bucket_keys(kms_bucket) == [key]
    assert lake.files("parquet") == [PARQUET_PATH]
    assert lake.files("parquet/stripe/charges") == [PARQUET_PATH]
    read_back = pq.read_table(lake.open_input(PARQUET_PATH), decryption_properties=crypto.decryption_properties())
    assert read_back.select(["id", "email_hash"]).equals(table)


def test_published_object_uses_sse_kms(lake: S3Lake, kms_bucket: str, home: Path) -> None:
    publish_encrypted(lake, PARQUET_PATH, sample_table(), tenant_crypto(home))

    head = s3_client().head_object(Bucket=kms_bucket, Key=f"lake/{TENANT}/{PARQUET_PATH}")
    assert head["ServerSideEncryption"] == "aws:kms"
    bucket_default = s3_client().get_bucket_encryption(Bucket=kms_bucket)
    default_key = bucket_default["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert head["SSEKMSKeyId"] == default_key["KMSMasterKeyID"]


def test_publish_uses_configured_kms_key(kms_bucket: str, tmp_path: Path, home: Path) -> None:
    other_key = create_kms_key()
    lake = open_lake(tmp_path, TENANT, f"s3://{kms_bucket}/lake", kms_key_id=other_key)
    assert isinstance(lake, S3Lake)

    publish_encrypted(lake, PARQUET_PATH, sample_table(), tenant_crypto(home))

    head = s3_client().head_object(Bucket=kms_bucket, Key=f"lake/{TENANT}/{PARQUET_PATH}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == other_key


def test_object_bytes_hide_plaintext(lake: S3Lake, kms_bucket: str, home: Path) -> None:
    table = sample_table()
    publish_encrypted(lake, PARQUET_PATH, table, tenant_crypto(home))
    plain_path = "parquet/stripe/charges/part-20261205T080000-plain.parquet"
    lake.publish(plain_path, lambda handle: pq.write_table(table, handle, compression="none"))

    encrypted_bytes = object_bytes(kms_bucket, f"lake/{TENANT}/{PARQUET_PATH}")
    plain_bytes = object_bytes(kms_bucket, f"lake/{TENANT}/{plain_path}")
    assert MARKER.encode() in plain_bytes
    assert MARKER.encode() not in encrypted_bytes
    assert b"email_hash" not in encrypted_bytes


def test_empty_prefix_keys_start_at_tenant(aws_env: str, tmp_path: Path) -> None:
    bucket = create_bucket("aws:kms", create_kms_key())
    lake = open_lake(tmp_path, TENANT, f"s3://{bucket}")
    assert isinstance(lake, S3Lake)

    lake.publish(PARQUET_PATH, lambda handle: handle.write(b"PAR1"))

    assert bucket_keys(bucket) == [f"{TENANT}/{PARQUET_PATH}"]
    assert lake.describe(PARQUET_PATH) == f"s3://{bucket}/{TENANT}/{PARQUET_PATH}"
    assert lake.files("parquet") == [PARQUET_PATH]


def test_files_lists_own_parquet_sorted(lake: S3Lake, kms_bucket: str) -> None:
    client = s3_client()
    other_objects = [
        f"lake/{TENANT}/parquet/stripe/charges/notes.txt",
        f"lake/{TENANT}/parquet/stripe/charges/.part-hidden.parquet",
        f"lake/{TENANT}-eu/parquet/stripe/charges/part-other-tenant.parquet",
        f"lake/other/parquet/stripe/charges/part-other.parquet",
        f"{TENANT}/parquet/stripe/charges/part-outside-prefix.parquet",
    ]
    for key in other_objects:
        client.put_object(Bucket=kms_bucket, Key=key, Body=b"x", ServerSideEncryption="aws:kms")
    published = [
        "parquet/stripe/refunds/part-2.parquet",
        "parquet/stripe/charges/part-3.parquet",
        "parquet/stripe/charges/part-1.parquet",
        "parquet/magento/orders/part-1.parquet",
    ]
    for relative in published:
        lake.publish(relative, lambda handle: handle.write(b"PAR1"))

    assert lake.files("parquet") == sorted(published)
    assert lake.files("parquet/stripe/charges") == [
        "parquet/stripe/charges/part-1.parquet",
        "parquet/stripe/charges/part-3.parquet",
    ]
    assert lake.files("parquet/stripe/charg") == []
    assert lake.files("parquet/hubspot") == []


def test_remove_deletes_object(lake: S3Lake, kms_bucket: str) -> None:
    lake.publish(PARQUET_PATH, lambda handle: handle.write(b"PAR1"))
    kept = "parquet/stripe/charges/part-kept.parquet"
    lake.publish(kept, lambda handle: handle.write(b"PAR1"))

    lake.remove(PARQUET_PATH)
    lake.remove(PARQUET_PATH)

    assert bucket_keys(kms_bucket) == [f"lake/{TENANT}/{kept}"]
    assert lake.files("parquet") == [kept]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lake.open_input(PARQUET_PATH)


def test_invalid_lake_path_rejected(lake: S3Lake) -> None:
    for relative in ("parquet/../other/x.parquet", "parquet//x.parquet", "./x.parquet"):
        with pytest.raises(ValueError, match="Invalid lake path"):
            lake.publish(relative, lambda handle: handle.write(b"PAR1"))


def test_failed_writer_leaves_no_object(lake: S3Lake, kms_bucket: str) -> None:
    def failing_writer(handle: object) -> None:
        raise OSError("disk full while encoding")

    with pytest.raises(OSError, match="disk full"):
        lake.publish(PARQUET_PATH, failing_writer)

    assert bucket_keys(kms_bucket) == []


# ---- the target writing to S3 --------------------------------------------------------------------------------------


def test_target_writes_parquet_to_s3(kms_bucket: str, aws_env: str, home: Path, tmp_path: Path) -> None:
    properties = {"id": {"type": "integer"}, "email_hash": {"type": ["null", "string"]}}
    messages = [
        schema_message("charges", properties),
        record_message("charges", {"id": 1, "email_hash": f"{MARKER}-1"}),
        record_message("charges", {"id": 2, "email_hash": f"{MARKER}-2"}),
        record_message("charges", {"id": 3, "email_hash": f"{MARKER}-3"}),
        state_message({"bookmarks": {"charges": {"replication_key_value": "2024-01-01"}}}),
    ]
    config = target_config(home, lake_url=f"s3://{kms_bucket}/lake", s3_endpoint_url=aws_env)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    input_path = tmp_path / "input.jsonl"
    input_path.write_text(singer_text(messages, home))
    # The environment points at a closed local port, so the target reaches moto only through `s3_endpoint_url`.
    target_env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_local_port()}"}

    result = subprocess.run(
        [str(EXECUTABLE), "--config", str(config_path), "--input", str(input_path)],
        capture_output=True,
        text=True,
        env=target_env,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    keys = bucket_keys(kms_bucket)
    stream_prefix = f"lake/{TENANT}/parquet/stripe/charges/"
    assert keys, "the target wrote no object to the bucket"
    assert all(key.startswith(stream_prefix) and key.endswith(".parquet") for key in keys)
    ledger = query(home, "SELECT parquet_file FROM _spendlake.loads WHERE source = 'stripe' AND stream = 'charges'")
    assert sorted(row[0] for row in ledger) == [key.removeprefix(f"lake/{TENANT}/") for key in keys]
    assert sorted(home.rglob("*.parquet*")) == []

    crypto = tenant_crypto(home)
    loaded_ids: list[int] = []
    for key in keys:
        source = pa.BufferReader(object_bytes(kms_bucket, key))
        table = pq.read_table(source, decryption_properties=crypto.decryption_properties())
        loaded_ids.extend(table.column("id").to_pylist())
        assert s3_client().head_object(Bucket=kms_bucket, Key=key)["ServerSideEncryption"] == "aws:kms"
    assert sorted(loaded_ids) == [1, 2, 3]
