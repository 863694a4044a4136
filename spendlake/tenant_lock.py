"""One exclusive lock per tenant, held by every process that changes the tenant's stored data.

target-warehouse takes it for a whole load, and key rotation, erasure,
retention and destruction hold it while they rewrite files, so none of them
sees the warehouse half-rewritten by another. The lock is an advisory `flock`
on `<home>/warehouse/<tenant>/.tenant.lock`, released when the process exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from spendlake.paths import tenant_dir

LOCK_FILE = ".tenant.lock"


class TenantBusyError(RuntimeError):
    """Raised when another process holds the tenant's lock."""


class TenantLock:
    """An acquired tenant lock; call `release` (or use `tenant_lock`) when done."""

    def __init__(self, home: Path, tenant: str, purpose: str) -> None:
        folder = tenant_dir(home, tenant)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = folder / LOCK_FILE
        self._descriptor = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._descriptor)
            msg = (
                f"Tenant {tenant!r} is busy: another process (a load, key rotation, erasure or retention run) "
                f"holds {self.path}. Wait for it to finish, then retry {purpose}."
            )
            raise TenantBusyError(msg) from None

    def release(self) -> None:
        """Release the lock; calling it twice is harmless."""
        if self._descriptor >= 0:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = -1


@contextlib.contextmanager
def tenant_lock(home: Path, tenant: str, purpose: str) -> Iterator[TenantLock]:
    """Hold the tenant's lock for the `with` block; raise `TenantBusyError` if it is taken."""
    lock = TenantLock(home, tenant, purpose)
    try:
        yield lock
    finally:
        lock.release()
