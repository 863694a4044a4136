"""Append-only, hash-chained audit log of privacy operations, one JSON line per event.

Each line stores the SHA-256 of the previous line's canonical form, so an edited,
removed or reordered line breaks the chain at that point. The log records counts,
pseudonyms and file names, never the personal values an operation was asked about.
It lives at `<home>/privacy/<tenant>/audit.jsonl` and survives `keys destroy`.

A chain alone cannot show that lines were cut from its end, or that the whole
log was emptied or deleted. So each append also rewrites an anchor,
`audit.head`, holding the last event's `seq` and `hash` and an HMAC-SHA256 over
them under a key derived from the tenant's pseudonym key. Once a tenant's
keyring is destroyed, the head is written without a MAC and with a note stating why.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from spendlake.paths import make_private_folder, privacy_dir

AUDIT_FILE = "audit.jsonl"
HEAD_FILE = "audit.head"
GENESIS = "0" * 64
HEAD_KEY_LABEL = b"spendlake audit head"
NO_KEYRING_NOTE = "written without a MAC: the tenant's keyring is destroyed"


class AuditError(RuntimeError):
    """Raised when an event cannot be appended, for example because the log's last line is damaged."""


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of `verify_audit_log`: the events checked, the first broken link if any, and a warning.

    A warning (no head next to a non-empty log, events after the head, a head
    whose MAC cannot be checked) means the log could not be fully checked: not OK,
    but not proven broken either.
    """

    path: Path
    events: int
    broken_at_line: int | None = None
    reason: str | None = None
    warning: str | None = None

    @property
    def intact(self) -> bool:
        """True when every line links to the one before it and the log ends at the event its head names."""
        return self.broken_at_line is None

    @property
    def ok(self) -> bool:
        """True when the log is intact and nothing was left unchecked."""
        return self.intact and self.warning is None


def audit_log_path(home: Path, tenant: str) -> Path:
    """Return the path of the tenant's audit log."""
    return privacy_dir(home, tenant) / AUDIT_FILE


def audit_head_path(home: Path, tenant: str) -> Path:
    """Return the path of the tenant's audit head (the anchor of the log's last event)."""
    return privacy_dir(home, tenant) / HEAD_FILE


