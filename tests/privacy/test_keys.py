"""Tenant keyrings: creation, reuse, file modes, master-key checks."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from privacy.keys import KeyringError, load_tenant_keys


def test_keys_created_once_and_reused(spendlake_env: Path) -> None:
    first = load_tenant_keys(spendlake_env, "acme")
    second = load_tenant_keys(spendlake_env, "acme")

    assert first.hmac_key == second.hmac_key
    assert first.duckdb_key == second.duckdb_key
    assert len({first.hmac_key, first.duckdb_key, first.parquet_master_key("footer"), first.parquet_master_key("pii")}) == 4


def test_tenants_get_different_keys(spendlake_env: Path) -> None:
    acme = load_tenant_keys(spendlake_env, "acme")
    globex = load_tenant_keys(spendlake_env, "globex")

    assert acme.hmac_key != globex.hmac_key


def test_keyring_files_are_private_and_sealed(spendlake_env: Path) -> None:
    keys = load_tenant_keys(spendlake_env, "acme")

    path = spendlake_env / "keys" / "acme.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((spendlake_env / "keys").stat().st_mode) == 0o700
    raw = path.read_bytes()
    for key in (keys.hmac_key, keys.duckdb_key):
        assert key not in raw
        assert base64.b64encode(key) not in raw


def test_repr_hides_key_bytes(spendlake_env: Path) -> None:
    keys = load_tenant_keys(spendlake_env, "acme")

    assert repr(keys) == "TenantKeys(tenant='acme')"


def test_missing_master_key_explains_fix(spendlake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY")

    with pytest.raises(KeyringError, match="set SPENDLAKE_MASTER_KEY to the base64 encoding of 32 random bytes"):
        load_tenant_keys(spendlake_env, "acme")
    assert not (spendlake_env / "keys" / "acme.json").exists()


def test_local_master_key_only_when_allowed(spendlake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY")
    monkeypatch.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")

    first = load_tenant_keys(spendlake_env, "demo")
    monkeypatch.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY")
    second = load_tenant_keys(spendlake_env, "demo")  # an existing file is read without the flag

    with pytest.raises(KeyringError, match="Refusing to create keys for tenant 'acme' under the local demo master-key file"):
        load_tenant_keys(spendlake_env, "acme")
    assert not (spendlake_env / "keys" / "acme.json").exists()

    master = spendlake_env / "keys" / "master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    assert len(base64.b64decode(master.read_text().strip())) == 32
    assert first.hmac_key == second.hmac_key


def test_wrong_master_key_is_rejected(spendlake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_tenant_keys(spendlake_env, "acme")
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())

    with pytest.raises(KeyringError, match="sealed with a different master key"):
        load_tenant_keys(spendlake_env, "acme")


def test_malformed_master_key_is_rejected(spendlake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", "too-short")

    with pytest.raises(KeyringError, match="expected the base64 encoding of exactly 32 bytes") as raised:
        load_tenant_keys(spendlake_env, "acme")
    assert "too-short" not in str(raised.value)


def test_key_moved_to_other_tenant_fails(spendlake_env: Path) -> None:
    load_tenant_keys(spendlake_env, "acme")
    load_tenant_keys(spendlake_env, "globex")
    acme = json.loads((spendlake_env / "keys" / "acme.json").read_text())
    globex_path = spendlake_env / "keys" / "globex.json"
    globex = json.loads(globex_path.read_text())
    globex["keys"]["hmac"] = acme["keys"]["hmac"]
    globex_path.write_text(json.dumps(globex))

    with pytest.raises(KeyringError, match="Cannot unseal the 'hmac' key"):
        load_tenant_keys(spendlake_env, "globex")


def test_invalid_tenant_rejected(spendlake_env: Path) -> None:
    with pytest.raises(ValueError, match="Invalid tenant id"):
        load_tenant_keys(spendlake_env, "../etc")
