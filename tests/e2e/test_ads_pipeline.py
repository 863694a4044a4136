"""End to end: both ad platforms through mapper-pii into the warehouse, run twice by Meltano."""

from __future__ import annotations

import re
import subprocess
import time
import typing as t
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sandbox.ads_data import AdsWorld
from sandbox.meta_api import DEMO_ACCESS_TOKEN
from sandbox.server import start_server
from sandbox.stripe_data import StripeWorld
from tests.e2e.project import MeltanoProject

SEED = 20261205
MASTER_KEY = "YWRzIHBpcGVsaW5lIHRlc3QgbWFzdGVyIGtleSAzMiE="
PIPELINE = ("tap-google-ads", "mapper-pii", "target-warehouse", "tap-facebook", "mapper-pii", "target-warehouse")
HISTORY_DAYS = 90
GOOGLE_IDS = ("4567890123", "7890123456")
META_IDS = ("100200300400500", "600700800900100")


@pytest.fixture(autouse=True)
def spendlake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the module's master key for every test: the warehouse is shared across them."""
    monkeypatch.setenv("SPENDLAKE_MASTER_KEY", MASTER_KEY)


class AdsPipeline(MeltanoProject):
    """The project wired to a sandbox per run; keeps each run's request counts."""

    def __init__(self, root: Path, home: Path) -> None:
        super().__init__(root, home)
        self.counts: list[dict[str, dict[str, dict[str, int]]]] = []

    def run(self, world: AdsWorld) -> subprocess.CompletedProcess[str]:
        stripe_world = StripeWorld(world.seed, world.anchor, world.ticks)
        with start_server(stripe_world, ads_world=world) as server:
            env = {
                "MELTANO_STATE_BACKEND_URI": (self.home / "state").as_uri(),
                "TAP_GOOGLE_ADS_API_URL": server.url,
                "TAP_GOOGLE_ADS_TOKEN_URL": f"{server.url}/google/oauth2/token",
                "TAP_FACEBOOK_API_URL": server.url,
            }
            completed = self.meltano_run(PIPELINE, env)
            self.counts.append({"google": server.google_ads_session.counts(), "meta": server.meta_session.counts()})
        return completed


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    """Run both taps twice: on a fresh world, then after a tick raised a past day's conversions."""
    base = tmp_path_factory.mktemp("ads-e2e")
    home = base / "project" / ".spendlake"
    patcher = pytest.MonkeyPatch()
    patcher.setenv("SPENDLAKE_HOME", str(home))
    patcher.setenv("SPENDLAKE_MASTER_KEY", MASTER_KEY)
    patcher.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", raising=False)

    # The taps read up to the real today, so the sandbox's days must end near now.
    anchor = int(time.time()) - 2 * 3600
    pipeline = AdsPipeline(base / "project", home)
    first_world = AdsWorld(SEED, anchor)
    first_started = datetime.now(UTC)
    first = pipeline.run(first_world)
    assert first.returncode == 0, first.stderr[-6000:]
    late_rows_after_first = late_rows(pipeline, first_world)

    second_world = AdsWorld(SEED, anchor, [anchor + 3600])
    second = pipeline.run(second_world)
    assert second.returncode == 0, second.stderr[-6000:]

    yield {
        "pipeline": pipeline,
        "first_world": first_world,
        "second_world": second_world,
        "first_started": first_started,
        "late_rows_after_first": late_rows_after_first,
        "logs": [first.stderr + first.stdout, second.stderr + second.stdout],
    }
    patcher.undo()


def first_day_read(account: str, world: AdsWorld, started: datetime) -> date:
    """Return the first day the taps read for an account on their first run."""
    zone = ZoneInfo(world.account(account).time_zone)
    return started.astimezone(zone).date() - timedelta(days=HISTORY_DAYS - 1)


def late_rows(pipeline: AdsPipeline, world: AdsWorld) -> dict[str, t.Any]:
    google_day = world.late_attribution_day(GOOGLE_IDS[0])
    meta_day = world.late_attribution_day("act_" + META_IDS[0])
    return {
        "google": pipeline.query(
            "select sum(conversions), count(*) from google_ads.ad_daily_metrics where customer_id = ? and date = ?",
            [int(GOOGLE_IDS[0]), google_day],
        )[0],
        "meta": pipeline.query(
            "select string_agg(actions, '|' order by ad_id), count(*) from facebook.ads_insights where account_id = ? and date_start = ?",
            [META_IDS[0], meta_day],
        )[0],
    }


@pytest.mark.parametrize("customer", GOOGLE_IDS)
def test_google_ad_days_match_the_sandbox(synced: dict[str, t.Any], customer: str) -> None:
    pipeline: AdsPipeline = synced["pipeline"]
    world: AdsWorld = synced["second_world"]
    first_day = first_day_read(customer, world, synced["first_started"])
    served = [row for row in world.google_ad_days(customer) if row.day >= first_day]

    count, cost = pipeline.query(
        "select count(*), sum(cost_micros) from google_ads.ad_daily_metrics where customer_id = ?", [int(customer)]
    )[0]

    assert count == len(served) > 1_000
    assert cost == sum(row.cost_micros for row in served)


