"""Deterministic fake Google Ads and Meta ad accounts: entities and daily metrics per ad.

An `AdsWorld` is a pure function of (seed, anchor, ticks), the same inputs as `StripeWorld`.
Entities (campaigns, ad groups or ad sets, ads, budgets) depend only on the seed and the anchor,
so ticks never change them. Daily metrics cover each account's local days from 89 days before
its anchor-local date up to its local "today", the calendar date of `now` (the last tick, or the
anchor) in the account's IANA time zone. A later tick therefore adds days and never removes one.

Two days per account are special, both counted back from the anchor-local date:
- the no-delivery day (20 days before) has no metrics at all;
- the late-attribution day (5 days before) gains conversions with every tick, as conversions
  credited to a past click day keep arriving on the real platforms.
Every other past day is the same for any number of ticks.

Randomness comes only from `random.Random.random()` seeded with a string, because Python
guarantees that sequence across versions and processes. Metrics of one ad come from one
generator that draws the same number of values for every day, so a day's values depend only on
its position after the account's first day.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sandbox.stripe_data import StripeWorld

HISTORY_DAYS = 90
NO_DELIVERY_DAYS_BEFORE_ANCHOR = 20
LATE_ATTRIBUTION_DAYS_BEFORE_ANCHOR = 5
# Conversions (Google) or 7-day-click purchases (Meta) added per tick to each ad that had
# clicks on the late-attribution day.
LATE_CONVERSIONS_PER_TICK = 1

GOOGLE_ADS = "google_ads"
META = "meta"

GOOGLE_MANAGER_ID = "1112223334"
# A client under the manager whose developer quota is spent, so every search for it returns 429.
GOOGLE_QUOTA_CUSTOMER_ID = "9990001112"
# The end date Google Ads reports for a campaign that runs without one.
GOOGLE_OPEN_END_DATE = date(2037, 12, 30)

# Draws per ad per day, fixed so that one day's branch never shifts the next day's values.
_DRAWS_PER_DAY = 10


@dataclass(frozen=True)
class AdAccount:
    """A Google Ads customer or a Meta ad account ("act_" + digits)."""

    platform: str
    account_id: str
    name: str
    currency: str
    time_zone: str
    country: str
    manager: bool = False

    @property
    def digits(self) -> str:
        """The account id without Meta's "act_" prefix."""
        return self.account_id.removeprefix("act_")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class GoogleBudget:
    customer_id: str
    id: int
    name: str
    amount_micros: int
    delivery_method: str
    status: str


@dataclass(frozen=True)
class GoogleCampaign:
    customer_id: str
    id: int
    name: str
    status: str
    advertising_channel_type: str
    bidding_strategy_type: str
    start_date: date
    end_date: date
    budget_id: int


@dataclass(frozen=True)
class GoogleAdGroup:
    customer_id: str
    id: int
    campaign_id: int
    name: str
    status: str
    type: str


@dataclass(frozen=True)
class GoogleAd:
    customer_id: str
    id: int
    ad_group_id: int
    campaign_id: int
    name: str
    type: str
    final_urls: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class GoogleAdDay:
    """Metrics of one ad on one local day. Conversions are in hundredths, money in micros."""

    ad_id: int
    ad_group_id: int
    campaign_id: int
    day: date
    impressions: int
    clicks: int
    cost_micros: int
    conversions_centi: int
    conversions_value_micros: int
    all_conversions_centi: int
    view_through_conversions: int


@dataclass(frozen=True)
class MetaCampaign:
    """Times are epoch seconds. Budgets are in the currency's minor unit, None when not set."""

    account_id: str
    id: str
    name: str
    objective: str
    status: str
    effective_status: str
    buying_type: str
    daily_budget: int | None
    lifetime_budget: int | None
    start_time: int
    stop_time: int | None
    created_time: int
    updated_time: int


@dataclass(frozen=True)
class MetaAdSet:
    account_id: str
    id: str
    campaign_id: str
    name: str
    optimization_goal: str
    billing_event: str
    bid_strategy: str
    daily_budget: int | None
    lifetime_budget: int | None
    countries: tuple[str, ...]
    age_min: int
    age_max: int
    custom_audiences: tuple[tuple[str, str], ...]
    status: str
    effective_status: str
    created_time: int
    updated_time: int


@dataclass(frozen=True)
class MetaAd:
    account_id: str
    id: str
    adset_id: str
    campaign_id: str
    name: str
    creative_id: str
    status: str
    effective_status: str
    created_time: int
    updated_time: int


@dataclass(frozen=True)
class MetaAdDay:
    """Metrics of one ad on one local day, optionally for one country.

    Conversion counts and values are split by attribution into (1-day click, clicks on days
    2 to 7, 1-day view), so the 7-day-click count is the first two parts and Meta's default
    `value` is all three. Money is in the currency's minor unit.
    """

    ad_id: str
    adset_id: str
    campaign_id: str
    day: date
    country: str | None
    impressions: int
    reach: int
    clicks: int
    link_clicks: int
    landing_page_views: int
    spend_minor: int
    add_to_cart: tuple[int, int, int]
    add_to_cart_value: tuple[int, int, int]
    purchases: tuple[int, int, int]
    purchase_value: tuple[int, int, int]
    product_id: str | None = None


@dataclass(frozen=True)
class _CampaignPlan:
    """A campaign of the demo catalog. `state` is active, late_start, paused or removed."""

    name: str
    kind: str
    state: str


@dataclass(frozen=True)
class _GoogleKind:
    channel: str
    bidding: str
    group_type: str
    ad_type: str
    themes: tuple[str, ...]
    impressions: tuple[int, int]
    ctr: tuple[float, float]
    cpc: tuple[float, float]
    conversion_rate: tuple[float, float]
    order_value: tuple[float, float]
    view_through_rate: float
    daily_budget: int


@dataclass(frozen=True)
class _MetaKind:
    objective: str
    optimization_goal: str
    themes: tuple[str, ...]
    formats: tuple[str, ...]
    impressions: tuple[int, int]
    cpm: tuple[float, float]
    ctr: tuple[float, float]
    add_to_cart_rate: tuple[float, float]
    purchase_rate: tuple[float, float]
    order_value: tuple[float, float]
    daily_budget: int


