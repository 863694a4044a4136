"""Append-only, hash-chained audit log of privacy operations, one JSON line per event.

Each line stores the SHA-256 of the previous line's canonical form, so an edited,
removed or reordered line breaks the chain at that point. The log records counts,
pseudonyms and file names, never the personal values an operation was asked about.
It lives at `<home>/privacy/<tenant>/audit.jsonl` and survives `keys destroy`.
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

from spendlake.paths import privacy_dir

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64


class AuditError(RuntimeError):
    """Raised when an event cannot be appended, for example because the log's last line is damaged."""


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of `verify_audit_log`: the events checked and the first broken link, if any."""

    path: Path
    events: int
    broken_at_line: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        """True when every line links to the one before it."""
        return self.broken_at_line is None


def audit_log_path(home: Path, tenant: str) -> Path:
    """Return the path of the tenant's audit log."""
    return privacy_dir(home, tenant) / AUDIT_FILE


def append_audit_event(home: Path, tenant: str, action: str, details: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Append one event and return it; `details` must hold no personal values.

    Appends are serialised between processes with an exclusive lock on the log.
    """
    path = audit_log_path(home, tenant)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    return event


def read_audit_events(home: Path, tenant: str) -> list[dict[str, t.Any]]:
    """Return every event of the tenant's log in order (an empty list when there is no log)."""
    path = audit_log_path(home, tenant)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def verify_audit_log(home: Path, tenant: str) -> AuditVerification:
    """Check every link of the chain; report the first line that does not follow from the one before."""
    path = audit_log_path(home, tenant)
    if not path.exists():
        return AuditVerification(path=path, events=0)

    previous_hash = GENESIS
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        problem = _check_line(line, previous_hash, expected_seq=number - 1)
        if problem:
            return AuditVerification(path=path, events=number - 1, broken_at_line=number, reason=problem)
        previous_hash = json.loads(line)["hash"]
    return AuditVerification(path=path, events=len(lines))


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