@pytest.mark.parametrize("account", META_IDS)
def test_meta_ad_days_match_the_sandbox(synced: dict[str, t.Any], account: str) -> None:
    pipeline: AdsPipeline = synced["pipeline"]
    world: AdsWorld = synced["second_world"]
    first_day = first_day_read("act_" + account, world, synced["first_started"])
    served = [row for row in world.meta_ad_days(account) if row.day >= first_day]

    count, spend_minor = pipeline.query(
        "select count(*), sum(round(spend * 100)) from facebook.ads_insights where account_id = ?", [account]
    )[0]

    assert count == len(served) > 1_000
    assert spend_minor == sum(row.spend_minor for row in served)


def test_keys_are_unique_after_two_runs(synced: dict[str, t.Any]) -> None:
    pipeline: AdsPipeline = synced["pipeline"]
    keys = {
        "google_ads.ad_daily_metrics": "customer_id, ad_group_id, ad_id, date",
        "google_ads.campaign_daily_metrics": "customer_id, campaign_id, date",
        "facebook.ads_insights": "account_id, ad_id, date_start",
        "facebook.ads_insights_country": "account_id, ad_id, date_start, country",
    }

    for table, key in keys.items():
        total, distinct = pipeline.query(f"select count(*), count(distinct ({key})) from {table}")[0]  # noqa: S608
        assert total == distinct > 0, table


def test_lookback_updates_late_conversions(synced: dict[str, t.Any]) -> None:
    pipeline: AdsPipeline = synced["pipeline"]
    first_world: AdsWorld = synced["first_world"]
    second_world: AdsWorld = synced["second_world"]
    before = synced["late_rows_after_first"]
    after = late_rows(pipeline, second_world)
    google_day = second_world.late_attribution_day(GOOGLE_IDS[0])
    served_before = [row for row in first_world.google_ad_days(GOOGLE_IDS[0]) if row.day == google_day]
    served_after = [row for row in second_world.google_ad_days(GOOGLE_IDS[0]) if row.day == google_day]

    assert before["google"][0] == pytest.approx(sum(row.conversions_centi for row in served_before) / 100)
    assert after["google"][0] == pytest.approx(sum(row.conversions_centi for row in served_after) / 100)
    assert after["google"][0] > before["google"][0]
    assert after["google"][1] == before["google"][1] == len(served_after)
    assert after["meta"][0] != before["meta"][0]
    assert after["meta"][1] == before["meta"][1] > 0


def test_day_without_delivery_has_no_rows(synced: dict[str, t.Any]) -> None:
    pipeline: AdsPipeline = synced["pipeline"]
    world: AdsWorld = synced["second_world"]
    day = world.no_delivery_day(GOOGLE_IDS[1])

    rows = pipeline.query(
        "select date, count(*) from google_ads.ad_daily_metrics where customer_id = ? and date between ? and ? group by 1 order by 1",
        [int(GOOGLE_IDS[1]), day - timedelta(days=1), day + timedelta(days=1)],
    )

    assert [row[0] for row in rows] == [day - timedelta(days=1), day + timedelta(days=1)]


def test_throttled_requests_are_retried(synced: dict[str, t.Any]) -> None:
    pipeline: AdsPipeline = synced["pipeline"]
    first_logs = synced["logs"][0]
    google, meta = pipeline.counts[0]["google"], pipeline.counts[0]["meta"]
    google_throttled = google["search_stream"].get("throttled", 0)
    meta_throttled = sum(outcomes.get("throttled", 0) for outcomes in meta.values())

    google_retries = len(re.findall(r"retrying /v26/customers/\d+/googleAds:searchStream", first_logs))
    meta_retries = len(re.findall(r"retrying /v26\.0/", first_logs))

    assert google_throttled >= 3
    assert meta_throttled >= 3
    assert google_retries == google_throttled
    assert meta_retries == meta_throttled
    assert google.get("search_stream", {}).get("failed", 0) == 0


def test_no_audience_name_or_token_leaks(synced: dict[str, t.Any]) -> None:
    pipeline: AdsPipeline = synced["pipeline"]
    needles = {value for value in synced["second_world"].personal_values() if len(value) >= 6}
    assert needles
    # meltano.yml contains the sandbox's demo token by design, but what a run writes must not.
    written = [path for folder in (".spendlake", ".meltano") for path in (pipeline.root / folder).rglob("*") if path.is_file()]
    assert len(written) > 10

    leaks = [value for value in {*needles, DEMO_ACCESS_TOKEN} for logs in synced["logs"] if value in logs]
    for path in written:
        data = path.read_bytes()
        leaks.extend(path.name for value in {*needles, DEMO_ACCESS_TOKEN} if value.encode() in data)
    assert leaks == []