@dataclass(frozen=True)
class _Delivery:
    """Days an ad can deliver, and the per-ad rates its daily metrics start from."""

    first_day: date
    last_day: date | None
    rates: dict[str, float]


GOOGLE_KINDS = {
    "search_brand": _GoogleKind(
        "SEARCH", "TARGET_IMPRESSION_SHARE", "SEARCH_STANDARD", "RESPONSIVE_SEARCH_AD",
        ("exact", "phrase", "misspellings"),
        (150, 600), (0.08, 0.14), (0.35, 0.90), (0.08, 0.14), (60.0, 110.0), 0.0, 40,
    ),
    "search": _GoogleKind(
        "SEARCH", "MAXIMIZE_CONVERSIONS", "SEARCH_STANDARD", "RESPONSIVE_SEARCH_AD",
        ("running_shoes", "trail_shoes", "accessories"),
        (300, 1200), (0.03, 0.06), (1.10, 2.60), (0.025, 0.05), (70.0, 140.0), 0.0, 120,
    ),
    "shopping": _GoogleKind(
        "SHOPPING", "MAXIMIZE_CONVERSION_VALUE", "SHOPPING_PRODUCT_ADS", "SHOPPING_PRODUCT_AD",
        ("all_products", "bestsellers", "clearance"),
        (800, 3000), (0.008, 0.018), (0.30, 0.80), (0.02, 0.04), (50.0, 120.0), 0.0, 150,
    ),
    "display": _GoogleKind(
        "DISPLAY", "TARGET_CPA", "DISPLAY_STANDARD", "RESPONSIVE_DISPLAY_AD",
        ("cart_abandoners", "past_buyers", "site_visitors"),
        (2000, 8000), (0.002, 0.006), (0.30, 0.80), (0.005, 0.015), (60.0, 120.0), 0.00005, 60,
    ),
    "video": _GoogleKind(
        "VIDEO", "TARGET_CPM", "VIDEO_RESPONSIVE", "VIDEO_RESPONSIVE_AD",
        ("in_market", "affinity", "custom_intent"),
        (1500, 6000), (0.001, 0.004), (0.20, 0.60), (0.003, 0.01), (60.0, 120.0), 0.00003, 80,
    ),
    "dynamic_search": _GoogleKind(
        "SEARCH", "MAXIMIZE_CONVERSIONS", "SEARCH_DYNAMIC_ADS", "EXPANDED_DYNAMIC_SEARCH_AD",
        ("all_pages", "category_pages", "blog_pages"),
        (100, 500), (0.03, 0.06), (0.60, 1.40), (0.02, 0.05), (60.0, 120.0), 0.0, 50,
    ),
}

META_KINDS = {
    "sales": _MetaKind(
        "OUTCOME_SALES", "OFFSITE_CONVERSIONS",
        ("broad_25_54", "lookalike_1pct", "website_visitors_30d"), ("image", "carousel", "video"),
        (1500, 6000), (6.0, 14.0), (0.010, 0.025), (0.06, 0.12), (0.015, 0.040), (40.0, 110.0), 80,
    ),
    "awareness": _MetaKind(
        "OUTCOME_AWARENESS", "REACH",
        ("broad_18_65", "interests_running", "video_viewers"), ("video", "image"),
        (4000, 12000), (2.0, 5.0), (0.003, 0.008), (0.01, 0.03), (0.002, 0.006), (40.0, 110.0), 40,
    ),
    "traffic": _MetaKind(
        "OUTCOME_TRAFFIC", "LANDING_PAGE_VIEWS",
        ("readers_25_44", "interests_fitness", "engaged_visitors"), ("image", "carousel"),
        (2000, 6000), (4.0, 9.0), (0.015, 0.030), (0.03, 0.06), (0.005, 0.015), (40.0, 110.0), 30,
    ),
    "leads": _MetaKind(
        "OUTCOME_LEADS", "LEAD_GENERATION",
        ("newsletter_lookalike", "broad_25_54"), ("image", "video"),
        (1000, 4000), (6.0, 12.0), (0.008, 0.018), (0.02, 0.05), (0.004, 0.012), (40.0, 110.0), 25,
    ),
    "engagement": _MetaKind(
        "OUTCOME_ENGAGEMENT", "THRUPLAY",
        ("broad_18_44", "video_viewers_50pct"), ("video",),
        (3000, 9000), (3.0, 6.0), (0.002, 0.006), (0.01, 0.02), (0.001, 0.004), (40.0, 110.0), 20,
    ),
}

GOOGLE_US_CATALOG = (
    _CampaignPlan("brand_search", "search_brand", "active"),
    _CampaignPlan("generic_search", "search", "active"),
    _CampaignPlan("shopping_pmax", "shopping", "active"),
    _CampaignPlan("competitor_search", "search", "active"),
    _CampaignPlan("display_remarketing", "display", "active"),
    _CampaignPlan("youtube_awareness", "video", "active"),
    _CampaignPlan("dynamic_search_catchall", "dynamic_search", "active"),
    _CampaignPlan("local_inventory_search", "search", "late_start"),
    _CampaignPlan("spring_sale_search", "search", "paused"),
    _CampaignPlan("black_friday_2025", "search", "removed"),
)
GOOGLE_NZ_CATALOG = (
    _CampaignPlan("brand_search_nz", "search_brand", "active"),
    _CampaignPlan("generic_search_nz", "search", "active"),
    _CampaignPlan("shopping_nz", "shopping", "active"),
    _CampaignPlan("auckland_stores_search", "search", "active"),
    _CampaignPlan("display_remarketing_nz", "display", "active"),
    _CampaignPlan("youtube_awareness_nz", "video", "active"),
    _CampaignPlan("dynamic_search_nz", "dynamic_search", "active"),
    _CampaignPlan("competitor_search_nz", "search", "late_start"),
    _CampaignPlan("summer_sale_nz", "search", "paused"),
    _CampaignPlan("boxing_day_2025", "search", "removed"),
)
META_EU_CATALOG = (
    _CampaignPlan("retargeting_q4", "sales", "active"),
    _CampaignPlan("prospecting_lookalike", "sales", "active"),
    _CampaignPlan("brand_awareness_dach", "awareness", "active"),
    _CampaignPlan("traffic_blog_posts", "traffic", "active"),
    _CampaignPlan("catalog_sales_dpa", "sales", "active"),
    _CampaignPlan("lead_gen_newsletter", "leads", "active"),
    _CampaignPlan("video_views_spring", "engagement", "active"),
    _CampaignPlan("instagram_reels_test", "sales", "late_start"),
    _CampaignPlan("summer_sale_2026", "sales", "paused"),
    _CampaignPlan("black_friday_2025", "sales", "removed"),
)
META_NZ_CATALOG = (
    _CampaignPlan("retargeting_nz", "sales", "active"),
    _CampaignPlan("prospecting_lookalike_nz", "sales", "active"),
    _CampaignPlan("brand_awareness_nz", "awareness", "active"),
    _CampaignPlan("traffic_blog_nz", "traffic", "active"),
    _CampaignPlan("catalog_sales_nz", "sales", "active"),
    _CampaignPlan("lead_gen_nz", "leads", "active"),
    _CampaignPlan("video_views_nz", "engagement", "active"),
    _CampaignPlan("reels_test_nz", "sales", "late_start"),
    _CampaignPlan("winter_sale_nz", "sales", "paused"),
    _CampaignPlan("boxing_day_2025_nz", "sales", "removed"),
)

