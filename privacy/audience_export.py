"""Customer lists for ad-platform audiences (Meta Custom Audiences, Google Customer Match) as CSV.

Meta and Google match people by unkeyed SHA-256 hashes of normalised e-mails
and phones. Such a hash is reversible by dictionary and links a person across
companies, so it is never stored: this module decrypts a stream's `encrypt`-ed
e-mail and phone columns in memory and writes the hashes straight to the
output. Erased subjects are gone from the warehouse already. Rows whose blind
index is on the erasure list are skipped as well, and so are the tombstones of
deleted records.
"""

from __future__ import annotations

import csv
import io
import typing as t
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from privacy.audit import append_audit_event
from privacy.catalog import DELETED_AT, StoredColumn, columns_by_table, open_warehouse, quote_table, read_catalog, require_warehouse
from privacy.erasures import load_erased
from privacy.keys import load_tenant_keys
from privacy.policy import Policy
from privacy.pseudonyms import Pseudonymizer

AUDIT_ACTION = "privacy.audience_export"
PLATFORMS = ("meta", "google")


class AudienceExportError(RuntimeError):
    """Raised when an audience cannot be built; the message names the stream, columns and the fix."""


@dataclass(frozen=True)
class PlatformFormat:
    """The CSV header and hash functions of one ad platform."""

    email_header: str
    phone_header: str
    email_hash: Callable[[t.Any], str | None]
    phone_hash: Callable[[t.Any, str], str | None]


@dataclass(frozen=True)
class AudienceReport:
    """The CSV text of an audience export and its counts (no values)."""

    request_id: str
    platform: str
    stream: str
    email_columns: tuple[str, ...]
    phone_columns: tuple[str, ...]
    rows_written: int
    rows_without_contact: int
    rows_erased: int
    csv_text: str

    def audit_details(self, destination: str) -> dict[str, t.Any]:
        """Return the audit event's details: counts, column names and the destination."""
        return {
            "request": self.request_id,
            "platform": self.platform,
            "stream": self.stream,
            "email_columns": list(self.email_columns),
            "phone_columns": list(self.phone_columns),
            "rows_written": self.rows_written,
            "rows_without_contact": self.rows_without_contact,
            "rows_skipped_as_erased": self.rows_erased,
            "destination": destination,
        }


def platform_format(platform: str) -> PlatformFormat:
    """Return the CSV format of `platform` (`meta` or `google`)."""
    from privacy import audience

    if platform == "meta":
        return PlatformFormat("email", "phone", audience.meta_email_hash, audience.meta_phone_hash)
    if platform == "google":
        return PlatformFormat("Email", "Phone", audience.google_email_hash, audience.google_phone_hash)
    msg = f"Unknown platform {platform!r}; use one of: {', '.join(PLATFORMS)}."
    raise AudienceExportError(msg)


def build_audience(home: Path, tenant: str, policy: Policy, platform: str, stream_name: str) -> AudienceReport:
    """Build the platform's CSV of hashed e-mails and phones from one stream (`source.stream`)."""
    from privacy.field_crypto import FieldCipher

    source, stream = _split_stream(stream_name)
    layout = platform_format(platform)
    require_warehouse(home, tenant)
    keys = load_tenant_keys(home, tenant)
    pseudonymizer = Pseudonymizer(keys.hmac_key, default_phone_region=policy.phone_region)
    cipher = FieldCipher(keys.field_key, tenant, pseudonymizer)
    erased = load_erased(home, tenant)

    with open_warehouse(home, tenant, read_only=True) as connection:
        columns = columns_by_table(read_catalog(connection)).get((source, stream))
        if columns is None:
            msg = f"Stream {stream_name} has no table in tenant {tenant!r}'s warehouse; check the name or load the stream first."
            raise AudienceExportError(msg)
        emails, phones = _encrypted_contact_columns(stream_name, columns)
        rows = _contact_rows(connection, source, stream, emails + phones, columns)

    audience: set[tuple[str, str]] = set()
    without_contact = skipped_erased = 0
    for row in rows:
        if not erased.isdisjoint(_row_pseudonyms(row)):
            skipped_erased += 1
            continue
        email = _first_hash(source, stream, emails, row[: len(emails)], cipher, layout.email_hash)
        phone = _first_hash(source, stream, phones, row[len(emails) :], cipher, lambda value: layout.phone_hash(value, policy.phone_region))
        if email is None and phone is None:
            without_contact += 1
            continue
        audience.add((email or "", phone or ""))

    return AudienceReport(
        request_id=uuid.uuid4().hex,
        platform=platform,
        stream=stream_name,
        email_columns=tuple(emails),
        phone_columns=tuple(phones),
        rows_written=len(audience),
        rows_without_contact=without_contact,
        rows_erased=skipped_erased,
        csv_text=_csv_text(layout, sorted(audience)),
    )


