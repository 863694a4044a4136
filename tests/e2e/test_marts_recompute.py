"""End to end: spend, revenue, CPA, ROAS and MER of one week, recomputed from the raw tables, match the marts.

The demo's `daily` Meltano job loaded the sandbox and ran `dbt build`. Here
the same figures come straight from the loaded source tables, with the rules of
transform/README.md written again in Python. Google micros and Stripe minor
units become major units, exchange rates come from the seed file "as of" each
row's date, and order times become dates in the job's reporting time zone.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import typing as t
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest

from spendlake.currencies import exponent
from spendlake.demo import DEMO_TENANT
from spendlake.paths import dbt_work_dir
from targets.warehouse.duckdb_store import connect_warehouse

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RATES_FILE = REPO / "transform" / "seeds" / "fx_rates.csv"
#: Relative tolerance: the marts round each converted row to 9 decimals.
TOLERANCE = Decimal("1e-9")
GOOGLE_PAID_MEDIUMS = {"cpc", "ppc", "paid_search"}


@pytest.fixture(autouse=True)
def local_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open the demo's keyring with its local master-key file, as the demo itself does."""
    monkeypatch.delenv("SPENDLAKE_MASTER_KEY", raising=False)
    monkeypatch.setenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", "true")


class Rates:
    """The seed's rates (units per EUR), looked up as of a date, as the marts do."""

    def __init__(self, path: Path) -> None:
        self._rates: dict[str, list[tuple[dt.date, Decimal]]] = {}
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                self._rates.setdefault(row["currency"], []).append((dt.date.fromisoformat(row["rate_date"]), Decimal(row["per_eur"])))

    def per_eur(self, currency: str, on: dt.date) -> Decimal:
        dated = [(day, rate) for day, rate in self._rates[currency.upper()] if day <= on]
        assert dated, f"no rate for {currency} on {on}"
        return max(dated)[1]

    def convert(self, amount: Decimal, currency: str, on: dt.date, to: str) -> Decimal:
        return amount / self.per_eur(currency, on) * self.per_eur(to, on)


@pytest.fixture(scope="module")
def job(demo: dict[str, t.Any]) -> dict[str, t.Any]:
    """The demo home, the reporting settings the job's dbt run used, and a read-only warehouse connection."""
    run_results = json.loads((dbt_work_dir(demo["home"], DEMO_TENANT) / "target" / "run_results.json").read_text())
    variables = run_results["args"]["vars"]
    return {
        "home": demo["home"],
        "currency": variables["reporting_currency"],
        "zone": zoneinfo.ZoneInfo(variables["reporting_timezone"]),
        "rates": Rates(RATES_FILE),
    }


def rows(home: Path, sql: str, parameters: list[t.Any] | None = None) -> list[tuple[t.Any, ...]]:
    connection = connect_warehouse(home, DEMO_TENANT, read_only=True)
    try:
        return connection.execute(sql, parameters or []).fetchall()
    finally:
        connection.close()


def chosen_week(home: Path) -> tuple[dt.date, dt.date]:
    """Seven full days ending ten days before the last day with Google Ads metrics (settled numbers)."""
    last = rows(home, "select max(date) from google_ads.campaign_daily_metrics")[0][0]
    end = last - dt.timedelta(days=10)
    return end - dt.timedelta(days=6), end


def close(left: Decimal, right: Decimal) -> bool:
    return abs(left - right) <= TOLERANCE * max(abs(left), abs(right), Decimal(1))


def google_ads_week(job: dict[str, t.Any], first: dt.date, last: dt.date) -> dict[str, Decimal]:
    """Spend from Google Ads, and key events and purchase revenue of Google paid sessions from GA4, converted."""
    rates, currency = job["rates"], job["currency"]
    spend = Decimal(0)
    for day, code, micros in rows(
        job["home"],
        "select date, currency_code, cost_micros from google_ads.campaign_daily_metrics where date between ? and ?",
        [first, last],
    ):
        spend += rates.convert(Decimal(micros) / 1_000_000, code, day, currency)

    conversions, revenue = Decimal(0), Decimal(0)
    for day, code, source, medium, key_events, purchase_revenue in rows(
        job["home"],
        "select date, currency_code, session_source, session_medium, key_events, purchase_revenue "
        "from google_analytics.traffic_daily where date between ? and ?",
        [first, last],
    ):
        if (source or "").strip().lower() == "google" and (medium or "").strip().lower() in GOOGLE_PAID_MEDIUMS:
            conversions += Decimal(str(key_events or 0))
            revenue += rates.convert(Decimal(str(purchase_revenue or 0)), code, day, currency)
    return {"spend": spend, "conversions": conversions, "revenue": revenue}