# Campaigns whose name carries this mark advertise catalog products (Meta's product_id breakdown).
CATALOG_CAMPAIGN_MARK = "catalog_sales"
PRODUCTS_PER_CATALOG_AD = 3

# (account, campaign catalog, country pool for ad set targeting)
GOOGLE_ACCOUNTS = (
    (AdAccount(GOOGLE_ADS, GOOGLE_MANAGER_ID, "Spendlake Demo Manager", "USD", "America/New_York",
               "US", manager=True), ()),
    (AdAccount(GOOGLE_ADS, "4567890123", "Spendlake Demo US", "USD", "America/New_York", "US"),
     GOOGLE_US_CATALOG),
    (AdAccount(GOOGLE_ADS, "7890123456", "Spendlake Demo NZ", "NZD", "Pacific/Auckland", "NZ"),
     GOOGLE_NZ_CATALOG),
    (AdAccount(GOOGLE_ADS, GOOGLE_QUOTA_CUSTOMER_ID, "Spendlake Demo Quota", "USD", "UTC", "US"),
     GOOGLE_US_CATALOG),
)
META_ACCOUNTS = (
    (AdAccount(META, "act_100200300400500", "Spendlake Demo EU", "EUR", "Europe/Berlin", "DE"),
     META_EU_CATALOG, ("DE", "AT", "CH", "NL")),
    (AdAccount(META, "act_600700800900100", "Spendlake Demo NZ", "NZD", "Pacific/Auckland", "NZ"),
     META_NZ_CATALOG, ("NZ", "AU")),
)

# Money ranges in the catalogs are in US dollars, scaled by these factors for an account's currency.
CURRENCY_FACTORS = {"USD": 1.0, "EUR": 0.92, "NZD": 1.65}

# Names of customer lists as advertisers write them: they can name a person, so a tap must
# treat ad set targeting as personal data.
CUSTOM_AUDIENCE_NAMES = (
    "Customers - Jane Example",
    "Newsletter subscribers - John Sample",
    "VIP buyers - Erika Mustermann",
    "Cart abandoners - Joe Bloggs",
)


class _Dice:
    """Uniform, integer and choice helpers built only on `random.Random.random()`."""

    def __init__(self, label: str) -> None:
        self._random = random.Random(label)

    def random(self) -> float:
        return self._random.random()

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._random.random()

    def integer(self, low: int, high: int) -> int:
        """Return an integer in [low, high], both ends included."""
        return low + int(self._random.random() * (high - low + 1))

    def chance(self, probability: float) -> bool:
        return self._random.random() < probability


