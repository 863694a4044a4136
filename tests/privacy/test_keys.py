"""Tenant keyrings: creation, reuse, file modes, master-key checks, format 2 generations, conversion from format 1."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.keys import KeyringError, changing_keyring, load_tenant_keys, master_key_id, parquet_key_generation
from privacy.master_keys import select_provider


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
    globex["generations"][0]["keys"]["hmac"] = acme["generations"][0]["keys"]["hmac"]
    globex_path.write_text(json.dumps(globex))

    with pytest.raises(KeyringError, match="Cannot unseal the 'hmac' key of generation 1"):
        load_tenant_keys(spendlake_env, "globex")


def test_kek_moved_to_other_tenant_fails(spendlake_env: Path) -> None:
    load_tenant_keys(spendlake_env, "acme")
    load_tenant_keys(spendlake_env, "globex")
    acme = json.loads((spendlake_env / "keys" / "acme.json").read_text())
    globex_path = spendlake_env / "keys" / "globex.json"
    globex = json.loads(globex_path.read_text())
    globex["generations"][0]["kek"] = acme["generations"][0]["kek"]
    globex_path.write_text(json.dumps(globex))

    with pytest.raises(KeyringError, match="Cannot unseal the KEK of generation 1 of tenant 'globex'"):
        load_tenant_keys(spendlake_env, "globex")


def test_invalid_tenant_rejected(spendlake_env: Path) -> None:
    with pytest.raises(ValueError, match="Invalid tenant id"):
        load_tenant_keys(spendlake_env, "../etc")


def test_keyring_v2_layout(spendlake_env: Path) -> None:
    keys = load_tenant_keys(spendlake_env, "acme")

    document = json.loads((spendlake_env / "keys" / "acme.json").read_text())
    assert document["format"] == "spendlake-keyring-v2"
    assert document["current"] == 1
    assert [generation["id"] for generation in document["generations"]] == [1]
    generation = document["generations"][0]
    assert generation["kek"]["provider"] == "master-key"
    assert set(generation["keys"]) == {"hmac", "field", "parquet-footer", "parquet-pii"}
    assert document["duckdb"]["active"]["generation"] == 1
    assert document["duckdb"]["pending"] is None
    assert (keys.generation, keys.duckdb_key_generation) == (1, 1)
    assert (keys.parquet_footer_key_id, keys.parquet_pii_key_id) == ("footer", "pii")


def test_field_key_is_separate_and_sealed(spendlake_env: Path) -> None:
    keys = load_tenant_keys(spendlake_env, "acme")

    assert len(keys.field_key) == 32
    others = {keys.hmac_key, keys.duckdb_key, keys.parquet_master_key("footer"), keys.parquet_master_key("pii")}
    assert keys.field_key not in others
    assert load_tenant_keys(spendlake_env, "acme").field_key == keys.field_key
    raw = (spendlake_env / "keys" / "acme.json").read_bytes()
    assert keys.field_key not in raw
    assert base64.b64encode(keys.field_key) not in raw


def _write_v1_keyring(home: Path, tenant: str, master_key: bytes) -> dict[str, bytes]:
    """Write a keyring in the version 1 format (keys sealed directly under the master key); return its keys."""
    keys = {purpose: os.urandom(32) for purpose in ("hmac", "duckdb", "parquet-footer", "parquet-pii")}
    sealed = {}
    for purpose, key in keys.items():
        nonce = os.urandom(12)
        ciphertext = AESGCM(master_key).encrypt(nonce, key, f"spendlake-keyring-v1|{tenant}|{purpose}".encode())
        sealed[purpose] = base64.b64encode(nonce + ciphertext).decode()
    document = {
        "format": "spendlake-keyring-v1",
        "tenant": tenant,
        "created_at": "2026-01-02T03:04:05+00:00",
        "master_key_id": master_key_id(master_key),
        "keys": sealed,
    }
    folder = home / "keys"
    folder.mkdir(parents=True, mode=0o700)
    (folder / f"{tenant}.json").write_text(json.dumps(document))
    return keys


def test_v1_keyring_converted_keeping_key_bytes(spendlake_env: Path) -> None:
    master_key = base64.b64decode(os.environ["SPENDLAKE_MASTER_KEY"])
    old = _write_v1_keyring(spendlake_env, "acme", master_key)

    keys = load_tenant_keys(spendlake_env, "acme")

    assert keys.hmac_key == old["hmac"]
    assert keys.duckdb_key == old["duckdb"]
    assert keys.parquet_master_key("footer") == old["parquet-footer"]
    assert keys.parquet_master_key("pii") == old["parquet-pii"]
    assert len(keys.field_key) == 32
    path = spendlake_env / "keys" / "acme.json"
    document = json.loads(path.read_text())
    assert document["format"] == "spendlake-keyring-v2"
    assert document["created_at"] == "2026-01-02T03:04:05+00:00"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", "acme.json"]
    again = load_tenant_keys(spendlake_env, "acme")
    assert (again.field_key, again.duckdb_key) == (keys.field_key, keys.duckdb_key)


def test_v1_keyring_with_other_master_key_not_converted(spendlake_env: Path) -> None:
    _write_v1_keyring(spendlake_env, "acme", os.urandom(32))
    before = (spendlake_env / "keys" / "acme.json").read_bytes()

    with pytest.raises(KeyringError, match="sealed with a different master key"):
        load_tenant_keys(spendlake_env, "acme")
    assert (spendlake_env / "keys" / "acme.json").read_bytes() == before


def _add_generation(home: Path, tenant: str) -> int:
    with changing_keyring(home, tenant) as keyring:
        generation = keyring.add_generation(select_provider(home / "keys", allow_local=False))
        keyring.save()
    return generation


def test_new_generation_keeps_hmac_and_field_keys(spendlake_env: Path) -> None:
    first = load_tenant_keys(spendlake_env, "acme")

    assert _add_generation(spendlake_env, "acme") == 2
    second = load_tenant_keys(spendlake_env, "acme")

    assert (second.hmac_key, second.field_key) == (first.hmac_key, first.field_key)
    assert second.pseudonym_key_id == first.pseudonym_key_id
    assert (second.parquet_footer_key_id, second.parquet_pii_key_id) == ("footer.g2", "pii.g2")
    assert second.parquet_master_key("footer.g2") != first.parquet_master_key("footer")
    assert second.parquet_master_key("footer") == first.parquet_master_key("footer")
    assert second.parquet_key_id_list == ["footer", "footer.g2", "pii", "pii.g2"]
    # The DuckDB key moves only when the database is re-encrypted.
    assert (second.duckdb_key, second.duckdb_key_generation) == (first.duckdb_key, 1)
    document = json.loads((spendlake_env / "keys" / "acme.json").read_text())
    assert document["generations"][0]["kek"] != document["generations"][1]["kek"]


def test_retiring_generation_forgets_its_parquet_keys(spendlake_env: Path) -> None:
    load_tenant_keys(spendlake_env, "acme")
    _add_generation(spendlake_env, "acme")

    with changing_keyring(spendlake_env, "acme") as keyring:
        with pytest.raises(KeyringError, match="the active DuckDB key is sealed under generation 1"):
            keyring.retire_generations()
        keyring.stage_duckdb_key(os.urandom(32), "0" * 64)
        keyring.commit_duckdb_key()
        assert keyring.retire_generations() == [1]
        keyring.save()

    keys = load_tenant_keys(spendlake_env, "acme")
    assert keys.parquet_key_id_list == ["footer.g2", "pii.g2"]
    with pytest.raises(KeyringError, match="Unknown Parquet master key id 'footer' for tenant 'acme'") as raised:
        keys.parquet_master_key("footer")
    assert "footer.g2, pii.g2" in str(raised.value)


@pytest.mark.parametrize(
    ("key_id", "generation"),
    [("footer", 1), ("pii", 1), ("footer.g2", 2), ("pii.g17", 17), ("footer.g", None), ("kek", None), ("pii.g2x", None)],
)
def test_parquet_key_generation(key_id: str, generation: int | None) -> None:
    assert parquet_key_generation(key_id) == generation


def test_damaged_keyring_named_in_error(spendlake_env: Path) -> None:
    load_tenant_keys(spendlake_env, "acme")
    path = spendlake_env / "keys" / "acme.json"
    document = json.loads(path.read_text())
    document["current"] = 5
    path.write_text(json.dumps(document))

    with pytest.raises(KeyringError, match="is damaged: 'current' does not name a generation"):
        load_tenant_keys(spendlake_env, "acme")
