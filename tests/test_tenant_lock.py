"""The tenant lock lets one process at a time change a tenant's stored data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spendlake.tenant_lock import TenantBusyError, tenant_lock

HOLD_LOCK = """
import sys, time
from pathlib import Path
from spendlake.tenant_lock import tenant_lock
with tenant_lock(Path(sys.argv[1]), "acme", "the test"):
    print("held", flush=True)
    time.sleep(30)
"""


def test_second_holder_rejected(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"

        with pytest.raises(TenantBusyError, match="Tenant 'acme' is busy.*retry the erasure"):
            with tenant_lock(tmp_path, "acme", "the erasure"):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_lock_free_again_after_release(tmp_path: Path) -> None:
    with tenant_lock(tmp_path, "acme", "the first run"):
        pass

    with tenant_lock(tmp_path, "acme", "the second run") as lock:
        assert lock.path.exists()


def test_other_tenant_not_blocked(tmp_path: Path) -> None:
    with tenant_lock(tmp_path, "acme", "one"), tenant_lock(tmp_path, "globex", "two"):
        assert (tmp_path / "warehouse" / "globex" / ".tenant.lock").exists()
