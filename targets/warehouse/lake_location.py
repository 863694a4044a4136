"""Open the tenant's lake store that the `lake_url` setting names: the local folder or an S3 bucket."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from spendlake.paths import validate_tenant
from targets.warehouse.errors import LakeLocationError
from targets.warehouse.lake import Lake, LocalLake

ACCEPTED_FORMS = (
    "leave `lake_url` unset or empty for the local lake in the tenant's warehouse folder, "
    "or set it to s3://bucket or s3://bucket/prefix"
)

# NOTE: these are the current S3 naming rules, so legacy us-east-1 buckets with upper-case letters or '_' are rejected.
_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Location:
    """Bucket and key prefix of an `s3://bucket/prefix` URL, the prefix without leading or trailing '/'."""

    bucket: str
    prefix: str


def open_lake(
    tenant_root: Path,
    tenant: str,
    lake_url: str | None,
    *,
    endpoint_url: str | None = None,
    kms_key_id: str | None = None,
) -> Lake:
    """Return the local lake in `tenant_root` when `lake_url` is unset or empty, else the checked S3 lake.

    Without `endpoint_url`, boto3 reads AWS_ENDPOINT_URL and its other settings from the environment.
    Raises `LakeLocationError` for a malformed URL or an unusable bucket.
    """
    if not lake_url:
        return LocalLake(tenant_root)

    location = parse_s3_url(lake_url)
    # boto3 costs about 20 MB and a third of a second to import; local lakes never need it.
    from targets.warehouse.lake_s3 import S3Lake, make_s3_client  # noqa: PLC0415

    client = make_s3_client(endpoint_url)
    return S3Lake.open(client, location.bucket, location.prefix, validate_tenant(tenant), kms_key_id=kms_key_id)


def parse_s3_url(lake_url: str) -> S3Location:
    """Split `s3://bucket[/prefix]` into bucket and prefix, raising `LakeLocationError` for any other form."""
    try:
        parts = urlsplit(lake_url)
    except ValueError:
        raise _invalid(lake_url, "it is not a valid URL") from None

    if parts.scheme.lower() != "s3":
        scheme = f"'{parts.scheme}'" if parts.scheme else "no scheme"
        raise _invalid(lake_url, f"it has {scheme}, and only s3:// is supported")
    if "@" in parts.netloc or ":" in parts.netloc:
        problem = "it contains a user, password or port; give credentials and endpoint through the AWS settings"
        raise _invalid(None, problem)
    if parts.query or parts.fragment:
        raise _invalid(lake_url, "it has a query or fragment ('?' or '#')")

    bucket = parts.netloc
    if not bucket:
        raise _invalid(lake_url, "it names no bucket")
    if not _BUCKET_PATTERN.match(bucket) or ".." in bucket:
        problem = f"the bucket name {bucket!r} is not valid (3-63 lower-case letters, digits, '.' or '-')"
        raise _invalid(lake_url, problem)

    prefix = parts.path.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise _invalid(lake_url, "its prefix has an empty, '.' or '..' part")
    return S3Location(bucket=bucket, prefix=prefix)


def _invalid(lake_url: str | None, problem: str) -> LakeLocationError:
    quoted_url = f" {lake_url!r}" if lake_url is not None else ""
    return LakeLocationError(f"Invalid `lake_url`{quoted_url}: {problem}. To fix it, {ACCEPTED_FORMS}.")
