"""A loaded Stripe tenant for the GDPR tests: tap-stripe, mapper-pii and target-warehouse, all real, in-process.

Only HTTP is faked: `responses` routes the tap's requests to the sandbox's
Stripe emulator, which serves a deterministic account (`StripeWorld`).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
import responses
from click.testing import CliRunner, Result
from singer_sdk.testing.runners import TargetTestRunner

from mappers.pii import PIIMapper
from privacy.field_crypto import blind_index, is_field_token
from privacy.keys import load_tenant_keys
from privacy.pseudonyms import Pseudonymizer
from sandbox.stripe_api import DEMO_API_KEY, responses_callback
from sandbox.stripe_data import StripeWorld
from targets.warehouse import TargetWarehouse
from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.parquet_store import read_parquet_file
from spendlake.cli import main
from taps.stripe import TapStripe
from tests.singer_run import captured_stdout, catalog_selecting_all, run_tap

TENANT = "acme"
SOURCE = "stripe"
API = "http://stripe-sandbox.test"
TAP_CONFIG = {"api_key": DEMO_API_KEY, "api_url": API}
SEED = 41
ANCHOR = 1_790_000_000
STREAMS = ("customers", "charges", "invoices")

#: Customer e-mails and phones and the billing e-mails and phones of charges are stored encrypted, so an
#: audience can be exported. Receipt e-mails and customer ids stay keyed pseudonyms.
POLICY_YAML = """\
version: 1
tenant: acme
unclassified: strict
phone_region: US
streams:
  stripe.customers:
    fields: {email: encrypt, phone: encrypt}
  stripe.charges:
    fields: {billing_email: encrypt, billing_phone: encrypt}
retention:
  streams:
    stripe.charges: {keep: 30 days, date_field: created}
