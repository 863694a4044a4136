"""`spendlake transform` on a tenant that has loaded only some sources, or only some tables of a source.

The repository's dbt project runs on a warehouse loaded by target-warehouse:
tables not loaded yet must build as empty staging models, and every model and
test must still pass.
"""

from __future__ import annotations

import csv
import datetime
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from spendlake.paths import dbt_work_dir
from tests.target.support import TENANT, query, record_message, run_target, schema_message, state_message

SPENDLAKE = Path(sys.executable).parent / "spendlake"
PROJECT = Path(__file__).resolve().parents[2] / "transform"

SOURCE_TABLES = {
    "google_ads": ["campaign_daily_metrics", "campaigns"],
    "facebook": ["ads_insights", "campaigns"],
    "google_analytics": ["traffic_daily", "properties"],
    "stripe": ["charges", "refunds"],
    "magento": ["orders", "creditmemos"],
}

DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
TEXT = {"type": ["string", "null"]}
INTEGER = {"type": ["integer", "null"]}
BOOLEAN = {"type": ["boolean", "null"]}

CHARGE_PROPERTIES = {
    "id": {"type": "string"},
    "created": DATE_TIME,
    "amount": INTEGER,
    "amount_captured": INTEGER,
    "amount_refunded": INTEGER,
    "currency": TEXT,
    "status": TEXT,
    "paid": BOOLEAN,
    "refunded": BOOLEAN,
    "utm_source": TEXT,
    "utm_medium": TEXT,
    "utm_campaign": TEXT,
    "_sdc_deleted_at": DATE_TIME,
}

REFUND_PROPERTIES = {
    "id": {"type": "string"},
    "created": DATE_TIME,
    "amount": INTEGER,
    "currency": TEXT,
    "charge": TEXT,
    "status": TEXT,
    "_sdc_deleted_at": DATE_TIME,
}

ACTION_LIST = {
    "type": ["array", "null"],
    "items": {"type": "object", "properties": {"action_type": TEXT, "value": TEXT}},
}

INSIGHT_PROPERTIES = {
    "account_id": {"type": "string"},
    "account_currency": TEXT,
    "campaign_id": TEXT,
    "campaign_name": TEXT,
    "ad_id": {"type": "string"},
    "date_start": {"type": "string", "format": "date"},
    "spend": {"type": ["number", "null"]},
    "impressions": INTEGER,
    "clicks": INTEGER,
    "actions": ACTION_LIST,
    "action_values": ACTION_LIST,
}


def charge(charge_id: str, created: str, amount: int, currency: str, status: str = "succeeded") -> dict[str, Any]:
    captured = amount if status == "succeeded" else 0
    return {
        "id": charge_id,
        "created": created,
        "amount": amount,
        "amount_captured": captured,
        "amount_refunded": 0,
        "currency": currency,
        "status": status,
        "paid": status == "succeeded",
        "refunded": False,
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "March Sale",
        "_sdc_deleted_at": None,
    }


def insight(ad_id: str, spend: float, purchases: str, purchase_value: str) -> dict[str, Any]:
    return {
        "account_id": "act_1",
        "account_currency": "EUR",
        "campaign_id": "2385",
        "campaign_name": "Spring Sale",
        "ad_id": ad_id,
        "date_start": "2024-03-04",
        "spend": spend,
        "impressions": 150,
        "clicks": 6,
        "actions": [
            {"action_type": "link_click", "value": "6"},
            {"action_type": "offsite_conversion.fb_pixel_purchase", "value": purchases},
        ],
        "action_values": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": purchase_value}],
    }


def load_stripe(home: Path) -> None:
    """Load charges and refunds: USD 25.00 + 10.00 on 4 March, EUR 40.00 and a USD 5.00 refund on 5 March."""
    lines = [
        schema_message("charges", CHARGE_PROPERTIES),
        record_message("charges", charge("ch_1", "2024-03-04T10:00:00Z", 2500, "usd")),
        record_message("charges", charge("ch_2", "2024-03-04T18:30:00Z", 1000, "usd")),
        record_message("charges", charge("ch_3", "2024-03-04T19:00:00Z", 700, "usd", status="failed")),
        record_message("charges", charge("ch_4", "2024-03-05T09:15:00Z", 4000, "eur")),
        schema_message("refunds", REFUND_PROPERTIES),
        record_message(
            "refunds",
            {
                "id": "re_1",
                "created": "2024-03-05T11:00:00Z",
                "amount": 500,
                "currency": "usd",
                "charge": "ch_1",
                "status": "succeeded",
                "_sdc_deleted_at": None,
            },
        ),
        state_message({"stripe": "done"}),
    ]
    assert run_target(home, lines, source="stripe")[-1]["stripe"] == "done"


def load_facebook_insights(home: Path) -> None:
    """Load facebook.ads_insights alone: two ads of one campaign on 4 March, EUR 10.50 and 4.25 of spend."""
    lines = [
        schema_message("ads_insights", INSIGHT_PROPERTIES, ["ad_id", "date_start"]),
        record_message("ads_insights", insight("ad_1", 10.5, "2", "59.90")),
        record_message("ads_insights", insight("ad_2", 4.25, "1", "20.10")),
        state_message({"facebook": "done"}),
    ]
    assert run_target(home, lines, source="facebook")[-1]["facebook"] == "done"


