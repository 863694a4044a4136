"""The Parquet lake in an S3 bucket: `s3://bucket/prefix`, one folder per tenant.

The object key of a lake path R for tenant T is `<prefix>/<T>/<R>`, or `<T>/<R>`
when the prefix is empty. The bucket must have SSE-KMS as its default
encryption, and every object is also written with `aws:kms` explicitly, so S3
encrypts it at rest under KMS on top of the Parquet modular encryption.

botocore error messages can quote response bodies, so the errors raised here
carry only the error code, the operation, the bucket and the endpoint.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit, urlunsplit

import boto3
import pyarrow as pa
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from targets.warehouse.errors import LakeLocationError
from targets.warehouse.lake import PARQUET_SUFFIX, FileWriter

#: Default-encryption algorithms of a bucket that count as SSE-KMS (single-layer and dual-layer).
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
#: Server-side encryption requested for every object the lake writes.
OBJECT_ENCRYPTION = "aws:kms"
#: Seconds to wait for a TCP connection. botocore waits 60 s per attempt by default,
#: which hides a wrong endpoint for minutes.
CONNECT_TIMEOUT_SECONDS = 10

_BUCKET_MISSING_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})
_ACCESS_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"})
_BAD_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
_WRONG_REGION_CODES = frozenset(
    {"PermanentRedirect", "301", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
_NO_DEFAULT_ENCRYPTION_CODE = "ServerSideEncryptionConfigurationNotFoundError"
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

_ResponseT = t.TypeVar("_ResponseT")


def make_s3_client(endpoint_url: str | None = None) -> BaseClient:
    """Create an S3 client.

    Without `endpoint_url`, boto3 reads AWS_ENDPOINT_URL and its other settings from the environment.
    """
    config = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)
    except ValueError:
        msg = (
            "Invalid S3 endpoint in `s3_endpoint_url` or AWS_ENDPOINT_URL: "
            "use an http:// or https:// URL such as https://s3.eu-west-1.amazonaws.com."
        )
        raise LakeLocationError(msg) from None


class S3Lake:
    """The lake of one tenant under `s3://bucket/prefix/<tenant>/`.

    Use `S3Lake.open` to get an instance whose bucket was checked.
    `kms_key_id` selects the KMS key for new objects. Without it, S3 uses the
    bucket's default key.
    """

    def __init__(
        self,
        client: BaseClient,
        bucket: str,
        prefix: str,
        tenant: str,
        *,
        kms_key_id: str | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.tenant_prefix = f"{prefix.strip('/')}/{tenant}/" if prefix.strip("/") else f"{tenant}/"
        self.kms_key_id = kms_key_id or None

    @classmethod
    def open(
        cls,
        client: BaseClient,
        bucket: str,
        prefix: str,
        tenant: str,
        *,
        kms_key_id: str | None = None,
    ) -> S3Lake:
        """Return the lake after checking that the bucket exists and encrypts with SSE-KMS by default."""
        lake = cls(client, bucket, prefix, tenant, kms_key_id=kms_key_id)
        lake.check_bucket()
        return lake

    def check_bucket(self) -> None:
        """Raise `LakeLocationError` unless the bucket exists, is accessible and defaults to SSE-KMS."""
        where = f"s3://{self.bucket}"
        self._request("check", where, self.client.head_bucket, Bucket=self.bucket)

        algorithms = self._default_encryption_algorithms()
        if not any(algorithm in KMS_ALGORITHMS for algorithm in algorithms):
            found = ", ".join(algorithms) if algorithms else "none"
            msg = (
                f"The S3 bucket {self.bucket!r} does not use SSE-KMS as its default encryption (found: {found}). "
                f"Set the bucket's default encryption to SSE-KMS (aws:kms) with a KMS key, for example "
                f"`aws s3api put-bucket-encryption --bucket {self.bucket} --server-side-encryption-configuration "
                f'\'{{"Rules":[{{"ApplyServerSideEncryptionByDefault":{{"SSEAlgorithm":"aws:kms"}}}}]}}\'`.'
            )
            raise LakeLocationError(msg)

    def describe(self, relative: str = "") -> str:
        """Return the `s3://` URL of `relative`, or of the tenant's folder when `relative` is empty."""
        if not relative:
            return f"s3://{self.bucket}/{self.tenant_prefix.rstrip('/')}"
        return f"s3://{self.bucket}/{self._key(relative)}"

    def publish(self, relative: str, write: FileWriter) -> None:
        """Write the file into memory, then upload it in one PutObject encrypted with `aws:kms`.

        S3 shows an object only once its upload completed, so readers never
        see a partial file.

        NOTE: the whole file is held in memory, and one PutObject accepts at most 5 GB.
        """
        key = self._key(relative)
        sink = pa.BufferOutputStream()
        write(sink)
        body = sink.getvalue().to_pybytes()

        parameters: dict[str, t.Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ServerSideEncryption": OBJECT_ENCRYPTION,
        }
        if self.kms_key_id:
            parameters["SSEKMSKeyId"] = self.kms_key_id
        response = self._request("write", self.describe(relative), self.client.put_object, **parameters)

        applied = response.get("ServerSideEncryption")
        if applied not in KMS_ALGORITHMS:
            # Remove the object so that no file without KMS encryption stays in the lake.
            self.remove(relative)
            msg = (
                f"S3 stored {self.describe(relative)} with server-side encryption {applied or 'none'} "
                f"instead of aws:kms, so the file was removed. Check that the endpoint supports SSE-KMS "
                f"and that the bucket's default encryption is SSE-KMS."
            )
            raise LakeLocationError(msg)

    def files(self, folder: str) -> list[str]:
        """Return the `.parquet` objects under `folder` (recursively), sorted, as lake paths."""
        prefix = f"{self._key(folder)}/" if folder.strip("/") else self.tenant_prefix
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[str] = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(item["Key"] for item in page.get("Contents", ()))
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ParamValidationError):
                raise
            raise self._location_error(error, "list", self.describe(folder)) from None

        relative_paths = (key[len(self.tenant_prefix) :] for key in found)
        return sorted(path for path in relative_paths if _is_published_parquet(path))

    def open_input(self, relative: str) -> pa.NativeFile:
        """Download the whole object into memory and return a reader over it.

        Raises `FileNotFoundError` when the object does not exist, as a local lake does.
        """
        key = self._key(relative)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        except ClientError as error:
            if _error_code(error) in _MISSING_KEY_CODES:
                msg = f"The lake file {self.describe(relative)} does not exist."
                raise FileNotFoundError(msg) from None
            raise self._location_error(error, "read", self.describe(relative)) from None
        except BotoCoreError as error:
            if isinstance(error, ParamValidationError):
                raise
            raise self._location_error(error, "read", self.describe(relative)) from None
        return pa.BufferReader(data)

    def remove(self, relative: str) -> None:
        """Delete the object. S3 reports success for a key that does not exist.

        NOTE: in a bucket with versioning, S3 keeps the older versions of a deleted object.
        """
        key = self._key(relative)
        self._request("delete", self.describe(relative), self.client.delete_object, Bucket=self.bucket, Key=key)

    def _key(self, relative: str) -> str:
        parts = relative.strip("/").split("/")
        if any(part in ("", ".", "..") for part in parts):
            msg = f"Invalid lake path {relative!r}: use '/'-separated names without empty, '.' or '..' parts."
            raise ValueError(msg)
        return self.tenant_prefix + "/".join(parts)

    def _default_encryption_algorithms(self) -> list[str]:
        where = f"s3://{self.bucket}"
        try:
            response = self.client.get_bucket_encryption(Bucket=self.bucket)
        except ClientError as error:
            if _error_code(error) == _NO_DEFAULT_ENCRYPTION_CODE:
                return []
            raise self._location_error(error, "read the default encryption of", where) from None
        except BotoCoreError as error:
            raise self._location_error(error, "read the default encryption of", where) from None

        rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        return [str(rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")) for rule in rules]

    def _request(
        self, action: str, where: str, operation: t.Callable[..., _ResponseT], **parameters: t.Any
    ) -> _ResponseT:
        try:
            return operation(**parameters)
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ParamValidationError):
                raise
            raise self._location_error(error, action, where) from None

    def _location_error(self, error: ClientError | BotoCoreError, action: str, where: str) -> LakeLocationError:
        endpoint = _endpoint_for_messages(self.client)
        if isinstance(error, ClientError):
            return LakeLocationError(_client_error_message(error, action, where, self.bucket, endpoint))
        return LakeLocationError(_connection_error_message(error, action, where, endpoint))


def _is_published_parquet(relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return name.endswith(PARQUET_SUFFIX) and not name.startswith(".")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


def _client_error_message(error: ClientError, action: str, where: str, bucket: str, endpoint: str) -> str:
    code = _error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "unknown")
    failed = f"S3 request to {action} {where} at {endpoint} failed with error code {code} (HTTP {status})"

    if code in _BUCKET_MISSING_CODES:
        return f"{failed}: the bucket {bucket!r} does not exist. Create it, or correct the bucket in `lake_url`."
    if code in _ACCESS_DENIED_CODES:
        return (
            f"{failed}: access denied. Check that the AWS credentials are valid, and grant them s3:ListBucket, "
            f"s3:GetEncryptionConfiguration, s3:PutObject, s3:GetObject and s3:DeleteObject on bucket {bucket!r}, "
            f"and kms:GenerateDataKey and kms:Decrypt on its KMS key."
        )
    if code in _BAD_CREDENTIAL_CODES:
        return (
            f"{failed}: the AWS credentials were rejected. Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            f"(or AWS_PROFILE), and renew an expired session token."
        )
    if code in _WRONG_REGION_CODES:
        return f"{failed}: the bucket is in another region. Set AWS_REGION to the region of bucket {bucket!r}."
    if code.startswith("KMS."):
        return (
            f"{failed}: the KMS key was rejected. Check `s3_kms_key_id` or the bucket's default key, "
            f"that the key is enabled, and that these credentials may use it."
        )
    return f"{failed}. Check the bucket {bucket!r} and the credentials used for it."


def _connection_error_message(error: BotoCoreError, action: str, where: str, endpoint: str) -> str:
    kind = type(error).__name__
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return (
            f"No complete AWS credentials were found to {action} {where} ({kind}). Set AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role."
        )
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return (
            f"The S3 endpoint {endpoint} could not be reached to {action} {where} ({kind}). "
            f"Check `s3_endpoint_url` (or AWS_ENDPOINT_URL) and that the endpoint accepts connections."
        )
    return f"S3 request to {action} {where} at {endpoint} failed ({kind}). Check the AWS settings for the lake."


def _endpoint_for_messages(client: BaseClient) -> str:
    """Return the client's endpoint URL without any user name or password in it."""
    parts = urlsplit(str(client.meta.endpoint_url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
