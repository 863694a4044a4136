"""`spendlake privacy …`: GDPR operations on one tenant, each written to the audit log."""

from __future__ import annotations

import contextlib
import sys
import typing as t
from collections.abc import Iterator
from pathlib import Path

import click

from spendlake.paths import InvalidTenantError, policy_path, spendlake_home, validate_tenant

if t.TYPE_CHECKING:
    from privacy.erase import ErasureReport
    from privacy.policy import Policy
    from privacy.subjects import Subject

#: Default maximum number of link rounds of a subject search; see `privacy.subjects`.
DEFAULT_MAX_LINK_ROUNDS = 5


def _home_option(command: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="spendlake home folder (default: SPENDLAKE_HOME or ./.spendlake).",
    )(command)


def _tenant_option(command: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    return click.option("--tenant", required=True, help="Tenant (client) id whose data is processed.")(command)


def _policy_option(command: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    return click.option(
        "--policy",
        "policy_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="The tenant's policy file (default: policies/<tenant>.yaml if it exists, else the built-in defaults).",
    )(command)


def _subject_options(command: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    options = [
        click.option("--email", default=None, help="The subject's e-mail address."),
        click.option("--phone", default=None, help="The subject's phone number (E.164, or national in the policy's phone region)."),
        click.option("--customer-id", default=None, help="The subject's customer or user id in a source (class identifier)."),
        click.option(
            "--max-link-rounds",
            type=click.IntRange(1, 50),
            default=DEFAULT_MAX_LINK_ROUNDS,
            show_default=True,
            help="Rounds of following linked e-mails, phones and ids before the search stops with an error.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group("privacy")
def privacy() -> None:
    """Erase, export, purge and document a tenant's personal data."""


@privacy.command("erase")
@_tenant_option
@_subject_options
@click.option("--yes", is_flag=True, help="Erase without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="Report what would be erased and change nothing.")
@_policy_option
@_home_option
def erase(
    tenant: str,
    email: str | None,
    phone: str | None,
    customer_id: str | None,
    max_link_rounds: int,
    yes: bool,
    dry_run: bool,
    policy_file: Path | None,
    home: Path | None,
) -> None:
    """Erase a data subject's rows from DuckDB and the Parquet lake, and keep them out of later loads."""
    from privacy.erase import erase_subject

    with _clear_errors():
        root, policy = _context(tenant, home, policy_file)
        subject = _subject(email, phone, customer_id)
        if dry_run or not yes:
            preview = erase_subject(root, tenant, policy, subject, dry_run=True, max_rounds=max_link_rounds)
            _print_erasure(preview)
            if dry_run:
                return
            _confirm(f"Erase these rows from tenant {tenant!r}? This cannot be undone")

        report = erase_subject(root, tenant, policy, subject, max_rounds=max_link_rounds)
    _print_erasure(report)


@privacy.command("export")
@_tenant_option
@_subject_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write, readable by its owner only (default: print to standard output).",
)
@_policy_option
@_home_option
def export(
    tenant: str,
    email: str | None,
    phone: str | None,
    customer_id: str | None,
    max_link_rounds: int,
    out: Path | None,
    policy_file: Path | None,
    home: Path | None,
) -> None:
    """Export every stored row linked to a data subject as JSON, with encrypted values decrypted."""
    from privacy.export import audit_export, export_subject
    from privacy.private_output import write_private_text

    with _clear_errors():
        root, policy = _context(tenant, home, policy_file)
        result = export_subject(root, tenant, policy, _subject(email, phone, customer_id), max_rounds=max_link_rounds)
        if out is None:
            click.echo(result.to_json(), nl=False)
        else:
            write_private_text(out, result.to_json())
        audit_export(root, tenant, result, "stdout" if out is None else "file")

    if out is not None:
        rows = sum(result.rows_by_table.values())
        click.echo(f"Wrote {rows} rows from {len(result.rows_by_table)} tables to {out} (mode 0600).", err=True)


@privacy.command("retention")
@_tenant_option
@click.option("--dry-run", is_flag=True, help="Count the rows past retention and change nothing.")
@_policy_option
@_home_option
def retention(tenant: str, dry_run: bool, policy_file: Path | None, home: Path | None) -> None:
    """Delete rows older than the policy's retention, from DuckDB and from the Parquet files."""
    from privacy.retention import apply_retention

    with _clear_errors():
        root, policy = _context(tenant, home, policy_file)
        report = apply_retention(root, tenant, policy, dry_run=dry_run)

    verb = "Would delete" if dry_run else "Deleted"
    if not report.streams:
        click.echo(f"No stream of tenant {tenant!r} has a retention rule in the policy ({policy.origin}).")
        return
    click.echo(f"{verb} rows past retention for tenant {tenant!r}:")
    for outcome in report.streams:
        plan = outcome.plan
        files = f", {len(outcome.files)} Parquet files changed" if outcome.files else ""
        undated = f", {outcome.undated_rows} undated rows kept" if outcome.undated_rows else ""
        click.echo(
            f"  {plan.table}: keep {plan.keep} by {plan.date_field} (before {plan.cutoff:%Y-%m-%d %H:%M} UTC): "
            f"{outcome.rows_deleted} table rows, {outcome.parquet_rows_removed} Parquet rows{files}{undated}"
        )
    if report.database_rekeyed:
        click.echo("The DuckDB database was copied under a new key, so the deleted rows are gone from its file.")


@privacy.command("record")
@_tenant_option
@click.option("--format", "output_format", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True, help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write (default: standard output).")
@_policy_option
@_home_option
def record(tenant: str, output_format: str, out: Path | None, policy_file: Path | None, home: Path | None) -> None:
    """Print the record of processing activities (GDPR Art. 30) from the declarations and the policy."""
    from privacy.audit import append_audit_event
    from privacy.record import build_record, render_json, render_markdown

    with _clear_errors():
        root, policy = _context(tenant, home, policy_file)
        document = build_record(root, tenant, policy)
        text = render_json(document) if output_format == "json" else render_markdown(document)
        if out is None:
            click.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
        details = {"format": output_format, "sources": [source["name"] for source in document["sources"]], "destination": str(out or "stdout")}
        append_audit_event(root, tenant, "privacy.record", details)


@privacy.group("audit")
def audit() -> None:
    """Inspect the tenant's audit log of privacy operations."""


@audit.command("verify")
@_tenant_option
@_home_option
def audit_verify(tenant: str, home: Path | None) -> None:
    """Check the audit log's hash chain and signed head; exit with 1 when broken or not fully checkable."""
    from privacy.audit import append_audit_event, verify_audit_log

    with _clear_errors():
        validate_tenant(tenant)
        root = spendlake_home(home)
        result = verify_audit_log(root, tenant)

    if not result.intact:
        click.echo(f"Audit log {result.path}: broken at line {result.broken_at_line}: {result.reason}.", err=True)
        click.echo(f"The {result.events} events before that line are intact. Restore the log from backup.", err=True)
        sys.exit(1)
    if result.warning:
        click.echo(f"Audit log {result.path}: {result.events} events, hash chain intact, but {result.warning}. NOT OK", err=True)
        sys.exit(1)

    click.echo(f"Audit log {result.path}: {result.events} events, hash chain intact. OK")
    # Only an intact log gets the record of its check, so a broken chain is left as found.
    append_audit_event(root, tenant, "privacy.audit_verify", {"events": result.events})


@privacy.command("audience-export")
@_tenant_option
@click.option("--platform", type=click.Choice(["meta", "google"]), required=True, help="Ad platform whose hashing and CSV header are used.")
@click.option("--stream", "stream_name", required=True, help="Stream to read, as SOURCE.STREAM (for example stripe.customers).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV file to write, readable by its owner only (default: print to standard output).",
)
@_policy_option
@_home_option
def audience_export(tenant: str, platform: str, stream_name: str, out: Path | None, policy_file: Path | None, home: Path | None) -> None:
    """Write a stream's encrypted e-mails and phones as the platform's SHA-256 hashes (CSV for an audience upload)."""
    from privacy.audience_export import audit_audience_export, build_audience
    from privacy.private_output import write_private_text

    with _clear_errors():
        root, policy = _context(tenant, home, policy_file)
        report = build_audience(root, tenant, policy, platform, stream_name)
        if out is None:
            click.echo(report.csv_text, nl=False)
        else:
            write_private_text(out, report.csv_text)
        audit_audience_export(root, tenant, report, "stdout" if out is None else "file")

    summary = (
        f"{report.rows_written} people from {stream_name} for {platform} ({report.rows_without_contact} rows without "
        f"e-mail or phone skipped, {report.rows_erased} rows of erased subjects skipped)."
    )
    click.echo(f"Wrote {summary}" if out is None else f"Wrote {summary} to {out} (mode 0600).", err=True)


def _context(tenant: str, home: Path | None, policy_file: Path | None) -> tuple[Path, Policy]:
    """Validate the tenant and return the home folder and the tenant's policy."""
    from privacy.policy import load_policy

    validate_tenant(tenant)
    if policy_file is None:
        default = policy_path(Path.cwd(), tenant)
        policy_file = default if default.is_file() else None
    return spendlake_home(home), load_policy(policy_file, tenant)


def _subject(email: str | None, phone: str | None, customer_id: str | None) -> Subject:
    from privacy.subjects import Subject

    named = [(pii_class, value) for pii_class, value in (("email", email), ("phone", phone), ("identifier", customer_id)) if value is not None]
    if len(named) != 1:
        msg = "Name the subject with exactly one of --email, --phone or --customer-id."
        raise click.UsageError(msg)
    pii_class, value = named[0]
    return Subject(pii_class, value)


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        msg = "Erasure needs confirmation, and standard input is not a terminal: review the rows above, then pass --yes."
        raise click.ClickException(msg)
    click.confirm(question, abort=True)


@contextlib.contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn the expected errors of the privacy operations into click errors (exit code 1, message only)."""
    try:
        yield
    except _expected_errors() as error:
        raise click.ClickException(str(error)) from None


def _expected_errors() -> tuple[type[BaseException], ...]:
    from privacy.audience_export import AudienceExportError
    from privacy.audit import AuditError
    from privacy.catalog import WarehouseAccessError
    from privacy.compaction import CompactionError
    from privacy.duckdb_rekey import RekeyError
    from privacy.erase import ErasureError
    from privacy.erasures import ErasureListError
    from privacy.export import ExportError
    from privacy.field_crypto import FieldDecryptionError
    from privacy.key_errors import KeyringError
    from privacy.parquet_rewrite import ParquetRewriteError
    from privacy.private_output import PrivateOutputError
    from privacy.policy import PolicyError
    from privacy.retention import RetentionError
    from privacy.subjects import SubjectSearchError
    from spendlake.tenant_lock import TenantBusyError
    from targets.warehouse.errors import WarehouseError

    return (
        AudienceExportError,
        AuditError,
        CompactionError,
        ErasureError,
        ErasureListError,
        ExportError,
        FieldDecryptionError,
        InvalidTenantError,
        KeyringError,
        ParquetRewriteError,
        PrivateOutputError,
        PolicyError,
        RekeyError,
        RetentionError,
        SubjectSearchError,
        TenantBusyError,
        WarehouseAccessError,
        WarehouseError,
    )


def _print_erasure(report: ErasureReport) -> None:
    verb = "Would erase" if report.dry_run else "Erased"
    classes = ", ".join(f"{pii_class} {len(values)}" for pii_class, values in report.pseudonyms.items())
    total = sum(len(values) for values in report.pseudonyms.values())
    click.echo(
        f"{verb} the subject (request {report.request_id}): {_count(total, 'pseudonym')} ({classes}), "
        f"links followed in {_count(report.rounds, 'round')}."
    )
    _print_subject_links(report)
    if not report.table_rows and not report.parquet_rows:
        click.echo("  No stored row matches." if report.dry_run else "  No stored row matched.")
    for table, count in sorted(report.table_rows.items()):
        click.echo(f"  {table}: {_count(count, 'row')}")
    if report.parquet_rows:
        rows = sum(report.parquet_rows.values())
        click.echo(f"  Parquet lake: {_count(rows, 'row')} in {_count(len(report.parquet_rows), 'file')}")
    if report.dry_run:
        click.echo("  Erasing also puts the pseudonyms on the erasure list, so later loads drop the subject.")
        return

    rewritten = sum(1 for change in report.files if not change.removed)
    removed = sum(1 for change in report.files if change.removed)
    click.echo(f"  Parquet files rewritten with new keys: {rewritten}, removed (left empty): {removed}")
    if report.database_rekeyed:
        click.echo("  The DuckDB database was copied under a new key, so the deleted rows are gone from its file.")
    click.echo(f"  Erasure list: {_count(report.new_erasures, 'new pseudonym')} (mapper-pii drops them from later loads).")


def _print_subject_links(report: ErasureReport) -> None:
    """Print how many subject ids were followed, and warn when their records hold several e-mails or phones."""
    records = ", ".join(f"{pii_class} {count}" for pii_class, count in report.record_values.items()) or "none"
    click.echo(f"  Subject ids followed: {report.subject_ids}; distinct values in their records: {records}.")
    if any(count > 1 for count in report.record_values.values()):
        click.echo(
            "  Check: the subject ids lead to records with more than one e-mail or phone; make sure they all "
            "belong to this person (run with --dry-run first)."
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