class _IdMaker:
    """Stable numeric ids from a hash of (seed, label), unique across the whole world."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._used: set[int] = set()

    def make(self, label: str, low: int, span: int) -> int:
        """Return an id in [low, low + span), hashing again with a counter after a collision."""
        attempt = 0
        while True:
            digest = hashlib.sha256(f"{self._seed}:{label}:{attempt}".encode()).digest()
            value = low + int.from_bytes(digest[:8], "big") % span
            if value not in self._used:
                self._used.add(value)
                return value
            attempt += 1


@dataclass
class _GoogleAccountData:
    budgets: tuple[GoogleBudget, ...]
    campaigns: tuple[GoogleCampaign, ...]
    ad_groups: tuple[GoogleAdGroup, ...]
    ads: tuple[GoogleAd, ...]
    delivery: dict[int, _Delivery]


@dataclass
class _MetaAccountData:
    campaigns: tuple[MetaCampaign, ...]
    adsets: tuple[MetaAdSet, ...]
    ads: tuple[MetaAd, ...]
    delivery: dict[str, _Delivery]


class AdsWorld:
    """Google Ads customers and Meta ad accounts built from (seed, anchor, ticks).

    `anchor` and `ticks` are epoch seconds (UTC) with the rules of `StripeWorld`. Entities are
    built at once; daily metrics are built per account on first use, under a lock, so one world
    can serve many threads.
    """

    def __init__(self, seed: int, anchor: int, ticks: Sequence[int] = ()) -> None:
        StripeWorld.validate_inputs(seed, anchor, ticks)
        self.seed = seed
        self.anchor = anchor
        self.ticks = tuple(ticks)
        self.now = self.ticks[-1] if self.ticks else self.anchor

        ids = _IdMaker(seed)
        self._accounts: dict[str, AdAccount] = {}
        self._google: dict[str, _GoogleAccountData] = {}
        self._meta: dict[str, _MetaAccountData] = {}
        for account, catalog in GOOGLE_ACCOUNTS:
            self._accounts[account.account_id] = account
            self._google[account.account_id] = _build_google_account(self, ids, account, catalog)
        for account, catalog, countries in META_ACCOUNTS:
            self._accounts[account.account_id] = account
            self._meta[account.account_id] = _build_meta_account(self, ids, account, catalog, countries)
        self._catalog_campaign_ids = {
            campaign.id for data in self._meta.values() for campaign in data.campaigns if CATALOG_CAMPAIGN_MARK in campaign.name
        }
        self._meta_adsets_by_id = {
            adset.id: adset for data in self._meta.values() for adset in data.adsets
        }

        self._lock = threading.Lock()
        self._google_days: dict[str, tuple[GoogleAdDay, ...]] = {}
        self._meta_days: dict[str, tuple[MetaAdDay, ...]] = {}
        self._country_rows: dict[tuple[str, date], tuple[MetaAdDay, ...]] = {}

    # Accounts and their days

    @property
    def accounts(self) -> tuple[AdAccount, ...]:
        return tuple(self._accounts.values())

    def google_customers(self) -> tuple[AdAccount, ...]:
        return tuple(account for account in self._accounts.values() if account.platform == GOOGLE_ADS)

    def meta_accounts(self) -> tuple[AdAccount, ...]:
        return tuple(account for account in self._accounts.values() if account.platform == META)

    def account(self, account_id: str) -> AdAccount | None:
        """Return the account with this id ("act_" optional for Meta), or None."""
        return self._accounts.get(account_id) or self._accounts.get("act_" + account_id)

    def anchor_date(self, account_id: str) -> date:
        """Return the calendar date of the anchor in the account's time zone."""
        return _local_date(self.anchor, self._require(account_id).zone)

    def today(self, account_id: str) -> date:
        """Return the calendar date of `now` in the account's time zone, the last day with metrics."""
        return _local_date(self.now, self._require(account_id).zone)

    def first_day(self, account_id: str) -> date:
        return self.anchor_date(account_id) - timedelta(days=HISTORY_DAYS - 1)

    def no_delivery_day(self, account_id: str) -> date:
        return self.anchor_date(account_id) - timedelta(days=NO_DELIVERY_DAYS_BEFORE_ANCHOR)

    def late_attribution_day(self, account_id: str) -> date:
        """Return the past day whose conversions grow by LATE_CONVERSIONS_PER_TICK per ad per tick."""
        return self.anchor_date(account_id) - timedelta(days=LATE_ATTRIBUTION_DAYS_BEFORE_ANCHOR)

    def personal_values(self) -> set[str]:
        """Return every value in the world that names a person (custom audience names)."""
        return {
            name
            for data in self._meta.values()
            for adset in data.adsets
            for _, name in adset.custom_audiences
        }

    # Google Ads

    def google_budgets(self, customer_id: str) -> tuple[GoogleBudget, ...]:
        return self._google_data(customer_id).budgets

    def google_campaigns(self, customer_id: str) -> tuple[GoogleCampaign, ...]:
        return self._google_data(customer_id).campaigns

    def google_ad_groups(self, customer_id: str) -> tuple[GoogleAdGroup, ...]:
        return self._google_data(customer_id).ad_groups

    def google_ads(self, customer_id: str) -> tuple[GoogleAd, ...]:
        return self._google_data(customer_id).ads

    def google_ad_days(self, customer_id: str) -> tuple[GoogleAdDay, ...]:
        """Return the customer's rows of daily ad metrics, ordered by day, then ad id."""
        data = self._google_data(customer_id)
        with self._lock:
            days = self._google_days.get(customer_id)
            if days is None:
                days = self._build_google_days(customer_id, data)
                self._google_days[customer_id] = days
        return days

    # Meta

    def meta_campaigns(self, account_id: str) -> tuple[MetaCampaign, ...]:
        return self._meta_data(account_id).campaigns

    def meta_adsets(self, account_id: str) -> tuple[MetaAdSet, ...]:
        return self._meta_data(account_id).adsets

    def meta_ads(self, account_id: str) -> tuple[MetaAd, ...]:
        return self._meta_data(account_id).ads

    def meta_ad_days(self, account_id: str) -> tuple[MetaAdDay, ...]:
        """Return the account's rows of daily ad metrics, ordered by day, then ad id."""
        key = self._require(account_id).account_id
        data = self._meta_data(key)
        with self._lock:
            days = self._meta_days.get(key)
            if days is None:
                days = self._build_meta_days(key, data)
                self._meta_days[key] = days
        return days

    def meta_country_rows(self, ad_day: MetaAdDay) -> tuple[MetaAdDay, ...]:
        """Split one ad-day over its ad set's countries, in country order.

        Counts, money and conversion parts of the rows add up to the ad-day's. Reach is
        estimated per country, so it need not add up. Rows without impressions and spend are
        left out, like the API does.
        """
        key = (ad_day.ad_id, ad_day.day)
        with self._lock:
            rows = self._country_rows.get(key)
            if rows is None:
                rows = self._split_by_country(ad_day)
                self._country_rows[key] = rows
        return rows

    # Building metrics

    def _build_google_days(self, customer_id: str, data: _GoogleAccountData) -> tuple[GoogleAdDay, ...]:
        account = self._accounts[customer_id]
        days = self._day_span(customer_id)
        skip = self.no_delivery_day(customer_id)
        late = self.late_attribution_day(customer_id)
        factor = CURRENCY_FACTORS[account.currency]
        rows: list[GoogleAdDay] = []

        for ad in data.ads:
            delivery = data.delivery[ad.id]
            dice = _Dice(f"spendlake-ads:{self.seed}:{customer_id}:{ad.id}:metrics")
            for day in days:
                draws = [dice.random() for _ in range(_DRAWS_PER_DAY)]
                if day == skip or not _delivers(delivery, day):
                    continue
                row = _google_ad_day(ad, day, delivery.rates, draws, factor)
                if row is None:
                    continue
                if day == late and row.clicks > 0:
                    row = _with_late_google_conversions(row, delivery.rates, factor, len(self.ticks))
                rows.append(row)

        rows.sort(key=lambda row: (row.day, row.ad_id))
        return tuple(rows)

    def _build_meta_days(self, account_id: str, data: _MetaAccountData) -> tuple[MetaAdDay, ...]:
        account = self._accounts[account_id]
        days = self._day_span(account_id)
        skip = self.no_delivery_day(account_id)
        late = self.late_attribution_day(account_id)
        factor = CURRENCY_FACTORS[account.currency]
        rows: list[MetaAdDay] = []

        for ad in data.ads:
            delivery = data.delivery[ad.id]
            dice = _Dice(f"spendlake-ads:{self.seed}:{account_id}:{ad.id}:metrics")
            for day in days:
                draws = [dice.random() for _ in range(_DRAWS_PER_DAY)]
                if day == skip or not _delivers(delivery, day):
                    continue
                row = _meta_ad_day(ad, day, delivery.rates, draws, factor)
                if row is None:
                    continue
                if day == late and row.link_clicks > 0:
                    row = _with_late_meta_purchases(row, delivery.rates, factor, len(self.ticks))
                rows.append(row)

        rows.sort(key=lambda row: (row.day, row.ad_id))
        return tuple(rows)

    def meta_product_rows(self, ad_day: MetaAdDay) -> tuple[MetaAdDay, ...]:
        """Split one ad-day of a catalog sales campaign over the products it showed.

        Ads of other campaigns show no catalog products, so they have no rows.
        """
        if ad_day.campaign_id not in self._catalog_campaign_ids:
            return ()
        products = [_product_id(self.seed, ad_day.ad_id, number) for number in range(PRODUCTS_PER_CATALOG_AD)]
        dice = _Dice(f"spendlake-ads:{self.seed}:{ad_day.ad_id}:{ad_day.day.isoformat()}:product")
        weights = [0.4 + dice.random() for _ in products]
        return tuple(replace(row, country=None, product_id=row.country) for row in _split_ad_day(ad_day, products, weights))

    def _split_by_country(self, ad_day: MetaAdDay) -> tuple[MetaAdDay, ...]:
        adset = self._meta_adsets_by_id[ad_day.adset_id]
        countries = sorted(adset.countries)
        dice = _Dice(f"spendlake-ads:{self.seed}:{ad_day.ad_id}:{ad_day.day.isoformat()}:country")
        weights = [0.4 + dice.random() for _ in countries]
        return tuple(_split_ad_day(ad_day, countries, weights))

    def _day_span(self, account_id: str) -> list[date]:
        # NOTE: local today gets a whole day of metrics, while the real APIs report a partial
        # day that keeps growing until midnight.
        first = self.first_day(account_id)
        last = self.today(account_id)
        return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]

    def _require(self, account_id: str) -> AdAccount:
        account = self.account(account_id)
        if account is None:
            known = ", ".join(self._accounts)
            msg = f"Unknown ad account {account_id!r}: use one of {known}."
            raise KeyError(msg)
        return account

    def _google_data(self, customer_id: str) -> _GoogleAccountData:
        data = self._google.get(customer_id)
        if data is None:
            known = ", ".join(self._google)
            msg = f"Unknown Google Ads customer {customer_id!r}: use one of {known}."
            raise KeyError(msg)
        return data

    def _meta_data(self, account_id: str) -> _MetaAccountData:
        account = self._require(account_id)
        if account.platform != META:
            msg = f"Account {account_id!r} is not a Meta ad account."
            raise KeyError(msg)
        return self._meta[account.account_id]


