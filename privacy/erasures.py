"""The erasure list: pseudonyms of erased data subjects, which mapper-pii drops on every later run.

Incremental syncs and lookback windows send old records again, so without this
list an erased person would come back with the next load. The list stores
keyed pseudonyms (HMAC-SHA256 under the tenant key, as made by mapper-pii),
never the e-mail, phone or id they were made from, one JSON object per line at
`<home>/privacy/<tenant>/erasures.jsonl`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from spendlake.paths import make_private_folder, privacy_dir

ERASURES_FILE = "erasures.jsonl"
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


class ErasureListError(RuntimeError):
    """Raised when the erasure list cannot be read or contains something other than pseudonyms."""


def erasure_list_path(home: Path, tenant: str) -> Path:
    """Return the path of the tenant's erasure list."""
    return privacy_dir(home, tenant) / ERASURES_FILE


def load_erased(home: Path, tenant: str) -> frozenset[str]:
    """Return every erased pseudonym of the tenant (empty when no subject was erased)."""
    path = erasure_list_path(home, tenant)
    if not path.exists():
        return frozenset()

    erased: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            pseudonym = json.loads(line)["pseudonym"]
        except (ValueError, KeyError, TypeError):
            pseudonym = None
        if not isinstance(pseudonym, str) or not _PSEUDONYM.match(pseudonym):
            msg = f"Line {number} of the erasure list {path} is not a pseudonym entry; restore the file from backup."
            raise ErasureListError(msg)
        erased.add(pseudonym)
    return frozenset(erased)


def add_erased(home: Path, tenant: str, pseudonyms: Iterable[str], request_id: str) -> int:
    """Append the pseudonyms not yet listed and return how many were new; durable on return."""
    wanted = sorted(set(pseudonyms))
    for pseudonym in wanted:
        if not _PSEUDONYM.match(pseudonym):
            msg = "Only 64-character hex pseudonyms can be added to the erasure list."
            raise ErasureListError(msg)

    path = erasure_list_path(home, tenant)
    make_private_folder(path.parent)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            new = [pseudonym for pseudonym in wanted if pseudonym not in load_erased(home, tenant)]
            erased_at = datetime.now(UTC).isoformat(timespec="seconds")
            for pseudonym in new:
                entry = {"pseudonym": pseudonym, "erased_at": erased_at, "request": request_id}
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return len(new)
