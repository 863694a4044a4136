"""Subject links follow customer ids only: a card or e-mail shared by a family never pulls in another person.

Three people of source `shop` pay with cards; Alice and Bob share one card
fingerprint. The rows go through the real mapper-pii and target-warehouse.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import typing as t
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from singer_sdk.testing.runners import TargetTestRunner

from mappers.pii import PIIMapper
from privacy.erasures import load_erased
from privacy.field_crypto import blind_index, is_field_token
from privacy.keys import load_tenant_keys
from privacy.pseudonyms import Pseudonymizer
from spendlake.cli import main
from targets.warehouse import TargetWarehouse
from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.parquet_store import read_parquet_file
from tests.singer_run import captured_stdout

TENANT = "atk5"
SOURCE = "shop"
PEOPLE = [
    {"id": "cus_A", "email": "alice@example.com", "plan": "gold"},
    {"id": "cus_B", "email": "bob@example.com", "plan": "gold"},
    {"id": "cus_C", "email": "carol@example.com", "plan": "basic"},
]
PAYMENTS = [
    {"id": "p1", "customer": "cus_A", "card_fingerprint": "fp_family", "amount": 100},
    {"id": "p2", "customer": "cus_B", "card_fingerprint": "fp_family", "amount": 200},
    {"id": "p3", "customer": "cus_C", "card_fingerprint": "fp_other", "amount": 300},
]
SCHEMAS = {
    "people": {"id": "identifier", "email": "email", "plan": "none"},
    "payments": {"id": "none", "customer": "identifier", "card_fingerprint": "identifier", "amount": "none"},
}
POLICIES = {
    "hmac": "version: 1\ntenant: atk5\n",
    "encrypt": "version: 1\ntenant: atk5\nstreams:\n  shop.people:\n    fields: {email: encrypt}\n",
}


def schema_message(stream: str) -> dict[str, t.Any]:
    properties = {
        name: {"type": "integer" if name == "amount" else "string", "x-pii": pii_class}
        for name, pii_class in SCHEMAS[stream].items()
    }
    return {"type": "SCHEMA", "stream": stream, "schema": {"type": "object", "properties": properties}, "key_properties": ["id"]}


def shop_messages(people: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    messages = [schema_message("people"), schema_message("payments")]
    messages += [{"type": "RECORD", "stream": "people", "record": row} for row in people]
    messages += [{"type": "RECORD", "stream": "payments", "record": row} for row in PAYMENTS]
    return messages


def load(home: Path, policy: Path, messages: list[dict[str, t.Any]]) -> None:
    """Pass the messages through mapper-pii and target-warehouse, as `meltano run` does."""
    text = "".join(json.dumps(message) + "\n" for message in messages)
    mapper_config = {"tenant": TENANT, "source": SOURCE, "home": str(home), "policy_file": str(policy)}
    with captured_stdout() as raw:
        PIIMapper(config=mapper_config).listen(io.StringIO(text))
        sys.stdout.flush()
    target_config = {"tenant": TENANT, "source": SOURCE, "home": str(home)}
    TargetTestRunner(TargetWarehouse, config=target_config, input_io=io.StringIO(raw.getvalue().decode())).sync_all()


class Shop:
    """A loaded `shop` tenant and the CLI over it."""

    def __init__(self, home: Path, policy: Path) -> None:
        self.home = home
        self.policy = policy

    def cli(self, *args: str) -> Result:
        options = ["--tenant", TENANT, "--home", str(self.home), "--policy", str(self.policy)]
        return CliRunner().invoke(main, ["privacy", *args, *options])

    def pseudonym(self, pii_class: str, value: str) -> str:
        pseudonymizer = Pseudonymizer(load_tenant_keys(self.home, TENANT).hmac_key, default_phone_region="US")
        return t.cast(str, pseudonymizer.pseudonym(pii_class, value))

    def duckdb_ids(self, stream: str) -> set[str]:
        with connect_warehouse(self.home, TENANT, read_only=True) as connection:
            return {row[0] for row in connection.execute(f"SELECT id FROM {SOURCE}.{stream}").fetchall()}  # noqa: S608

    def lake_values(self) -> set[str]:
        """Return every value of the lake, field tokens by their blind index."""
        keys = load_tenant_keys(self.home, TENANT)
        values: set[str] = set()
        for path in (self.home / "warehouse" / TENANT / "parquet").rglob("*.parquet"):
            for row in read_parquet_file(path, keys).to_pylist():
                values |= {blind_index(value) if is_field_token(value) else str(value) for value in row.values()}
        return values


@pytest.fixture(params=sorted(POLICIES))
def shop(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", raising=False)
    policy = tmp_path / "atk5.yaml"
    policy.write_text(POLICIES[request.param], encoding="utf-8")
    home = tmp_path / "home"
    load(home, policy, shop_messages(PEOPLE))
    return Shop(home, policy)


def test_erase_keeps_person_sharing_card(shop: Shop) -> None:
    bob = {shop.pseudonym("identifier", "cus_B"), shop.pseudonym("email", "bob@example.com")}
    carol = {shop.pseudonym("identifier", "cus_C"), shop.pseudonym("email", "carol@example.com")}
    family_card = shop.pseudonym("identifier", "fp_family")

    result = shop.cli("erase", "--email", "alice@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert "shop.people: 1 row\n" in result.output
    assert "shop.payments: 1 row\n" in result.output
    assert "Subject ids followed: 1;" in result.output
    assert shop.duckdb_ids("payments") == {"p2", "p3"}
    assert shop.duckdb_ids("people") == {shop.pseudonym("identifier", "cus_B"), shop.pseudonym("identifier", "cus_C")}
    assert bob | carol <= shop.lake_values()
    erased = load_erased(shop.home, TENANT)
    assert erased == {shop.pseudonym("email", "alice@example.com"), shop.pseudonym("identifier", "cus_A")}
    assert erased.isdisjoint(bob | carol | {family_card})


def test_export_holds_no_other_person(shop: Shop) -> None:
    result = shop.cli("export", "--email", "alice@example.com")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [row["id"] for row in document["tables"]["shop.payments"]] == ["p1"]
    (person,) = document["tables"]["shop.people"]
    assert person["id"] == shop.pseudonym("identifier", "cus_A")
    text = result.stdout
    for value in ("bob@example.com", "carol@example.com", shop.pseudonym("email", "bob@example.com"), shop.pseudonym("identifier", "cus_B")):
        assert value not in text
    assert document["parquet_history"] == {}


def test_dry_run_warns_when_ids_reach_several_records(shop: Shop) -> None:
    # A card fingerprint is no subject id, but the payments it names carry two customer ids.
    result = shop.cli("erase", "--customer-id", "fp_family", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "Subject ids followed: 2; distinct values in their records: email 2." in result.output
    assert "Check: the subject ids lead to records with more than one e-mail or phone" in result.output
    assert "shop.payments: 2 rows\n" in result.output
    assert load_erased(shop.home, TENANT) == frozenset()


def test_erase_dry_run_counts_records_of_followed_ids(shop: Shop) -> None:
    result = shop.cli("erase", "--customer-id", "cus_A", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "Subject ids followed: 1; distinct values in their records: email 1." in result.output
    assert "Check:" not in result.output


def test_export_includes_older_versions_from_parquet(shop: Shop) -> None:
    moved = [{**row, "email": "alice.new@example.com", "plan": "platinum"} if row["id"] == "cus_A" else row for row in PEOPLE]
    load(shop.home, shop.policy, shop_messages(moved))

    result = shop.cli("export", "--customer-id", "cus_A")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (current,) = document["tables"]["shop.people"]
    (older,) = document["parquet_history"]["shop.people"]
    assert current["plan"] == "platinum"
    assert older["plan"] == "gold"
    assert older["id"] == current["id"] == shop.pseudonym("identifier", "cus_A")
    if "encrypt" in shop.policy.read_text():
        assert current["email"] == "alice.new@example.com"
        assert older["email"] == "alice@example.com"
    else:
        assert older["email"] == shop.pseudonym("email", "alice@example.com")
    assert "shop.payments" not in document["parquet_history"]
    assert "bob@example.com" not in result.stdout