def _local_date(epoch: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(epoch, zone).date()


def _local_epoch(day: date, zone: ZoneInfo, seconds: int = 0) -> int:
    """Return the epoch second `seconds` after local midnight of `day` in `zone`."""
    midnight = datetime.combine(day, time(0, 0), zone)
    return int(midnight.timestamp()) + seconds


def _delivers(delivery: _Delivery, day: date) -> bool:
    if day < delivery.first_day:
        return False
    return delivery.last_day is None or day <= delivery.last_day


def _plan_days(anchor_day: date, plan: _CampaignPlan, dice: _Dice) -> tuple[date, date | None]:
    """Return the first and last delivery day of a campaign (None while it still runs)."""
    if plan.state == "late_start":
        return anchor_day - timedelta(days=40), None
    start = anchor_day - timedelta(days=dice.integer(120, 320))
    if plan.state == "paused":
        return start, anchor_day - timedelta(days=30)
    if plan.state == "removed":
        return start, anchor_day - timedelta(days=60)
    return start, None


def _earliest(*days: date | None) -> date | None:
    present = [day for day in days if day is not None]
    return min(present) if present else None


# Google Ads entities


def _build_google_account(
    world: AdsWorld, ids: _IdMaker, account: AdAccount, catalog: Sequence[_CampaignPlan]
) -> _GoogleAccountData:
    anchor_day = _local_date(world.anchor, account.zone)
    dice = _Dice(f"spendlake-ads:{world.seed}:{account.account_id}:structure")
    factor = CURRENCY_FACTORS[account.currency]
    budgets: list[GoogleBudget] = []
    campaigns: list[GoogleCampaign] = []
    ad_groups: list[GoogleAdGroup] = []
    ads: list[GoogleAd] = []
    delivery: dict[int, _Delivery] = {}

    for plan in catalog:
        kind = GOOGLE_KINDS[plan.kind]
        first_day, last_day = _plan_days(anchor_day, plan, dice)
        label = f"google:{account.account_id}:{plan.name}"
        status = {"paused": "PAUSED", "removed": "REMOVED"}.get(plan.state, "ENABLED")

        budget = GoogleBudget(
            customer_id=account.account_id,
            id=ids.make(f"{label}:budget", 13_000_000_000, 9_000_000_000),
            name=f"{plan.name} budget",
            amount_micros=round(kind.daily_budget * factor) * 1_000_000,
            delivery_method="STANDARD",
            status="REMOVED" if plan.state == "removed" else "ENABLED",
        )
        campaign = GoogleCampaign(
            customer_id=account.account_id,
            id=ids.make(f"{label}:campaign", 20_000_000_000, 9_000_000_000),
            name=plan.name,
            status=status,
            advertising_channel_type=kind.channel,
            bidding_strategy_type=kind.bidding,
            start_date=first_day,
            end_date=last_day if plan.state == "removed" and last_day else GOOGLE_OPEN_END_DATE,
            budget_id=budget.id,
        )
        budgets.append(budget)
        campaigns.append(campaign)

        for theme in kind.themes[: dice.integer(2, 3)]:
            group_paused = plan.state != "removed" and dice.chance(0.1)
            group_last = anchor_day - timedelta(days=dice.integer(8, 70)) if group_paused else None
            group = GoogleAdGroup(
                customer_id=account.account_id,
                id=ids.make(f"{label}:{theme}:ad_group", 140_000_000_000, 90_000_000_000),
                campaign_id=campaign.id,
                name=f"{plan.name}_{theme}",
                status="PAUSED" if group_paused else "ENABLED",
                type=kind.group_type,
            )
            ad_groups.append(group)

            for number in range(1, dice.integer(1, 3) + 1):
                ad_paused = dice.chance(0.1)
                ad_last = anchor_day - timedelta(days=dice.integer(8, 70)) if ad_paused else None
                ad = GoogleAd(
                    customer_id=account.account_id,
                    id=ids.make(f"{label}:{theme}:{number}:ad", 700_000_000_000, 90_000_000_000),
                    ad_group_id=group.id,
                    campaign_id=campaign.id,
                    name=f"{group.name}_v{number}",
                    type=kind.ad_type,
                    final_urls=(_google_final_url(account, plan.name, theme),),
                    status="PAUSED" if ad_paused else "ENABLED",
                )
                ads.append(ad)
                delivery[ad.id] = _Delivery(
                    first_day=first_day,
                    last_day=_earliest(last_day, group_last, ad_last),
                    rates=_google_rates(kind, dice),
                )

    return _GoogleAccountData(tuple(budgets), tuple(campaigns), tuple(ad_groups), tuple(ads), delivery)


def _google_final_url(account: AdAccount, campaign: str, theme: str) -> str:
    region = "" if account.country == "US" else f"/{account.country.lower()}"
    return (
        f"https://shop.example.com{region}/{theme.replace('_', '-')}"
        f"?utm_source=google&utm_medium=cpc&utm_campaign={campaign}"
    )


def _google_rates(kind: _GoogleKind, dice: _Dice) -> dict[str, float]:
    return {
        "impressions": dice.uniform(*kind.impressions),
        "ctr": dice.uniform(*kind.ctr),
        "cpc": dice.uniform(*kind.cpc),
        "conversion_rate": dice.uniform(*kind.conversion_rate),
        "order_value": dice.uniform(*kind.order_value),
        "view_through_rate": kind.view_through_rate,
    }


def _google_ad_day(
    ad: GoogleAd, day: date, rates: dict[str, float], draws: list[float], factor: float
) -> GoogleAdDay | None:
    """Return one day of metrics from the ad's rates and 10 draws, or None without delivery."""
    if draws[0] < 0.03:
        return None
    weekday_factor = 0.8 if day.weekday() >= 5 else 1.0

    impressions = int(rates["impressions"] * weekday_factor * (0.6 + 0.8 * draws[1]))
    clicks = min(impressions, int(impressions * rates["ctr"] * (0.7 + 0.6 * draws[2]) + draws[3]))
    cost_micros = int(clicks * rates["cpc"] * factor * (0.8 + 0.4 * draws[4]) * 1_000_000)
    if impressions == 0 and cost_micros == 0:
        return None

    conversions = int(clicks * rates["conversion_rate"] * (0.5 + draws[5]) + draws[7])
    order_value = rates["order_value"] * factor * (0.8 + 0.4 * draws[6])
    value_micros = round(conversions * order_value * 1_000_000)
    conversions_centi = 100 * conversions
    all_conversions_centi = conversions_centi + 100 * int(conversions * 0.3 + draws[7] * 0.6)
    view_through = int(impressions * rates["view_through_rate"] * 2 * draws[8] + draws[9] * 0.5)
    return GoogleAdDay(
        ad_id=ad.id,
        ad_group_id=ad.ad_group_id,
        campaign_id=ad.campaign_id,
        day=day,
        impressions=impressions,
        clicks=clicks,
        cost_micros=cost_micros,
        conversions_centi=conversions_centi,
        conversions_value_micros=value_micros - value_micros % 10_000,
        all_conversions_centi=all_conversions_centi,
        view_through_conversions=view_through,
    )


def _with_late_google_conversions(
    row: GoogleAdDay, rates: dict[str, float], factor: float, ticks: int
) -> GoogleAdDay:
    extra_centi = 100 * LATE_CONVERSIONS_PER_TICK * ticks
    order_value_micros = round(rates["order_value"] * factor * 100) * 10_000
    return replace(
        row,
        conversions_centi=row.conversions_centi + extra_centi,
        conversions_value_micros=row.conversions_value_micros + extra_centi // 100 * order_value_micros,
        all_conversions_centi=row.all_conversions_centi + extra_centi,
    )


# Meta entities


def _build_meta_account(
    world: AdsWorld,
    ids: _IdMaker,
    account: AdAccount,
    catalog: Sequence[_CampaignPlan],
    countries: tuple[str, ...],
) -> _MetaAccountData:
    anchor_day = _local_date(world.anchor, account.zone)
    zone = account.zone
    dice = _Dice(f"spendlake-ads:{world.seed}:{account.account_id}:structure")
    factor = CURRENCY_FACTORS[account.currency]
    campaigns: list[MetaCampaign] = []
    adsets: list[MetaAdSet] = []
    ads: list[MetaAd] = []
    delivery: dict[str, _Delivery] = {}

    for plan in catalog:
        kind = META_KINDS[plan.kind]
        first_day, last_day = _plan_days(anchor_day, plan, dice)
        label = f"meta:{account.account_id}:{plan.name}"
        status = {"paused": "PAUSED", "removed": "ARCHIVED"}.get(plan.state, "ACTIVE")
        created = _local_epoch(first_day - timedelta(days=dice.integer(1, 6)), zone, dice.integer(28_800, 64_800))
        changed_day = last_day + timedelta(days=1) if last_day else first_day + timedelta(days=dice.integer(1, 20))
        updated = _local_epoch(changed_day, zone, dice.integer(28_800, 64_800))
        # Campaigns that optimise for sales carry the budget (Advantage campaign budget).
        campaign_budget = kind.objective == "OUTCOME_SALES"
        lifetime = plan.state == "removed"
        budget_minor = round(kind.daily_budget * factor) * 100

        campaign = MetaCampaign(
            account_id=account.digits,
            id=str(ids.make(f"{label}:campaign", 120_200_000_000_000_000, 10**14)),
            name=plan.name,
            objective=kind.objective,
            status=status,
            effective_status=status,
            buying_type="AUCTION",
            daily_budget=budget_minor if campaign_budget and not lifetime else None,
            lifetime_budget=budget_minor * 30 if campaign_budget and lifetime else None,
            start_time=_local_epoch(first_day, zone),
            stop_time=_local_epoch(last_day, zone, 86_399) if lifetime and last_day else None,
            created_time=created,
            updated_time=updated,
        )
        campaigns.append(campaign)

        for theme in kind.themes[: dice.integer(2, 3)]:
            adset, adset_last = _meta_adset(
                ids, dice, label, account, anchor_day, plan, kind, campaign, theme,
                countries, budget_minor,
            )
            adsets.append(adset)

            for number in range(1, dice.integer(1, 3) + 1):
                ad, ad_last = _meta_ad(ids, dice, label, anchor_day, plan, kind, adset, theme, number)
                ads.append(ad)
                delivery[ad.id] = _Delivery(
                    first_day=first_day,
                    last_day=_earliest(last_day, adset_last, ad_last),
                    rates=_meta_rates(kind, dice),
                )

    return _MetaAccountData(tuple(campaigns), tuple(adsets), tuple(ads), delivery)


def _meta_adset(
    ids: _IdMaker,
    dice: _Dice,
    label: str,
    account: AdAccount,
    anchor_day: date,
    plan: _CampaignPlan,
    kind: _MetaKind,
    campaign: MetaCampaign,
    theme: str,
    countries: tuple[str, ...],
    budget_minor: int,
) -> tuple[MetaAdSet, date | None]:
    paused = plan.state == "active" and dice.chance(0.1)
    last_day = anchor_day - timedelta(days=dice.integer(8, 70)) if paused else None
    status, effective = _meta_child_status(
        campaign.status, campaign.effective_status, "PAUSED" if paused else "ACTIVE", "CAMPAIGN_PAUSED"
    )
    targeted = sorted(countries[: dice.integer(2, min(3, len(countries)))])
    audiences = tuple(
        (str(ids.make(f"{label}:{theme}:audience:{index}", 23_800_000_000_000_000, 10**14)),
         CUSTOM_AUDIENCE_NAMES[dice.integer(0, len(CUSTOM_AUDIENCE_NAMES) - 1)])
        for index in range(dice.integer(1, 2) if kind.objective == "OUTCOME_SALES" else 0)
    )
    created = campaign.created_time + dice.integer(60, 3_600)
    adset = MetaAdSet(
        account_id=account.digits,
        id=str(ids.make(f"{label}:{theme}:adset", 120_200_000_000_000_000, 10**14)),
        campaign_id=campaign.id,
        name=f"{plan.name}_{theme}",
        optimization_goal=kind.optimization_goal,
        billing_event="IMPRESSIONS",
        bid_strategy="COST_CAP" if dice.chance(0.2) else "LOWEST_COST_WITHOUT_CAP",
        daily_budget=None if campaign.daily_budget or campaign.lifetime_budget else budget_minor // 2,
        lifetime_budget=None,
        countries=tuple(targeted),
        age_min=dice.integer(18, 25),
        age_max=65,
        custom_audiences=audiences,
        status=status,
        effective_status=effective,
        created_time=created,
        updated_time=max(created, campaign.updated_time - dice.integer(0, 3_600)),
    )
    return adset, last_day


def _meta_ad(
    ids: _IdMaker,
    dice: _Dice,
    label: str,
    anchor_day: date,
    plan: _CampaignPlan,
    kind: _MetaKind,
    adset: MetaAdSet,
    theme: str,
    number: int,
) -> tuple[MetaAd, date | None]:
    paused = plan.state == "active" and dice.chance(0.1)
    last_day = anchor_day - timedelta(days=dice.integer(8, 70)) if paused else None
    status, effective = _meta_child_status(
        adset.status, adset.effective_status, "PAUSED" if paused else "ACTIVE", "ADSET_PAUSED"
    )
    created = adset.created_time + dice.integer(60, 3_600)
    ad_format = kind.formats[(number - 1) % len(kind.formats)]
    ad = MetaAd(
        account_id=adset.account_id,
        id=str(ids.make(f"{label}:{theme}:{number}:ad", 120_200_000_000_000_000, 10**14)),
        adset_id=adset.id,
        campaign_id=adset.campaign_id,
        name=f"{adset.name}_{ad_format}_{number}",
        creative_id=str(ids.make(f"{label}:{theme}:{number}:creative", 120_200_000_000_000_000, 10**14)),
        status=status,
        effective_status=effective,
        created_time=created,
        updated_time=max(created, adset.updated_time),
    )
    return ad, last_day


def _meta_child_status(
    parent_status: str, parent_effective: str, own: str, parent_paused: str
) -> tuple[str, str]:
    """Return (status, effective_status) of an ad set or ad.

    Archiving a parent archives its children. Pausing a parent leaves a child's own status and
    shows in its effective status (CAMPAIGN_PAUSED or ADSET_PAUSED).
    """
    if parent_status == "ARCHIVED":
        return "ARCHIVED", "ARCHIVED"
    if own == "PAUSED":
        return "PAUSED", "PAUSED"
    if parent_effective == "PAUSED":
        return own, parent_paused
    if parent_effective == "CAMPAIGN_PAUSED":
        return own, "CAMPAIGN_PAUSED"
    return own, own


def _meta_rates(kind: _MetaKind, dice: _Dice) -> dict[str, float]:
    return {
        "impressions": dice.uniform(*kind.impressions),
        "cpm": dice.uniform(*kind.cpm),
        "ctr": dice.uniform(*kind.ctr),
        "add_to_cart_rate": dice.uniform(*kind.add_to_cart_rate),
        "purchase_rate": dice.uniform(*kind.purchase_rate),
        "order_value": dice.uniform(*kind.order_value),
    }


def _meta_ad_day(
    ad: MetaAd, day: date, rates: dict[str, float], draws: list[float], factor: float
) -> MetaAdDay | None:
    """Return one day of metrics from the ad's rates and 10 draws, or None without delivery."""
    if draws[0] < 0.03:
        return None
    weekday_factor = 1.1 if day.weekday() >= 5 else 1.0

    impressions = int(rates["impressions"] * weekday_factor * (0.6 + 0.8 * draws[1]))
    spend_minor = round(impressions * rates["cpm"] * factor * (0.8 + 0.4 * draws[2]) / 10)
    if impressions == 0 and spend_minor == 0:
        return None
    frequency = 1.05 + 0.45 * draws[3]
    reach = max(1, math.ceil(impressions / frequency)) if impressions else 0
    clicks = min(impressions, int(impressions * rates["ctr"] * (0.7 + 0.6 * draws[4]) + draws[5]))
    link_clicks = int(clicks * (0.6 + 0.2 * draws[6]))
    landing_page_views = int(link_clicks * (0.7 + 0.2 * draws[6]))

    carts = round(link_clicks * rates["add_to_cart_rate"] * (0.6 + 0.8 * draws[7]))
    purchases = round(link_clicks * rates["purchase_rate"] * (0.5 + draws[8]) + 0.3 * draws[9])
    unit_value = round(rates["order_value"] * factor * (0.8 + 0.4 * draws[9]) * 100)
    cart_parts = _attribution_parts(carts)
    purchase_parts = _attribution_parts(purchases)
    return MetaAdDay(
        ad_id=ad.id,
        adset_id=ad.adset_id,
        campaign_id=ad.campaign_id,
        day=day,
        country=None,
        impressions=impressions,
        reach=reach,
        clicks=clicks,
        link_clicks=link_clicks,
        landing_page_views=landing_page_views,
        spend_minor=spend_minor,
        add_to_cart=cart_parts,
        add_to_cart_value=tuple(part * unit_value for part in cart_parts),  # type: ignore[arg-type]
        purchases=purchase_parts,
        purchase_value=tuple(part * unit_value for part in purchase_parts),  # type: ignore[arg-type]
    )


def _attribution_parts(total: int) -> tuple[int, int, int]:
    """Split a count into (1-day click, clicks on days 2 to 7, 1-day view), at least 55% first."""
    first_day_clicks = math.ceil(total * 0.55)
    later_clicks = int(total * 0.25)
    return first_day_clicks, later_clicks, total - first_day_clicks - later_clicks


def _with_late_meta_purchases(
    row: MetaAdDay, rates: dict[str, float], factor: float, ticks: int
) -> MetaAdDay:
    extra = LATE_CONVERSIONS_PER_TICK * ticks
    unit_value = round(rates["order_value"] * factor * 100)
    one_day, later, view = row.purchases
    one_day_value, later_value, view_value = row.purchase_value
    return replace(
        row,
        purchases=(one_day, later + extra, view),
        purchase_value=(one_day_value, later_value + extra * unit_value, view_value),
    )


def _split_integer(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into parts proportional to `weights` that add up to `total` exactly.

    The rounding remainder goes to the part with the largest weight, so a zero weight always
    gets 0.
    """
    weight_sum = sum(weights)
    parts = [int(total * weight / weight_sum) for weight in weights]
    largest = max(range(len(weights)), key=lambda index: weights[index])
    parts[largest] += total - sum(parts)
    return parts


def _nested_split(totals: Sequence[int], weights: Sequence[float]) -> list[list[int]]:
    """Split counts where each one contains the next (impressions >= clicks >= ...).

    Each level splits only its surplus over the next level, so every country keeps the
    containment and every level still adds up to its total.
    """
    columns: list[list[int]] = []
    below = [0] * len(weights)
    for position in range(len(totals) - 1, -1, -1):
        inner = totals[position + 1] if position + 1 < len(totals) else 0
        surplus = _split_integer(totals[position] - inner, weights)
        below = [low + extra for low, extra in zip(below, surplus)]
        columns.append(below)
    columns.reverse()
    return columns


def _split_parts(parts: Sequence[int], weights: Sequence[float]) -> list[list[int]]:
    """Split each attribution part of a count, and return the three parts of each country."""
    columns = [_split_integer(part, weights) for part in parts]
    return [[column[index] for column in columns] for index in range(len(weights))]


def _split_values(
    values: Sequence[int], counts: Sequence[int], count_columns: Sequence[Sequence[int]]
) -> list[list[int]]:
    """Split each attribution part of a money value like its count.

    No country gets value without a count. A part whose count is 0 keeps its value (always 0
    in this world) in the first country.
    """
    columns = []
    for part, value in enumerate(values):
        shares = [column[part] for column in count_columns]
        weights = shares if counts[part] else [1.0] + [0.0] * (len(shares) - 1)
        columns.append(_split_integer(value, weights))
    return [[column[index] for column in columns] for index in range(len(count_columns))]


def _product_id(seed: int, ad_id: str, number: int) -> str:
    """Return a stable 16-digit catalog product id for one of an ad's products."""
    digest = hashlib.sha256(f"spendlake-ads:{seed}:{ad_id}:product:{number}".encode()).digest()
    return str(10**15 + int.from_bytes(digest[:8], "big") % (9 * 10**15))


def _split_ad_day(ad_day: MetaAdDay, countries: Sequence[str], weights: Sequence[float]) -> list[MetaAdDay]:
    impressions, clicks, links, views = _nested_split(
        (ad_day.impressions, ad_day.clicks, ad_day.link_clicks, ad_day.landing_page_views), weights
    )
    spend = _split_integer(ad_day.spend_minor, weights)
    carts = _split_parts(ad_day.add_to_cart, weights)
    cart_values = _split_values(ad_day.add_to_cart_value, ad_day.add_to_cart, carts)
    purchases = _split_parts(ad_day.purchases, weights)
    purchase_values = _split_values(ad_day.purchase_value, ad_day.purchases, purchases)
    frequency = ad_day.impressions / ad_day.reach if ad_day.reach else 1.0

    rows = []
    for index, country in enumerate(countries):
        if impressions[index] == 0 and spend[index] == 0:
            continue
        reach = min(impressions[index], max(1, math.ceil(impressions[index] / frequency)))
        rows.append(
            replace(
                ad_day,
                country=country,
                impressions=impressions[index],
                reach=reach if impressions[index] else 0,
                clicks=clicks[index],
                link_clicks=links[index],
                landing_page_views=views[index],
                spend_minor=spend[index],
                add_to_cart=tuple(carts[index]),
                add_to_cart_value=tuple(cart_values[index]),
                purchases=tuple(purchases[index]),
                purchase_value=tuple(purchase_values[index]),
            )
        )
    return rows

