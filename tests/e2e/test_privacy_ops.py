"""End to end: the GDPR commands on the demo tenant, loaded by `spendlake demo` through Meltano.

The module runs once, in a temporary project and home. The demo loads all
sources, and a demo customer is exported, then erased by e-mail. The demo runs
a second time, with a day of sandbox changes. Retention then purges charges
older than 30 days under a test policy, the record is generated and the audit
log is verified. Finally a copy of the log is tampered with.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import typing as t
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from privacy.erasures import load_erased
from privacy.field_crypto import blind_index, is_field_token
from privacy.keys import load_tenant_keys
from privacy.pseudonyms import Pseudonymizer
from sandbox.server import state_path
from sandbox.stripe_data import StripeWorld
from spendlake.cli import main
from spendlake.demo import DEMO_TENANT, run_demo
from targets.warehouse.duckdb_store import connect_warehouse
from targets.warehouse.parquet_store import read_parquet_file
from tests.e2e.project import copy_project_files
from tests.e2e.test_demo import files_containing
from tests.privacy.gdpr_support import charges_of, customer_with_charges, linked_values

pytestmark = pytest.mark.e2e

SOURCES = ("facebook", "google_ads", "google_analytics", "magento", "stripe")
RETENTION_DAYS = 30


@pytest.fixture(autouse=True)
def local_master_key(spendlake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open the demo's keyring with its local master-key file, as the demo itself does."""
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY", raising=False)


def privacy_cli(home: Path, policy: Path | None, *arguments: str) -> Result:
    """Run `spendlake privacy ARGUMENTS` for the demo tenant in-process."""
    options = ["--tenant", DEMO_TENANT, "--home", str(home)]
    if policy is not None:
        options += ["--policy", str(policy)]
    command = arguments[:2] if arguments[0] == "audit" else arguments[:1]
    return CliRunner().invoke(main, ["privacy", *command, *arguments[len(command) :], *options])


def retention_policy(project: Path) -> Path:
    """Write the demo policy with charges kept 30 days by their `created` time."""
    document = yaml.safe_load((project / "policies" / "demo.yaml").read_text(encoding="utf-8"))
    document["retention"] = {"streams": {"stripe.charges": {"keep": f"{RETENTION_DAYS} days", "date_field": "created"}}}
    path = project / "retention-test.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def privacy_run(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    """Run the demo, export and erase a customer, run the demo again, then retention, record and verify."""
    root = tmp_path_factory.mktemp("privacy-demo")
    project = root / "project"
    project.mkdir()
    copy_project_files(project)
    home = project / ".spendlake"
    policy = project / "policies" / "demo.yaml"
    patcher = pytest.MonkeyPatch()
    patcher.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    patcher.delenv("MELTANO_STATE_BACKEND_URI", raising=False)
    patcher.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")

    run_demo(home, project_root=project, out=io.StringIO())
    state = json.loads(state_path(home / "sandbox").read_text())
    world = StripeWorld(state["seed"], state["anchor"], state["ticks"])
    customer = customer_with_charges(world)
    charges = charges_of(world, customer["id"])

    exported = privacy_cli(home, policy, "export", "--email", customer["email"])
    erased = privacy_cli(home, policy, "erase", "--email", customer["email"], "--yes")
    run_demo(home, project_root=project, out=io.StringIO())

    charges_before_retention = warehouse_rows(home, "SELECT count(*) FROM stripe.charges")[0][0]
    retention_started = dt.datetime.now(dt.UTC)
    retention = privacy_cli(home, retention_policy(project), "retention")
    record = privacy_cli(home, policy, "record", "--format", "json")
    verified = privacy_cli(home, None, "audit", "verify")

    yield {
        "project": project,
        "home": home,
        "customer": customer,
        "charges": charges,
        "world": world,
        "export": exported,
        "erase": erased,
        "retention": retention,
        "retention_started": retention_started,
        "charges_before_retention": charges_before_retention,
        "record": record,
        "verify": verified,
    }
    patcher.undo()


def warehouse_rows(home: Path, sql: str) -> list[tuple[t.Any, ...]]:
    connection = connect_warehouse(home, DEMO_TENANT, read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def subject_pseudonyms(run: dict[str, t.Any]) -> set[str]:
    """Every pseudonym of the erased customer under the demo's key: id, e-mails, phones, cards."""
    pseudonym = Pseudonymizer(load_tenant_keys(run["home"], DEMO_TENANT).hmac_key, default_phone_region="US").pseudonym
    values = linked_values(run["customer"], run["charges"])
    return {t.cast(str, pseudonym(pii_class, value)) for pii_class, group in values.items() for value in group}


def link_columns(home: Path) -> dict[tuple[str, str], list[str]]:
    """Return the stored e-mail, phone and identifier columns of every table, from the warehouse's column catalog."""
    rows = warehouse_rows(
        home,
        "SELECT source, stream, column_name FROM _spendlake.columns "
        "WHERE pii_class IN ('email', 'phone', 'identifier') AND pii_action IN ('hmac', 'encrypt')",
    )
    columns: dict[tuple[str, str], list[str]] = {}
    for source, stream, name in rows:
        columns.setdefault((source, stream), []).append(name)
    return columns


def pseudonyms_in(values: t.Iterable[t.Any]) -> set[str]:
    return {blind_index(value) if is_field_token(value) else value for value in values if isinstance(value, str)}


def test_export_before_erase_decrypts_subject(privacy_run: dict[str, t.Any]) -> None:
    result, customer = privacy_run["export"], privacy_run["customer"]

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (stored,) = document["tables"]["stripe.customers"]
    assert stored["email"] == customer["email"]
    exported_charges = {row["id"] for row in document["tables"]["stripe.charges"]}
    assert {charge["id"] for charge in privacy_run["charges"]} <= exported_charges