processing:
  controller: {name: Acme Shop Ltd, contact: privacy@acme.example}
  processor: {name: Example Agency, contact: dpo@agency.example}
  purposes: [Measure revenue per advertising campaign]
  recipients: [Acme's marketing team]
  transfers: none outside the EEA
  security_measures: [Access to the warehouse host limited to two named staff]
"""


def write_policy(folder: Path, text: str = POLICY_YAML) -> Path:
    """Write a policy file for tenant acme and return its path."""
    path = folder / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def stripe_world(ticks: tuple[int, ...] = ()) -> StripeWorld:
    """Return the deterministic Stripe account the tests load."""
    return StripeWorld(SEED, ANCHOR, ticks)


def sync_stripe(world: StripeWorld, streams: tuple[str, ...] = STREAMS, state: dict[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    """Run tap-stripe against the sandbox's emulation of `world` and return its Singer messages."""
    catalog = catalog_selecting_all(TapStripe, TAP_CONFIG)
    for entry in catalog["streams"]:
        root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
        root["metadata"]["selected"] = entry["tap_stream_id"] in streams
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/v1/.*"), callback=responses_callback(world))
        return run_tap(TapStripe, TAP_CONFIG, state=state, catalog=catalog)


def load_messages(home: Path, messages: list[dict[str, t.Any]], policy_file: Path) -> None:
    """Pass tap output through mapper-pii and target-warehouse, as `meltano run` does."""
    text = "".join(json.dumps(message) + "\n" for message in messages)
    mapper_config = {"tenant": TENANT, "source": SOURCE, "home": str(home), "policy_file": str(policy_file)}
    with captured_stdout() as raw:
        PIIMapper(config=mapper_config).listen(io.StringIO(text))
        sys.stdout.flush()
    target_config = {"tenant": TENANT, "source": SOURCE, "home": str(home)}
    TargetTestRunner(TargetWarehouse, config=target_config, input_io=io.StringIO(raw.getvalue().decode())).sync_all()


def pseudonymizer(home: Path) -> Pseudonymizer:
    """Return the tenant's pseudonymizer, as mapper-pii builds it."""
    return Pseudonymizer(load_tenant_keys(home, TENANT).hmac_key, default_phone_region="US")


def query(home: Path, sql: str, parameters: t.Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
    """Run one read-only query on the tenant's warehouse."""
    with connect_warehouse(home, TENANT, read_only=True) as connection:
        return connection.execute(sql, list(parameters)).fetchall()


def parquet_folder(home: Path, stream: str) -> Path:
    """Return the folder of a Stripe stream's Parquet files."""
    return home / "warehouse" / TENANT / "parquet" / SOURCE / stream


def read_lake(home: Path, stream: str) -> pa.Table:
    """Read every Parquet file of a Stripe stream with the tenant's current keys."""
    keys = load_tenant_keys(home, TENANT)
    tables = [read_parquet_file(path, keys) for path in sorted(parquet_folder(home, stream).glob("*.parquet"))]
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def customer_with_charges(world: StripeWorld) -> dict[str, t.Any]:
    """Return a customer with an e-mail, a phone and at least two charges whose billing e-mail is theirs."""
    charges_by_customer: dict[str, list[dict[str, t.Any]]] = {}
    for charge in world.charges:
        if charge["customer"] is not None:
            charges_by_customer.setdefault(charge["customer"], []).append(charge)
    for customer in world.customers:
        charges = charges_by_customer.get(customer["id"], [])
        if customer["email"] and customer["phone"] and len(charges) >= 2:
            if all(charge["billing_details"]["email"] == customer["email"] for charge in charges):
                return customer
    msg = "The sandbox world has no customer with an e-mail, a phone and two charges billed to that e-mail."
    raise AssertionError(msg)


def charges_of(world: StripeWorld, customer_id: str) -> list[dict[str, t.Any]]:
    """Return the charges of one customer in the world."""
    return [charge for charge in world.charges if charge["customer"] == customer_id]


@dataclass(frozen=True)
class LoadedTenant:
    """A spendlake home holding tenant acme's loaded Stripe data, with its policy file and the world it came from."""

    home: Path
    policy: Path
    world: StripeWorld
    master_key: str

    def cli(self, *args: str) -> Result:
        """Run `spendlake privacy ARGS --tenant acme --home HOME --policy POLICY` in-process."""
        command, rest = args[0], list(args[1:])
        if command == "audit":
            options = ["--tenant", TENANT, "--home", str(self.home)]
        else:
            options = ["--tenant", TENANT, "--home", str(self.home), "--policy", str(self.policy)]
        return CliRunner().invoke(main, ["privacy", command, *rest, *options])


@pytest.fixture(scope="module")
def loaded_template(tmp_path_factory: pytest.TempPathFactory) -> LoadedTenant:
    """Load the Stripe world once per test module; tests work on copies (`loaded_tenant`)."""
    root = tmp_path_factory.mktemp("gdpr-template")
    master_key = base64.b64encode(os.urandom(32)).decode()
    world = stripe_world()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPENDLAKE_MASTER_KEY", master_key)
        patch.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", raising=False)
        home = root / "home"
        policy = write_policy(root)
        load_messages(home, sync_stripe(world), policy)
    return LoadedTenant(home=home, policy=policy, world=world, master_key=master_key)


@pytest.fixture
def loaded_tenant(loaded_template: LoadedTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedTenant:
    """A private copy of the loaded tenant, with its master key and home in the environment."""
    home = tmp_path / "home"
    shutil.copytree(loaded_template.home, home)
    policy = tmp_path / "policies" / "acme.yaml"
    policy.parent.mkdir()
    shutil.copy(loaded_template.policy, policy)
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", loaded_template.master_key)
    monkeypatch.setenv("SPENDLAKE_HOME", str(home))
    return LoadedTenant(home=home, policy=policy, world=loaded_template.world, master_key=loaded_template.master_key)


def stored_pseudonyms(values: t.Iterable[t.Any]) -> set[str]:
    """Return the pseudonyms among stored values: hmac values as they are, field tokens by their blind index."""
    found = set()
    for value in values:
        if is_field_token(value):
            found.add(blind_index(value))
        elif isinstance(value, str):
            found.add(value)
    return found


def linked_values(customer: dict[str, t.Any], charges: list[dict[str, t.Any]]) -> dict[str, set[str]]:
    """Return a customer's e-mails, phones and identifiers (id, payment methods, card fingerprints) by PII class."""
    values: dict[str, set[str]] = {"email": {customer["email"]}, "phone": {customer["phone"]}, "identifier": {customer["id"]}}
    for charge in charges:
        details = charge["billing_details"]
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        for pii_class, value in (
            ("email", details["email"]),
            ("email", charge["receipt_email"]),
            ("phone", details["phone"]),
            ("identifier", charge["payment_method"]),
            ("identifier", card.get("fingerprint")),
        ):
            if value:
                values[pii_class].add(value)
    return values


def pseudonyms_of(home: Path, values: dict[str, set[str]]) -> set[str]:
    """Return the tenant's pseudonyms of values grouped by PII class."""
    pseudonym = pseudonymizer(home).pseudonym
    return {t.cast(str, pseudonym(pii_class, value)) for pii_class, group in values.items() for value in group}


def file_contents(folder: Path) -> dict[str, bytes]:
    """Return the bytes of every file under `folder` (the lock file excluded), by relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".tenant.lock"
    }


#: The stored columns of each loaded stream that hold e-mails, phones or identifiers (as pseudonyms or tokens).
LINK_COLUMNS = {
    "customers": ("id", "email", "phone", "shipping_phone"),
    "charges": ("customer", "payment_method", "card_fingerprint", "receipt_email", "billing_email", "billing_phone"),
    "invoices": ("customer", "customer_email", "customer_phone"),
}


def duckdb_pseudonyms(home: Path, stream: str) -> set[str]:
    """Return every pseudonym stored in the link columns of a stream's DuckDB table."""
    columns = ", ".join(LINK_COLUMNS[stream])
    rows = query(home, f"SELECT {columns} FROM stripe.{stream}")  # noqa: S608 - fixed names
    return stored_pseudonyms(value for row in rows for value in row)


def parquet_pseudonyms(home: Path, stream: str) -> set[str]:
    """Return every pseudonym stored in the link columns of a stream's Parquet files (read with the keys)."""
    table = read_lake(home, stream)
    present = [name for name in LINK_COLUMNS[stream] if name in table.column_names]
    return stored_pseudonyms(value for name in present for value in table.column(name).to_pylist())