def usd_per_eur(on_date: datetime.date) -> Decimal:
    """Return the USD rate of the fx_rates seed in force on `on_date` (the latest one dated on or before it)."""
    with (PROJECT / "seeds" / "fx_rates.csv").open(newline="") as seed:
        rates = [
            (datetime.date.fromisoformat(row["rate_date"]), Decimal(row["per_eur"]))
            for row in csv.DictReader(seed)
            if row["currency"] == "USD"
        ]
    return max(rate for rate in rates if rate[0] <= on_date)[1]


def transform(home: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(SPENDLAKE), "transform", "--tenant", TENANT, "--home", str(home), "--project-dir", str(PROJECT),
        "--reporting-currency", "USD", "--reporting-timezone", "UTC", "build",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def node_statuses(home: Path) -> dict[str, str]:
    run_results = json.loads((dbt_work_dir(home, TENANT) / "target" / "run_results.json").read_text())
    return {result["unique_id"]: result["status"] for result in run_results["results"]}


def missing_table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "is not loaded yet" in line]


def test_stripe_only_tenant_builds(spendlake_env: Path) -> None:
    load_stripe(spendlake_env)

    result = transform(spendlake_env)

    assert result.returncode == 0, result.stdout + result.stderr
    statuses = node_statuses(spendlake_env)
    assert "model.spendlake.revenue_daily" in statuses
    assert "test.spendlake.assert_source_freshness_lists_every_source" in statuses
    failed = {node: status for node, status in statuses.items() if status not in ("success", "pass")}
    assert failed == {}

    revenue = query(
        spendlake_env,
        "select date, store, currency, orders, gross, refunds, net, net_rc from marts.revenue_daily "
        "order by date, currency",
    )
    # ch_3 failed, so it is no revenue, and re_1 counts on the date of the refund.
    assert [row[:7] for row in revenue] == [
        (datetime.date(2024, 3, 4), "stripe", "USD", 2, Decimal("35"), Decimal("0"), Decimal("35")),
        (datetime.date(2024, 3, 5), "stripe", "EUR", 1, Decimal("40"), Decimal("0"), Decimal("40")),
        (datetime.date(2024, 3, 5), "stripe", "USD", 0, Decimal("0"), Decimal("5"), Decimal("-5")),
    ]
    assert revenue[0][7] == Decimal("35")
    assert abs(revenue[1][7] - Decimal("40") * usd_per_eur(datetime.date(2024, 3, 5))) < Decimal("1e-6")
    assert revenue[2][7] == Decimal("-5")
    assert query(spendlake_env, "select count(*) from marts.ad_performance_daily") == [(0,)]
    assert query(spendlake_env, "select count(*) from marts.traffic_daily") == [(0,)]
    totals = query(
        spendlake_env,
        "select date, channel, spend_rc, store_revenue_rc from marts.marketing_performance_daily order by date",
    )
    assert [(day, channel, spend) for day, channel, spend, _ in totals] == [
        (datetime.date(2024, 3, 4), "total", Decimal("0")),
        (datetime.date(2024, 3, 5), "total", Decimal("0")),
    ]
    assert totals[0][3] == Decimal("35")
    assert totals[1][3] == revenue[1][7] + revenue[2][7]

    freshness = query(
        spendlake_env,
        "select source, last_loaded_at is not null, last_data_date, rows from marts.source_freshness order by source",
    )
    assert freshness == [
        ("facebook", False, None, 0),
        ("google_ads", False, None, 0),
        ("google_analytics", False, None, 0),
        ("magento", False, None, 0),
        ("stripe", True, datetime.date(2024, 3, 5), 5),
    ]

    logged = missing_table_lines(result.stdout)
    expected = [
        f"{source}.{table}" for source, tables in SOURCE_TABLES.items() if source != "stripe" for table in tables
    ]
    for table in expected:
        assert len([line for line in logged if f"Source table {table} is not loaded yet" in line]) == 1, table
    assert len(logged) == len(expected)


def test_source_without_one_table_builds(spendlake_env: Path) -> None:
    load_facebook_insights(spendlake_env)

    result = transform(spendlake_env)

    assert result.returncode == 0, result.stdout + result.stderr
    statuses = node_statuses(spendlake_env)
    relationship_tests = [node for node in statuses if "relationships_when_loaded_stg_meta" in node]
    assert relationship_tests != []
    failed = {node: status for node, status in statuses.items() if status not in ("success", "pass")}
    assert failed == {}

    # Without the campaign list, the campaign name comes from the insights rows.
    ads = query(
        spendlake_env,
        "select date, platform, account_id, campaign_id, campaign_name, campaign_key, currency, spend, "
        "impressions, clicks, conversions, conversion_value from marts.ad_performance_daily",
    )
    assert ads == [
        (
            datetime.date(2024, 3, 4), "meta", "act_1", "2385", "Spring Sale", "spring_sale", "EUR",
            Decimal("14.75"), 300, 12, 3.0, Decimal("80"),
        ),
    ]
    assert query(spendlake_env, "select count(*) from staging.stg_meta__campaigns") == [(0,)]
    freshness = query(spendlake_env, "select source, rows from marts.source_freshness where rows > 0")
    assert freshness == [("facebook", 2)]

    logged = missing_table_lines(result.stdout)
    assert any("Source table facebook.campaigns is not loaded yet" in line for line in logged)
    assert not any("facebook.ads_insights" in line for line in logged)
