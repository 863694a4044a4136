"""The record of processing activities (GDPR Art. 30) of one tenant, as Markdown or JSON.

It is generated from the inputs the software runs on, so it cannot drift from
what runs: the source declarations (the fields each stream reads and their PII
classes, plus the optional `data_subjects` and `purpose` of each source), the
tenant's policy (the action on each field, retention, and the `processing`
facts a program cannot know: controller, processor, purposes, recipients,
transfers) and the technical measures this software applies.

Both formats come from one JSON-ready document (`build_record`), so they always
agree.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from pathlib import Path

from privacy.catalog import open_warehouse, read_catalog
from privacy.declarations import SourceDeclaration, installed_source_names, load_source_declaration, replication_key
from privacy.policy import Policy
from spendlake.paths import duckdb_path

RECORD_FORMAT = "spendlake-processing-record-v1"
NOT_STATED = "not stated in the policy"

_ACTION_TEXT = {
    "keep": "stored as received",
    "drop": "dropped before storage",
    "hmac": "keyed pseudonym (HMAC-SHA256)",
    "encrypt": "encrypted (AES-256-GCM), reversible by key holders",
    "truncate_ip": "IP address truncated",
    "generalize": "generalised (year or postcode area)",
    "redact": "e-mail addresses, phone numbers, IP addresses and card numbers inside the text replaced (names are not detected)",
}


def build_record(home: Path, tenant: str, policy: Policy, *, now: dt.datetime | None = None) -> dict[str, t.Any]:
    """Return the record of processing as JSON-ready data."""
    generated_at = now or dt.datetime.now(dt.UTC)
    stored = _stored_columns(home, tenant)
    stored_sources = sorted({source for source, _stream, _name in stored})
    names = stored_sources or installed_source_names()

    sources = [_source_entry(name, policy, stored) for name in names]
    processing = policy.processing or {}
    return {
        "format": RECORD_FORMAT,
        "tenant": tenant,
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "policy": policy.origin,
        "scope": "sources with tables in the warehouse" if stored_sources else "all installed sources (the warehouse has no tables yet)",
        "controller": processing.get("controller") or NOT_STATED,
        "processor": processing.get("processor") or NOT_STATED,
        "purposes": _as_list(processing.get("purposes")) or [NOT_STATED],
        "data_subjects": sorted({subject for source in sources for subject in source["data_subjects"]}),
        "recipients": _as_list(processing.get("recipients")) or [NOT_STATED],
        "transfers": processing.get("transfers") or NOT_STATED,
        "sources": sources,
        "security_measures": security_measures(home, tenant, policy),
    }


def render_json(record: dict[str, t.Any]) -> str:
    """Return the record as indented JSON text."""
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def render_markdown(record: dict[str, t.Any]) -> str:
    """Return the record as a Markdown document."""
    lines = [
        f"# Record of processing activities: tenant `{record['tenant']}`",
        "",
        f"Generated {record['generated_at']} from the source declarations and the policy ({record['policy']}).",
        f"Scope: {record['scope']}.",
        "",
        "## Controller and processor",
        "",
        f"- Controller: {_party(record['controller'])}",
        f"- Processor: {_party(record['processor'])}",
        "",
        "## Purposes of the processing",
        "",
        *[f"- {purpose}" for purpose in record["purposes"]],
        "",
        "## Categories of data subjects",
        "",
        *([f"- {subject}" for subject in record["data_subjects"]] or ["- none declared by the sources"]),
        "",
        "## Categories of personal data",
        "",
    ]
    for source in record["sources"]:
        lines.extend(_source_markdown(source))
    lines.extend(
        [
            "## Recipients",
            "",
            *[f"- {recipient}" for recipient in record["recipients"]],
            "",
            "## Transfers to third countries",
            "",
            _text(record["transfers"]),
            "",
            "## Retention",
            "",
            "| Stream | Kept for | Dated by |",
            "|---|---|---|",
        ]
    )
    for source in record["sources"]:
        for stream in source["streams"]:
            retention = stream["retention"]
            kept = retention["keep"] if retention else "until erased (no retention rule)"
            dated = retention["date_field"] if retention else ""
            lines.append(f"| {source['name']}.{stream['name']} | {kept} | {dated} |")
    lines.extend(["", "## Technical and organisational security measures", ""])
    lines.extend(f"- {measure}" for measure in record["security_measures"])
    return "\n".join(lines) + "\n"


def security_measures(home: Path, tenant: str, policy: Policy) -> list[str]:
    """Return the measures this software applies to the tenant's data, then the policy's own."""
    measures = [
        "Parquet files encrypted with Parquet modular encryption (AES-256-GCM): fresh data keys for every file, "
        "wrapped under the tenant's Parquet master keys, with personal-data columns under a separate key.",
        "DuckDB database encrypted with AES-256-GCM (OpenSSL), temporary spill files encrypted too.",
        "E-mails, phones and identifiers stored as keyed pseudonyms (HMAC-SHA256 under a per-tenant key), "
        "unless the policy sets another action.",
    ]
    if _uses_action(policy, "encrypt"):
        measures.append(
            "Fields the policy marks `encrypt` are encrypted with AES-256-GCM under a per-tenant field key, "
            "bound to tenant, source, stream and field."
        )
    measures.extend(
        [
            f"Per-tenant keys, sealed under a key-encryption key wrapped by {key_provider(home, tenant)}; "
            "destroying the tenant's keys makes all its stored data unreadable.",
            "Erasure list: pseudonyms of erased data subjects, dropped by mapper-pii from every later load.",
            "Append-only audit log of privacy operations, hash-chained so an edited or removed entry is detected.",
            "Personal data never written to logs or error messages; fields a source does not declare never leave it.",
        ]
    )
    measures.extend(str(measure) for measure in _as_list((policy.processing or {}).get("security_measures")))
    return measures


def key_provider(home: Path, tenant: str) -> str:
    """Describe the master-key provider that wraps the tenant's current key-encryption key."""
    from privacy.keyring import keyring_path, read_document

    path = keyring_path(home, tenant)
    if not path.exists():
        return "the configured master-key provider (the tenant has no keyring yet)"
    try:
        document = read_document(path, tenant)
        current = next(item for item in document["generations"] if item["id"] == document["current"])
        record = current["kek"]
    except (KeyError, StopIteration, TypeError, ValueError, RuntimeError):
        return "the master-key provider recorded in the keyring (unreadable: run `spendlake keys status`)"

    if record.get("provider") == "aws-kms":
        return f"the AWS KMS key {record.get('key_arn')}"
    return "a 32-byte master key kept outside the keyring (SPENDLAKE_MASTER_KEY, or the local file in the demo)"