def append_audit_event(home: Path, tenant: str, action: str, details: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Append one event, update the head and return the event; `details` must hold no personal values.

    Appends are serialised between processes with an exclusive lock on the log.
    Raises `AuditError` before writing anything when the tenant has a keyring
    that cannot be opened, because the head could not be signed.
    """
    path = audit_log_path(home, tenant)
    make_private_folder(path.parent)
    head_key = _head_key_for_append(home, tenant)
    with _locked_append(path) as handle:
        previous_hash, sequence = _chain_tail(path)
        event: dict[str, t.Any] = {
            "seq": sequence,
            "at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "tenant": tenant,
            "action": action,
            "actor": _actor(),
            "details": dict(details),
            "prev": previous_hash,
        }
        event["hash"] = _event_hash(event)
        handle.write(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        _write_head(audit_head_path(home, tenant), tenant, event, head_key)
    return event


def read_audit_events(home: Path, tenant: str) -> list[dict[str, t.Any]]:
    """Return every event of the tenant's log in order (an empty list when there is no log)."""
    path = audit_log_path(home, tenant)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def verify_audit_log(home: Path, tenant: str) -> AuditVerification:
    """Check every link of the chain, then that the log ends at the event its signed head names."""
    path = audit_log_path(home, tenant)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    lines = [line for line in lines if line.strip()]

    previous_hash = GENESIS
    for number, line in enumerate(lines, start=1):
        problem = _check_line(line, previous_hash, expected_seq=number - 1)
        if problem:
            return AuditVerification(path=path, events=number - 1, broken_at_line=number, reason=problem)
        previous_hash = json.loads(line)["hash"]

    return _check_head(home, tenant, path, lines)


def _check_head(home: Path, tenant: str, path: Path, lines: list[str]) -> AuditVerification:
    """Compare the intact chain with the head: a cut, emptied or deleted log, or a forged head, breaks it."""
    head_path = audit_head_path(home, tenant)
    events = len(lines)
    if not head_path.exists():
        if not events:
            return AuditVerification(path=path, events=0)
        warning = (
            f"the head {head_path} is missing, so lines cut from the end of the log cannot be detected "
            "(it was deleted, or the log was written by a spendlake without heads)"
        )
        return AuditVerification(path=path, events=events, warning=warning)

    head, problem = _read_head(head_path)
    if head is None:
        return AuditVerification(path=path, events=events, broken_at_line=events + 1, reason=f"the head {head_path} {problem}")

    seq, head_hash = head["seq"], head["hash"]
    if events < seq + 1:
        reason = (
            f"the log contains {events} events but its head records event {seq} (seq starts at 0): "
            "lines were cut from its end, or it was emptied or deleted"
        )
        return AuditVerification(path=path, events=events, broken_at_line=events + 1, reason=reason)
    if json.loads(lines[seq])["hash"] != head_hash:
        reason = f"the hash of event {seq} differs from the one its head records (the log or the head was replaced)"
        return AuditVerification(path=path, events=seq, broken_at_line=seq + 1, reason=reason)

    mac_problem, mac_warning = _check_head_mac(home, tenant, head)
    if mac_problem:
        return AuditVerification(path=path, events=events, broken_at_line=events + 1, reason=f"the head {head_path} {mac_problem}")
    if events > seq + 1:
        extra = events - seq - 1
        mac_warning = f"{extra} event(s) after the one the head records are not anchored (an append was interrupted, or lines were added)"
    return AuditVerification(path=path, events=events, warning=mac_warning)


def _read_head(head_path: Path) -> tuple[dict[str, t.Any] | None, str]:
    try:
        head = json.loads(head_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "is not readable JSON"
    if not isinstance(head, dict) or not isinstance(head.get("seq"), int) or not isinstance(head.get("hash"), str):
        return None, "lacks an integer 'seq' and a text 'hash'"
    if head["seq"] < 0:
        return None, "has a negative 'seq'"
    return head, ""


def _check_head_mac(home: Path, tenant: str, head: t.Mapping[str, t.Any]) -> tuple[str | None, str | None]:
    """Return (problem, warning) for the head's MAC under the tenant's current keys."""
    from privacy.keyring import keyring_path

    has_keyring = keyring_path(home, tenant).exists()
    mac = head.get("mac")
    if mac is None:
        if has_keyring:
            return "carries no MAC although the tenant has a keyring (the head was forged or replaced)", None
        # NOTE: a destroyed tenant's head is checked against the log only; no key is left to sign it.
        return None, None
    if not has_keyring:
        return None, "the head's MAC cannot be checked because the tenant's keyring is destroyed"

    expected = _head_mac(_head_key(home, tenant), tenant, head["seq"], head["hash"])
    if not isinstance(mac, str) or not _equal(mac, expected):
        return "has a wrong MAC (it was edited, or written without the tenant's key)", None
    return None, None


def _check_line(line: str, previous_hash: str, expected_seq: int) -> str | None:
    try:
        event = json.loads(line)
    except ValueError:
        return "the line is not valid JSON"
    if not isinstance(event, dict) or "hash" not in event:
        return "the line is not an audit event (no 'hash')"
    if event.get("prev") != previous_hash:
        return "its 'prev' does not match the hash of the line before (a line was removed, inserted or reordered)"
    if event.get("seq") != expected_seq:
        return f"its 'seq' is {event.get('seq')!r}, expected {expected_seq}"
    if _event_hash(event) != event["hash"]:
        return "its content does not match its 'hash' (the line was edited)"
    return None


def _event_hash(event: t.Mapping[str, t.Any]) -> str:
    body = {key: value for key, value in event.items() if key != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _head_key_for_append(home: Path, tenant: str) -> bytes | None:
    """Return the head's MAC key, or None when the tenant's keyring is destroyed."""
    from privacy.key_errors import KeyringError
    from privacy.keyring import keyring_path

    if not keyring_path(home, tenant).exists():
        return None
    try:
        return _head_key(home, tenant)
    except KeyringError as error:
        msg = f"The audit event was not written: the tenant's keyring, needed to sign the audit head, cannot be opened ({error})"
        raise AuditError(msg) from None


def _head_key(home: Path, tenant: str) -> bytes:
    """Derive the head's MAC key from the tenant's pseudonym key, so that key is never used directly."""
    from privacy.keys import load_tenant_keys

    return _hmac_sha256(load_tenant_keys(home, tenant, create=False).hmac_key, HEAD_KEY_LABEL)


def _head_mac(key: bytes, tenant: str, seq: int, event_hash: str) -> str:
    message = json.dumps({"hash": event_hash, "seq": seq, "tenant": tenant}, sort_keys=True, separators=(",", ":"))
    return _hmac_sha256(key, message.encode("utf-8")).hex()


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


def _equal(mac: str, expected: str) -> bool:
    import hmac

    return hmac.compare_digest(mac.encode("utf-8"), expected.encode("utf-8"))


def _write_head(path: Path, tenant: str, event: t.Mapping[str, t.Any], key: bytes | None) -> None:
    """Replace the head atomically with one naming `event`, signed when a key is given (mode 0600)."""
    from privacy.keyring import write_document

    head: dict[str, t.Any] = {"seq": event["seq"], "hash": event["hash"], "mac": None}
    if key is None:
        head["note"] = NO_KEYRING_NOTE
    else:
        head["mac"] = _head_mac(key, tenant, event["seq"], event["hash"])

    write_document(path, head)


def _chain_tail(path: Path) -> tuple[str, int]:
    """Return the last event's hash and the next sequence number, checking only the last line."""
    last = _last_line(path)
    if last is None:
        return GENESIS, 0
    try:
        event = json.loads(last)
        return str(event["hash"]), int(event["seq"]) + 1
    except (ValueError, KeyError, TypeError):
        msg = f"The last line of the audit log {path} is damaged; run `spendlake privacy audit verify` and restore the log."
        raise AuditError(msg) from None


def _last_line(path: Path) -> str | None:
    with open(path, "rb") as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    return lines[-1].decode("utf-8") if lines else None


@contextlib.contextmanager
def _locked_append(path: Path) -> Iterator[t.TextIO]:
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{os.uname().nodename}"