def audit_audience_export(home: Path, tenant: str, report: AudienceReport, destination: str) -> None:
    """Record the export in the audit log."""
    append_audit_event(home, tenant, AUDIT_ACTION, report.audit_details(destination))


def _split_stream(stream_name: str) -> tuple[str, str]:
    source, dot, stream = stream_name.partition(".")
    if not dot or not source or not stream:
        msg = f"Stream {stream_name!r} is not of the form SOURCE.STREAM (for example stripe.customers)."
        raise AudienceExportError(msg)
    return source, stream


def _encrypted_contact_columns(stream_name: str, columns: list[StoredColumn]) -> tuple[list[str], list[str]]:
    emails = [column.name for column in columns if column.pii_class == "email" and column.pii_action == "encrypt"]
    phones = [column.name for column in columns if column.pii_class == "phone" and column.pii_action == "encrypt"]
    if emails or phones:
        return emails, phones

    contact = [column for column in columns if column.pii_class in ("email", "phone")]
    found = ", ".join(f"{column.name} ({column.pii_class}, stored with {column.pii_action})" for column in contact)
    example = contact[0].name if contact else "email"
    msg = (
        f"Stream {stream_name} has no encrypted e-mail or phone column, so no audience can be built from it "
        f"({'its contact columns: ' + found if found else 'it has no e-mail or phone column'}). Hashed values "
        f"cannot be turned back into e-mails. Set `streams: {{{stream_name}: {{fields: {{{example}: encrypt}}}}}}` "
        "in the tenant's policy, then load the stream again."
    )
    raise AudienceExportError(msg)


def _contact_rows(
    connection: t.Any,
    source: str,
    stream: str,
    names: list[str],
    columns: list[StoredColumn],
) -> list[tuple[t.Any, ...]]:
    from targets.warehouse.duckdb_store import quote_identifier

    selected = ", ".join(quote_identifier(name) for name in names)
    live = f" WHERE {quote_identifier(DELETED_AT)} IS NULL" if any(column.name == DELETED_AT for column in columns) else ""
    return connection.execute(f"SELECT {selected} FROM {quote_table(source, stream)}{live}").fetchall()  # noqa: S608


def _row_pseudonyms(row: tuple[t.Any, ...]) -> set[str]:
    """Return the blind indexes of a row's tokens, and any pseudonym stored before the column was encrypted."""
    from privacy.field_crypto import blind_index, is_field_token

    return {blind_index(value) if is_field_token(value) else value for value in row if isinstance(value, str)}


def _first_hash(
    source: str,
    stream: str,
    names: list[str],
    tokens: tuple[t.Any, ...],
    cipher: t.Any,
    hash_value: Callable[[t.Any], str | None],
) -> str | None:
    """Return the hash of the first column value that decrypts and normalises, in column order."""
    from privacy.field_crypto import is_field_token

    for name, token in zip(names, tokens, strict=True):
        if not is_field_token(token):
            continue
        hashed = hash_value(cipher.decrypt(source, stream, name, token))
        if hashed is not None:
            return hashed
    return None


def _csv_text(layout: PlatformFormat, rows: list[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([layout.email_header, layout.phone_header])
    writer.writerows(rows)
    return buffer.getvalue()