def local_date(instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.date:
    return instant.astimezone(zone).date()


def store_revenue_week(job: dict[str, t.Any], first: dt.date, last: dt.date) -> Decimal:
    """Net store revenue: succeeded Stripe charges and Magento orders that are not canceled, less refunds."""
    rates, currency, zone, home = job["rates"], job["currency"], job["zone"], job["home"]

    def add(total: Decimal, amount: Decimal, code: str, instant: dt.datetime) -> Decimal:
        day = local_date(instant, zone)
        return total + rates.convert(amount, code, day, currency) if first <= day <= last else total

    net = Decimal(0)
    for created, code, captured in rows(
        home, "select created, currency, amount_captured from stripe.charges where status = 'succeeded' and _sdc_deleted_at is null"
    ):
        net = add(net, Decimal(captured).scaleb(-exponent(code)), code, created)
    for created, code, amount, status in rows(home, "select created, currency, amount, status from stripe.refunds where _sdc_deleted_at is null"):
        if status not in ("failed", "canceled"):
            net = add(net, -Decimal(amount).scaleb(-exponent(code)), code, created)
    for created, code, total, state in rows(home, "select created_at, base_currency_code, base_grand_total, state from magento.orders"):
        if state != "canceled":
            net = add(net, Decimal(str(total)), code, created)
    for created, code, total, state in rows(home, "select created_at, base_currency_code, base_grand_total, state from magento.creditmemos"):
        if state != 3:
            net = add(net, -Decimal(str(total)), code, created)
    return net


def mart_week(home: Path, channel: str, first: dt.date, last: dt.date) -> dict[str, Decimal]:
    spend, conversions, revenue, store = rows(
        home,
        "select sum(spend_rc), sum(conversions), sum(revenue_rc), sum(store_revenue_rc) "
        "from marts.marketing_performance_daily where channel = ? and date between ? and ?",
        [channel, first, last],
    )[0]
    return {
        "spend": Decimal(spend),
        "conversions": Decimal(str(conversions)),
        "revenue": Decimal(revenue),
        "store_revenue": Decimal(store) if store is not None else None,
    }


def test_google_ads_week_matches_raw_tables(job: dict[str, t.Any]) -> None:
    first, last = chosen_week(job["home"])
    raw = google_ads_week(job, first, last)
    mart = mart_week(job["home"], "google_ads", first, last)

    assert raw["spend"] > 0
    assert raw["conversions"] > 0
    assert close(mart["spend"], raw["spend"]), (mart["spend"], raw["spend"])
    assert close(mart["conversions"], raw["conversions"]), (mart["conversions"], raw["conversions"])
    assert close(mart["revenue"], raw["revenue"]), (mart["revenue"], raw["revenue"])
    # CPA and ROAS of the week are ratios of the week's sums.
    assert close(mart["spend"] / mart["conversions"], raw["spend"] / raw["conversions"])
    assert close(mart["revenue"] / mart["spend"], raw["revenue"] / raw["spend"])


def test_week_store_revenue_and_mer_match_raw_tables(job: dict[str, t.Any]) -> None:
    first, last = chosen_week(job["home"])
    store = store_revenue_week(job, first, last)
    total = mart_week(job["home"], "total", first, last)

    assert store > 0
    assert close(total["store_revenue"], store), (total["store_revenue"], store)
    assert close(total["store_revenue"] / total["spend"], store / total["spend"])


def test_recomputation_sees_a_changed_rate(job: dict[str, t.Any], tmp_path: Path) -> None:
    """The raw-table side depends on the rates: doubling NZD's rate changes the Google spend it computes."""
    first, last = chosen_week(job["home"])
    text = RATES_FILE.read_text()
    doubled = tmp_path / "rates.csv"
    lines = [text.splitlines()[0]]
    for line in text.splitlines()[1:]:
        day, code, rate = line.split(",")
        lines.append(f"{day},{code},{Decimal(rate) * 2 if code == 'NZD' else rate}")
    doubled.write_text("\n".join(lines) + "\n")

    changed = google_ads_week({**job, "rates": Rates(doubled)}, first, last)
    mart = mart_week(job["home"], "google_ads", first, last)

    assert not close(mart["spend"], changed["spend"])
