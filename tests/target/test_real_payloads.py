"""Public API payloads (Meta insights, Stripe customers) loaded through the target as a tap would send them."""

from __future__ import annotations

import json
from pathlib import Path

from privacy.keys import load_tenant_keys
from targets.warehouse.parquet_store import read_parquet_file
from .support import (
    TENANT,
    files_under,
    fixtures_folder,
    query,
    record_message,
    run_target,
    schema_message,
    tenant_folder,
)

INSIGHTS_PROPERTIES = {
    "ad_id": {"type": "string"},
    "date_start": {"type": "string", "format": "date"},
    "product_id": {"type": "string"},
    "account_currency": {"type": ["null", "string"]},
    "campaign_name": {"type": ["null", "string"]},
    "spend": {"type": ["null", "string"]},
    "impressions": {"type": ["null", "string"]},
    "actions": {"type": ["null", "array"], "items": {"type": "object"}},
    "outbound_clicks": {"type": ["null", "array"], "items": {"type": "object"}},
}
CUSTOMER_PROPERTIES = {
    "id": {"type": "string"},
    "created": {"type": "integer"},
    "balance": {"type": ["null", "integer"]},
    "delinquent": {"type": ["null", "boolean"]},
    "metadata": {"type": ["null", "object"]},
    "email": {"type": ["null", "string"], "x-pii": "email", "x-pii-applied": "keep"},
    "name": {"type": ["null", "string"], "x-pii": "name", "x-pii-applied": "keep"},
}


def _payload(relative: str) -> dict:
    return json.loads((fixtures_folder() / relative).read_text(encoding="utf-8"))


def test_meta_insights_rows_load(home: Path) -> None:
    rows = _payload("facebook/airbyte_ads_insights_action_product_id.json")["data"]
    records = [record_message("ads_insights", {name: row.get(name) for name in INSIGHTS_PROPERTIES}) for row in rows]

    run_target(
        home,
        [schema_message("ads_insights", INSIGHTS_PROPERTIES, ("ad_id", "date_start", "product_id")), *records],
        source="facebook",
    )

    stored = query(
        home,
        "SELECT ad_id, product_id, date_start::VARCHAR, spend, json_extract_string(actions, '$[0].action_type') "
        "FROM facebook.ads_insights ORDER BY ad_id, product_id",
    )
    expected = sorted(
        (row["ad_id"], row["product_id"], row["date_start"], row["spend"], row["actions"][0]["action_type"])
        for row in rows
    )
    assert stored == expected


def test_stripe_customer_pii_encrypted_at_rest(home: Path) -> None:
    customers = _payload("stripe/airbyte_list_customers.json")["data"]
    emails = [customer["email"] for customer in customers if customer.get("email")]
    assert emails
    records = [record_message("customers", {name: row.get(name) for name in CUSTOMER_PROPERTIES}) for row in customers]

    run_target(home, [schema_message("customers", CUSTOMER_PROPERTIES), *records])

    assert query(home, "SELECT email FROM stripe.customers ORDER BY id") == [(email,) for email in emails]
    (parquet_file,) = files_under(tenant_folder(home) / "parquet")
    table = read_parquet_file(parquet_file, load_tenant_keys(home, TENANT))
    assert table.column("email").to_pylist() == emails
    for path in files_under(home):
        data = path.read_bytes()
        for email in emails:
            assert email.encode() not in data, f"a customer email is readable in {path.relative_to(home)}"
