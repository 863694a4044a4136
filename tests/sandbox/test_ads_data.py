"""Tests of the deterministic Google Ads and Meta demo world."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from sandbox.ads_data import (
    GOOGLE_MANAGER_ID,
    GOOGLE_QUOTA_CUSTOMER_ID,
    HISTORY_DAYS,
    AdsWorld,
)

SEED = 7
# 15:00 UTC on 2026-11-01: already 2026-11-02 in Auckland (UTC+13), still 2026-11-01 in New
# York (UTC-5 since the DST change that morning) and Berlin (UTC+1).
ANCHOR = int(datetime(2026, 11, 1, 15, 0, tzinfo=UTC).timestamp())
HOUR = 3_600

GOOGLE_US = "4567890123"
GOOGLE_NZ = "7890123456"
META_EU = "act_100200300400500"
META_NZ = "act_600700800900100"
CLIENT_ACCOUNTS = (GOOGLE_US, GOOGLE_NZ, GOOGLE_QUOTA_CUSTOMER_ID, META_EU, META_NZ)


@pytest.fixture(scope="module")
def world() -> AdsWorld:
    return AdsWorld(SEED, ANCHOR)


def ad_days(world: AdsWorld, account_id: str) -> tuple:
    if account_id.startswith("act_"):
        return world.meta_ad_days(account_id)
    return world.google_ad_days(account_id)


def snapshot(world: AdsWorld) -> dict[str, object]:
    """Everything the world exposes, for comparing two worlds."""
    result: dict[str, object] = {}
    for account in world.google_customers():
        cid = account.account_id
        result[cid] = (
            account,
            world.google_budgets(cid),
            world.google_campaigns(cid),
            world.google_ad_groups(cid),
            world.google_ads(cid),
            world.google_ad_days(cid),
        )
    for account in world.meta_accounts():
        aid = account.account_id
        days = world.meta_ad_days(aid)
        countries = tuple(world.meta_country_rows(day) for day in days[:50])
        result[aid] = (
            account,
            world.meta_campaigns(aid),
            world.meta_adsets(aid),
            world.meta_ads(aid),
            days,
            countries,
        )
    return result


# Determinism and identity


def test_world_same_inputs_same_values() -> None:
    ticks = (ANCHOR + HOUR, ANCHOR + 30 * HOUR)

    first = snapshot(AdsWorld(SEED, ANCHOR, ticks))
    second = snapshot(AdsWorld(SEED, ANCHOR, ticks))

    assert first == second
    assert repr(first) == repr(second)


def test_world_other_seed_differs() -> None:
    first = AdsWorld(SEED, ANCHOR)
    other = AdsWorld(SEED + 1, ANCHOR)

    assert first.google_campaigns(GOOGLE_US)[0].id != other.google_campaigns(GOOGLE_US)[0].id
    assert first.meta_ad_days(META_EU) != other.meta_ad_days(META_EU)


def test_world_ids_unique_and_numeric(world: AdsWorld) -> None:
    google_ids = []
    for account in world.google_customers():
        cid = account.account_id
        google_ids += [budget.id for budget in world.google_budgets(cid)]
        google_ids += [campaign.id for campaign in world.google_campaigns(cid)]
        google_ids += [group.id for group in world.google_ad_groups(cid)]
        google_ids += [ad.id for ad in world.google_ads(cid)]
    meta_ids = []
    for account in world.meta_accounts():
        aid = account.account_id
        meta_ids += [campaign.id for campaign in world.meta_campaigns(aid)]
        meta_ids += [adset.id for adset in world.meta_adsets(aid)]
        meta_ids += [ad.id for ad in world.meta_ads(aid)]

    assert all(isinstance(value, int) and 0 < value < 2**63 for value in google_ids)
    assert len(set(google_ids)) == len(google_ids)
    assert all(value.isdigit() and len(value) == 18 for value in meta_ids)
    assert len(set(meta_ids)) == len(meta_ids)


def test_world_rejects_bad_ticks() -> None:
    with pytest.raises(ValueError, match=r"Invalid ticks\[0\] = 99: each tick must be later than the anchor"):
        AdsWorld(SEED, 100, (99,))


def test_world_unknown_account_named() -> None:
    world = AdsWorld(SEED, ANCHOR)

    with pytest.raises(KeyError, match="Unknown ad account 'act_1'"):
        world.today("act_1")
    with pytest.raises(KeyError, match="Unknown Google Ads customer '123'"):
        world.google_campaigns("123")
    assert world.account("100200300400500") is world.account(META_EU)


# Accounts and entities


def test_accounts_match_the_demo(world: AdsWorld) -> None:
    google = {account.account_id: account for account in world.google_customers()}
    meta = {account.account_id: account for account in world.meta_accounts()}

    assert set(google) == {GOOGLE_MANAGER_ID, GOOGLE_US, GOOGLE_NZ, GOOGLE_QUOTA_CUSTOMER_ID}
    assert google[GOOGLE_MANAGER_ID].manager
    assert (google[GOOGLE_US].name, google[GOOGLE_US].currency, google[GOOGLE_US].time_zone) == (
        "Spendlake Demo US", "USD", "America/New_York",
    )
    assert (google[GOOGLE_NZ].name, google[GOOGLE_NZ].currency, google[GOOGLE_NZ].time_zone) == (
        "Spendlake Demo NZ", "NZD", "Pacific/Auckland",
    )
    assert google[GOOGLE_QUOTA_CUSTOMER_ID].time_zone == "UTC"
    assert set(meta) == {META_EU, META_NZ}
    assert (meta[META_EU].name, meta[META_EU].currency, meta[META_EU].time_zone) == (
        "Spendlake Demo EU", "EUR", "Europe/Berlin",
    )
    assert (meta[META_NZ].name, meta[META_NZ].currency, meta[META_NZ].time_zone) == (
        "Spendlake Demo NZ", "NZD", "Pacific/Auckland",
    )


def test_campaign_names_for_utm_matching(world: AdsWorld) -> None:
    us_names = {campaign.name for campaign in world.google_campaigns(GOOGLE_US)}
    eu_names = {campaign.name for campaign in world.meta_campaigns(META_EU)}

    all_names = [campaign.name for campaign in world.google_campaigns(GOOGLE_NZ)]
    all_names += [campaign.name for campaign in world.meta_campaigns(META_NZ)]
    all_names += [*us_names, *eu_names]

    assert {"brand_search", "generic_search", "shopping_pmax"} <= us_names
    assert {"retargeting_q4", "prospecting_lookalike"} <= eu_names
    assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", name) for name in all_names)


@pytest.mark.parametrize("customer_id", [GOOGLE_US, GOOGLE_NZ, GOOGLE_QUOTA_CUSTOMER_ID])
def test_google_entity_shape(world: AdsWorld, customer_id: str) -> None:
    campaigns = world.google_campaigns(customer_id)
    groups_per_campaign = Counter(group.campaign_id for group in world.google_ad_groups(customer_id))
    ads_per_group = Counter(ad.ad_group_id for ad in world.google_ads(customer_id))
    statuses = Counter(campaign.status for campaign in campaigns)

    assert len(campaigns) == 10
    assert statuses == {"ENABLED": 8, "PAUSED": 1, "REMOVED": 1}
    assert set(groups_per_campaign) == {campaign.id for campaign in campaigns}
    assert set(groups_per_campaign.values()) <= {2, 3}
    assert set(ads_per_group.values()) <= {1, 2, 3}
    assert {budget.id for budget in world.google_budgets(customer_id)} == {c.budget_id for c in campaigns}


@pytest.mark.parametrize("account_id", [META_EU, META_NZ])
def test_meta_entity_shape(world: AdsWorld, account_id: str) -> None:
    campaigns = world.meta_campaigns(account_id)
    adsets = world.meta_adsets(account_id)
    adsets_per_campaign = Counter(adset.campaign_id for adset in adsets)
    ads_per_adset = Counter(ad.adset_id for ad in world.meta_ads(account_id))
    statuses = Counter(campaign.status for campaign in campaigns)
    archived = {campaign.id for campaign in campaigns if campaign.status == "ARCHIVED"}

    assert len(campaigns) == 10
    assert statuses == {"ACTIVE": 8, "PAUSED": 1, "ARCHIVED": 1}
    assert set(adsets_per_campaign.values()) <= {2, 3}
    assert set(ads_per_adset.values()) <= {1, 2, 3}
    assert all(adset.effective_status == "ARCHIVED" for adset in adsets if adset.campaign_id in archived)
    assert all(2 <= len(adset.countries) <= 3 for adset in adsets)


def test_paused_parent_shows_in_children(world: AdsWorld) -> None:
    paused = next(c for c in world.meta_campaigns(META_EU) if c.status == "PAUSED")
    children = [adset for adset in world.meta_adsets(META_EU) if adset.campaign_id == paused.id]

    assert children
    assert {adset.effective_status for adset in children} <= {"CAMPAIGN_PAUSED", "PAUSED"}


def test_custom_audiences_name_people(world: AdsWorld) -> None:
    names = world.personal_values()

    assert "Customers - Jane Example" in names
    assert all(" - " in name for name in names)
    assert any(adset.custom_audiences for adset in world.meta_adsets(META_EU))


# Days and time zones


def test_auckland_today_ahead_of_utc(world: AdsWorld) -> None:
    assert world.today(GOOGLE_NZ) == date(2026, 11, 2)
    assert world.today(META_NZ) == date(2026, 11, 2)
    assert world.today(GOOGLE_US) == date(2026, 11, 1)
    assert world.today(META_EU) == date(2026, 11, 1)
    assert world.today(GOOGLE_QUOTA_CUSTOMER_ID) == date(2026, 11, 1)


@pytest.mark.parametrize("account_id", CLIENT_ACCOUNTS)
def test_metric_days_end_on_local_today(world: AdsWorld, account_id: str) -> None:
    days = {row.day for row in ad_days(world, account_id)}
    today = world.today(account_id)

    assert max(days) == today
    assert min(days) == today - timedelta(days=HISTORY_DAYS - 1)
    assert len(days) == HISTORY_DAYS - 1


@pytest.mark.parametrize("account_id", CLIENT_ACCOUNTS)
def test_no_delivery_day_has_no_rows(world: AdsWorld, account_id: str) -> None:
    skipped = world.no_delivery_day(account_id)
    rows_per_day = Counter(row.day for row in ad_days(world, account_id))

    assert skipped == world.anchor_date(account_id) - timedelta(days=20)
    assert rows_per_day[skipped] == 0
    assert rows_per_day[skipped - timedelta(days=1)] > 10
    assert rows_per_day[skipped + timedelta(days=1)] > 10


def test_new_ticks_add_days_only() -> None:
    before = AdsWorld(SEED, ANCHOR)
    after = AdsWorld(SEED, ANCHOR, (ANCHOR + 12 * HOUR, ANCHOR + 50 * HOUR))

    for account_id in CLIENT_ACCOUNTS:
        late = before.late_attribution_day(account_id)
        old_rows = [row for row in ad_days(before, account_id) if row.day != late]
        kept_rows = [row for row in ad_days(after, account_id) if row.day <= before.today(account_id) and row.day != late]
        new_days = {row.day for row in ad_days(after, account_id)} - {row.day for row in old_rows}

        assert kept_rows == old_rows
        assert max(new_days) == after.today(account_id)
        assert after.today(account_id) == before.today(account_id) + timedelta(days=2)
    assert after.google_campaigns(GOOGLE_US) == before.google_campaigns(GOOGLE_US)
    assert after.meta_adsets(META_NZ) == before.meta_adsets(META_NZ)


# Late attribution


@pytest.mark.parametrize("customer_id", [GOOGLE_US, GOOGLE_NZ])
def test_google_late_conversions_grow(customer_id: str) -> None:
    worlds = [AdsWorld(SEED, ANCHOR, tuple(ANCHOR + HOUR * (n + 1) for n in range(ticks))) for ticks in (0, 1, 3)]
    late = worlds[0].late_attribution_day(customer_id)

    late_rows = [[row for row in world.google_ad_days(customer_id) if row.day == late] for world in worlds]
    clicked = sum(1 for row in late_rows[0] if row.clicks > 0)
    totals = [sum(row.conversions_centi for row in rows) for rows in late_rows]
    values = [sum(row.conversions_value_micros for row in rows) for rows in late_rows]

    assert late == worlds[0].anchor_date(customer_id) - timedelta(days=5)
    assert clicked > 10
    assert totals[1] - totals[0] == 100 * clicked
    assert totals[2] - totals[0] == 3 * 100 * clicked
    assert values[0] < values[1] < values[2]
    assert [row.clicks for row in late_rows[2]] == [row.clicks for row in late_rows[0]]


@pytest.mark.parametrize("account_id", [META_EU, META_NZ])
def test_meta_late_purchases_grow(account_id: str) -> None:
    worlds = [AdsWorld(SEED, ANCHOR, tuple(ANCHOR + HOUR * (n + 1) for n in range(ticks))) for ticks in (0, 2)]
    late = worlds[0].late_attribution_day(account_id)

    late_rows = [[row for row in world.meta_ad_days(account_id) if row.day == late] for world in worlds]
    clicked = sum(1 for row in late_rows[0] if row.link_clicks > 0)
    purchases = [sum(sum(row.purchases) for row in rows) for rows in late_rows]
    one_day_clicks = [sum(row.purchases[0] for row in rows) for rows in late_rows]

    assert clicked > 10
    assert purchases[1] - purchases[0] == 2 * clicked
    assert one_day_clicks[1] == one_day_clicks[0]
    assert [row.spend_minor for row in late_rows[1]] == [row.spend_minor for row in late_rows[0]]


# Metric plausibility


@pytest.mark.parametrize("customer_id", [GOOGLE_US, GOOGLE_NZ])
def test_google_metrics_consistent(world: AdsWorld, customer_id: str) -> None:
    rows = world.google_ad_days(customer_id)

    assert rows == tuple(sorted(rows, key=lambda row: (row.day, row.ad_id)))
    assert all(row.impressions > 0 or row.cost_micros > 0 for row in rows)
    assert all(row.clicks <= row.impressions for row in rows)
    assert all(row.all_conversions_centi >= row.conversions_centi for row in rows)
    assert any(row.conversions_centi == 0 for row in rows)
    assert sum(row.cost_micros for row in rows) > 0


@pytest.mark.parametrize("account_id", [META_EU, META_NZ])
def test_meta_metrics_consistent(world: AdsWorld, account_id: str) -> None:
    rows = world.meta_ad_days(account_id)

    assert all(row.impressions > 0 or row.spend_minor > 0 for row in rows)
    assert all(0 < row.reach <= row.impressions for row in rows)
    assert all(row.landing_page_views <= row.link_clicks <= row.clicks <= row.impressions for row in rows)
    assert all(row.purchases[0] >= row.purchases[1] for row in rows)
    assert any(sum(row.purchases) for row in rows)


@pytest.mark.parametrize("account_id", [META_EU, META_NZ])
def test_country_rows_add_up(world: AdsWorld, account_id: str) -> None:
    adsets = {adset.id: adset for adset in world.meta_adsets(account_id)}

    for row in world.meta_ad_days(account_id)[:400]:
        parts = world.meta_country_rows(row)
        assert 1 <= len(parts) <= 3
        assert [part.country for part in parts] == sorted(part.country for part in parts)
        assert {part.country for part in parts} <= set(adsets[row.adset_id].countries)
        for name in ("impressions", "clicks", "link_clicks", "landing_page_views", "spend_minor"):
            assert sum(getattr(part, name) for part in parts) == getattr(row, name), name
        for name in ("add_to_cart", "add_to_cart_value", "purchases", "purchase_value"):
            assert [sum(getattr(part, name)[i] for part in parts) for i in range(3)] == list(getattr(row, name))
        for part in parts:
            assert part.landing_page_views <= part.link_clicks <= part.clicks <= part.impressions
            assert part.reach <= part.impressions
            assert all(value == 0 for count, value in zip(part.purchases, part.purchase_value) if count == 0)


@pytest.mark.parametrize("account_id", [META_EU, META_NZ])
def test_product_rows_only_for_catalog_ads(world: AdsWorld, account_id: str) -> None:
    catalog = {campaign.id for campaign in world.meta_campaigns(account_id) if "catalog_sales" in campaign.name}
    rows = world.meta_ad_days(account_id)
    catalog_rows = [row for row in rows if row.campaign_id in catalog]
    assert catalog_rows

    assert all(world.meta_product_rows(row) == () for row in rows if row.campaign_id not in catalog)
    for row in catalog_rows[:200]:
        parts = world.meta_product_rows(row)
        assert 1 <= len(parts) <= 3
        assert all(part.country is None and re.fullmatch(r"[1-9][0-9]{15}", part.product_id or "") for part in parts)
        for name in ("impressions", "clicks", "spend_minor"):
            assert sum(getattr(part, name) for part in parts) == getattr(row, name), name