def test_erase_reports_rows(privacy_run: dict[str, t.Any]) -> None:
    result = privacy_run["erase"]

    assert result.exit_code == 0, result.output
    assert "  stripe.customers: 1 row\n" in result.output
    assert "  stripe.charges: " in result.output
    assert "copied under a new key" in result.output


def test_subject_values_absent_from_every_file(privacy_run: dict[str, t.Any], tmp_path: Path) -> None:
    customer = privacy_run["customer"]
    address = customer["address"] or {}
    needles = [value for value in (customer["email"], customer["phone"], customer["name"], address.get("line1")) if value]
    assert len(needles) >= 3

    leaking = files_containing(privacy_run["project"], needles, tmp_path)

    assert [str(path.relative_to(privacy_run["project"])) for path in leaking] == []


def test_no_duckdb_row_carries_subject(privacy_run: dict[str, t.Any]) -> None:
    home = privacy_run["home"]
    subject = subject_pseudonyms(privacy_run)
    columns = link_columns(home)
    assert ("stripe", "customers") in columns

    for (source, stream), names in columns.items():
        selected = ", ".join(f'"{name}"' for name in names)
        rows = warehouse_rows(home, f'SELECT {selected} FROM "{source}"."{stream}"')  # noqa: S608
        assert subject.isdisjoint(pseudonyms_in(value for row in rows for value in row)), f"{source}.{stream}"


def test_no_parquet_row_carries_subject(privacy_run: dict[str, t.Any]) -> None:
    home = privacy_run["home"]
    subject = subject_pseudonyms(privacy_run)
    keys = load_tenant_keys(home, DEMO_TENANT)
    lake = home / "warehouse" / DEMO_TENANT / "parquet"
    checked = 0

    for (source, stream), names in link_columns(home).items():
        for path in sorted((lake / source / stream).glob("*.parquet")):
            table = read_parquet_file(path, keys)
            values = (value for name in names if name in table.column_names for value in table.column(name).to_pylist())
            assert subject.isdisjoint(pseudonyms_in(values)), str(path)
            checked += 1
    assert checked > 10


def test_erasure_list_holds_subject(privacy_run: dict[str, t.Any]) -> None:
    home, customer = privacy_run["home"], privacy_run["customer"]
    pseudonym = Pseudonymizer(load_tenant_keys(home, DEMO_TENANT).hmac_key).pseudonym

    erased = load_erased(home, DEMO_TENANT)

    assert pseudonym("email", customer["email"]) in erased
    assert pseudonym("identifier", customer["id"]) in erased


def test_retention_purges_old_charges(privacy_run: dict[str, t.Any]) -> None:
    result, home = privacy_run["retention"], privacy_run["home"]
    cutoff = privacy_run["retention_started"] - dt.timedelta(days=RETENTION_DAYS)

    assert result.exit_code == 0, result.output
    assert "  stripe.charges: keep 30 days by created" in result.output
    remaining, oldest = warehouse_rows(home, "SELECT count(*), min(created) FROM stripe.charges")[0]
    assert 0 < remaining < privacy_run["charges_before_retention"]
    assert oldest >= cutoff
    keys = load_tenant_keys(home, DEMO_TENANT)
    lake = sorted((home / "warehouse" / DEMO_TENANT / "parquet" / "stripe" / "charges").glob("*.parquet"))
    created = [value for path in lake for value in read_parquet_file(path, keys, columns=["created"]).column("created").to_pylist()]
    assert created
    assert min(created) >= cutoff


def test_record_names_each_source_and_class(privacy_run: dict[str, t.Any]) -> None:
    result = privacy_run["record"]

    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [source["name"] for source in record["sources"]] == list(SOURCES)
    classes = {
        source["name"]: {pii_class for stream in source["streams"] for pii_class in stream["personal_data"]}
        for source in record["sources"]
    }
    assert classes["stripe"] == {"email", "phone", "identifier", "name", "address", "ip", "free_text", "secret"}
    assert classes["magento"] == {"email", "identifier", "name", "ip", "date_of_birth"}
    assert classes["facebook"] == classes["google_ads"] == classes["google_analytics"] == {"name"}
    assert record["controller"]["name"] == "Demo Shop Ltd (the agency's client)"


def test_audit_log_verifies(privacy_run: dict[str, t.Any]) -> None:
    result = privacy_run["verify"]

    assert result.exit_code == 0, result.output
    assert "4 events, hash chain intact. OK" in result.output


def test_audit_verify_detects_tampering(privacy_run: dict[str, t.Any], tmp_path: Path) -> None:
    edited_home, cut_home = tmp_path / "edited", tmp_path / "cut"
    for copy in (edited_home, cut_home):
        shutil.copytree(privacy_run["home"] / "privacy", copy / "privacy")
    edited = edited_home / "privacy" / DEMO_TENANT / "audit.jsonl"
    data = bytearray(edited.read_bytes())
    position = data.index(b'"rows_by_table"')
    data[position + 1] = ord("R")
    edited.write_bytes(bytes(data))
    cut = cut_home / "privacy" / DEMO_TENANT / "audit.jsonl"
    lines = cut.read_text().splitlines()
    cut.write_text("\n".join([lines[0], *lines[2:]]) + "\n")

    edited_result = privacy_cli(edited_home, None, "audit", "verify")
    cut_result = privacy_cli(cut_home, None, "audit", "verify")

    assert edited_result.exit_code == 1
    assert "broken at line 1: its content does not match its 'hash'" in edited_result.output
    assert cut_result.exit_code == 1
    assert "broken at line 2: its 'prev' does not match" in cut_result.output