def _stored_columns(home: Path, tenant: str) -> dict[tuple[str, str, str], str | None]:
    """Return the action stored per `(source, stream, column)`; empty when there is no warehouse."""
    if not duckdb_path(home, tenant).exists():
        return {}
    with open_warehouse(home, tenant, read_only=True) as connection:
        catalog = read_catalog(connection)
    return {(column.source, column.stream, column.name): column.pii_action for column in catalog}


def _source_entry(name: str, policy: Policy, stored: dict[tuple[str, str, str], str | None]) -> dict[str, t.Any]:
    declaration = load_source_declaration(name)
    streams = _declared_streams(declaration) if declaration else _catalog_streams(name, stored)
    entries = []
    for stream, fields in streams.items():
        categories: dict[str, list[dict[str, t.Any]]] = {}
        for field_name, pii_class in fields.items():
            if pii_class == "none":
                continue
            entry = {"field": field_name, "action": policy.action_for(name, stream, field_name, pii_class)}
            stored_action = stored.get((name, stream, field_name))
            if stored_action is not None and stored_action != entry["action"]:
                entry["stored_action"] = stored_action
            categories.setdefault(pii_class, []).append(entry)
        entries.append({"name": stream, "personal_data": categories, "retention": _retention(policy, name, stream)})

    return {
        "name": name,
        "description": getattr(declaration.spec, "description", None) if declaration else None,
        "purpose": declaration.purpose if declaration else None,
        "data_subjects": list(declaration.data_subjects) if declaration else [],
        "declared": declaration is not None,
        "streams": entries,
    }


def _declared_streams(declaration: SourceDeclaration) -> dict[str, dict[str, str]]:
    from taps.engine.fields import stream_schema

    return {
        spec.name: {name: prop.get("x-pii", "none") for name, prop in stream_schema(spec)["properties"].items()}
        for spec in declaration.spec.streams
    }


def _catalog_streams(source: str, stored: dict[tuple[str, str, str], str | None]) -> dict[str, dict[str, str]]:
    # NOTE: without a declaration the classes are unknown here, so every stored column is listed as unclassified.
    streams: dict[str, dict[str, str]] = {}
    for stored_source, stream, name in stored:
        if stored_source == source:
            streams.setdefault(stream, {})[name] = "unclassified"
    return streams


def _retention(policy: Policy, source: str, stream: str) -> dict[str, str] | None:
    retention = policy.retention_for(source, stream)
    if retention is None:
        return None
    date_field = retention.date_field or replication_key(source, stream) or "_loaded_at"
    return {"keep": str(retention.keep), "date_field": date_field}


def _uses_action(policy: Policy, action: str) -> bool:
    if action in policy.classes.values():
        return True
    return any(action in rules.classes.values() or action in rules.fields.values() for rules in policy.streams.values())


def _as_list(value: t.Any) -> list[t.Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _party(value: t.Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return _text(value)


def _text(value: t.Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _source_markdown(source: dict[str, t.Any]) -> list[str]:
    lines = [f"### Source `{source['name']}`", ""]
    if source["description"]:
        lines.append(f"{source['description']}")
    if source["purpose"]:
        lines.append(f"Purpose: {source['purpose']}")
    if source["data_subjects"]:
        lines.append(f"Data subjects: {', '.join(source['data_subjects'])}.")
    lines.append("")

    rows = [
        (stream["name"], pii_class, entry)
        for stream in source["streams"]
        for pii_class, entries in stream["personal_data"].items()
        for entry in entries
    ]
    if not rows:
        return [*lines, "No personal data declared.", ""]

    lines.extend(["| Stream | Class | Field | Action |", "|---|---|---|---|"])
    for stream, pii_class, entry in rows:
        action = f"{entry['action']}: {_ACTION_TEXT.get(entry['action'], entry['action'])}"
        if "stored_action" in entry:
            action += f" (rows already stored with {entry['stored_action']})"
        lines.append(f"| {stream} | {pii_class} | `{entry['field']}` | {action} |")
    return [*lines, ""]
