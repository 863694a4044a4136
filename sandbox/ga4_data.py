"""Deterministic fake Google Analytics 4 properties: daily traffic, landing pages and purchases.

A `GA4World` is a pure function of (seed, anchor, ticks), like `AdsWorld`. Each property's days run
from 89 days before its anchor-local date up to its local "today" (the date of `now`, the last tick
or the anchor, in the property's IANA time zone). Traffic campaigns are the ad platforms' campaign
names from `AdsWorld`, so reports join on them.

What changes between ticks, as in the real product:
- the three most recent days are provisional: their numbers grow with the hours elapsed since the
  day began, and are final once 72 hours have passed;
- a later tick adds days.

One day per property (10 days before the anchor) has a landing-page row whose every dimension,
`date` included, is "(other)", with `dataLossFromOtherRow` set, as GA4 sends for reports over
its cardinality limit. Every day has one landing page whose query string carries an e-mail address,
the leak a tap must cut off; `personal_values()` lists those addresses.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sandbox.ads_data import AdsWorld
from sandbox.stripe_data import StripeWorld

HISTORY_DAYS = 90
PROVISIONAL_HOURS = 72
OTHER_ROW_DAYS_BEFORE_ANCHOR = 10
# Landing pages per property and day: more than one page at the demo's page size of 250.
LANDING_PAGES_PER_DAY = 320

DEMO_SERVICE_ACCOUNT_EMAIL = "spendlake-demo@spendlake-sandbox.iam.gserviceaccount.com"
DEMO_SERVICE_ACCOUNT_KEY_ID = "spendlake-sandbox-key-1"
# A key made for the sandbox only; it signs requests to the sandbox's token endpoint and nothing else.
DEMO_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCvCw0Raifr3ilY
Mvf4w1q6eHi6FOP4S55eSRNNohTE2S9j60DpkDDnENqOHWjv9uX29MlE8QrwsLhD
Fu+qipWfQp9wOncso5qNLPloLbKJFeR+VXHAYoM1VGOWwE64mYPStRmX3+1I6SlG
5GZaGqLEUG1XIfsjd32DU3K8jvHTRPnH5XdcdzvlLSyiuEAxc9X2vWIJQW5zmJnX
9l2ekywO0aK0VURA1k/r+d9iOeMs3ObVkvGnaFOta9E/x10wtBo12LAHiPLbCxk0
PJPsz72BA69Gb27ndR3jzWE2KS6vA94QAKQVGVvLaYV1A2f1/GR300LKhJnRG10d
NT8qlrzTAgMBAAECggEABlTVf6xBzmfGQhDx5DcYuIb0AvMPfeMqUsm834F909Lx
QmF3gxs6kZkL9rj8mzVogwK+pvY7CZKyz4ZsW9RQbibIQpRyzBQM2o9mZAzHGOtI
TQOFLkrB6TNouMKy9j1jRcNULiik2g7I9e37/8VX3tbz5YNupI1FZnMlwsk+2P/l
0mdU+i1wDyiwFDhql35El1gxEvU+xx7eVRL/jW5qsIMdsJ4sIVjCfm4RuOb9FC2G
okQLHrZytj2i4N244d/LBedbGCAbRx3RVCBfCpnWAfHvVEcoZX1a4dQHDF3tpQs+
1xU9JcRfsMOgOp7ymF7tYZCtQDqPf5BV0iYA7FoLXQKBgQDn4MSf3bRu6+pX2g6c
RU5nINpI1jTfOl0TDmmJWEO3y1JIGn1rGsJkU7t57BWKll1IWYbo2J87w0pg10CB
5lZeJSZaZeyEcHjpodBCFmSR2+LRN0X1WkMUSwytWKbD2r3V+5o+wJweK1EGSo1P
Zq96bh7Az+xEupEwvsmn562ttwKBgQDBQLFZyfzuEDy0LfYspxlh6wX9REsrquFp
GFmgVkv8PGQQRpg2gfBMqTEmjtmP6rj7+ddKqA/yGKNzfGMHnJWvyWEtWf1CKysO
sZyhABBIIAgpQQ6C7lzsy+XP2N5D2KjALJUGPZeYip/sDR8w/G0Ruf/MqsD3traE
cJUNh9BpxQKBgGiUcVoA7j4Q3PKegHRutbvBj3HGWrZLZmsP1v2A95nPc97dQ6+o
s//329hTaCvHQW8+IaCnAro7jDI9IvTzZAS2EKQ40AGzkHUe7ATCgL1gRN5DZaQQ
/6wJZUBReXVgFLqL7bdbu43Hz5Vcznr/PymivPANVuxwkMdBZUX7MdPlAoGBAJGr
60Psjz0AflGvZ6aHGwoFeBFOfn9fIuTulvjWtBZhi2f9XtWPowyWaNdQzMzAOUqv
LMs43jQ2wFbYR2nAbdEBMsBV2iMbmSxNU+zEuIE1rBE02fR2KxPQKt4+8mQgGCws
LvVyTiiNLjloNr/dN3YqR5kGicjwMKqqlqCJZN+lAoGAOHFSLmVPMBeuJSspOdSa
xrROJzGIbmqgAC13GScOo/5ViTy5k8OjxxJYv9epK0yF4vuuf/bf1G0QjhVxmsDb
p9oq7xZXpVD0UlO0NDAU/pVuMNjSEX9apv5PhBua35bpi/6Un/8OYm5MnC+AKNrI
GSj5j4RitLDdPHj8aFHVYYI=
-----END PRIVATE KEY-----
"""


@dataclass(frozen=True)
class Property:
    """A GA4 property: its id, owner account, name, time zone and currency, and the ad accounts it gets traffic from."""

    property_id: str
    account_id: str
    display_name: str
    time_zone: str
    currency: str
    google_customer: str | None
    meta_account: str | None
    create_time: str = "2023-03-01T09:30:00.000Z"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


PROPERTIES = (
    Property("312000111", "290001111", "Spendlake Demo Store US", "America/New_York", "USD", "4567890123", "act_100200300400500"),
    Property("312000222", "290001111", "Spendlake Demo Store NZ", "Pacific/Auckland", "NZD", "7890123456", "act_600700800900100"),
)
# A property whose daily quota is spent: every report request for it returns 429.
QUOTA_PROPERTY = Property("312000999", "290001111", "Spendlake Demo Quota", "UTC", "USD", None, None)
DEMO_PROPERTY_IDS = tuple(item.property_id for item in PROPERTIES)

#: (source, medium, campaign) rows that do not come from the ad platforms, with a relative traffic weight.
ORGANIC_SOURCES = (
    ("google", "organic", "(organic)", 9.0),
    ("bing", "organic", "(organic)", 1.2),
    ("(direct)", "(none)", "(direct)", 6.0),
    ("news.example.com", "referral", "(referral)", 0.8),
    ("newsletter", "email", "spring_newsletter", 1.0),
    ("(not set)", "(not set)", "(not set)", 0.3),
)
PAGE_SECTIONS = ("products", "collections", "blog", "help", "stores")


@dataclass(frozen=True)
class TrafficRow:
    """Metrics of one (source, medium, campaign) on one day. Revenue is exact, in the property's currency."""

    day: date
    source: str
    medium: str
    campaign: str
    sessions: int
    engaged_sessions: int
    total_users: int
    new_users: int
    key_events: int
    purchase_revenue: Decimal


@dataclass(frozen=True)
class LandingPageRow:
    """Metrics of one landing page on one day; `day` is None for the "(other)" row of a day."""

    day: date | None
    landing_page: str
    sessions: int
    engaged_sessions: int
    key_events: int
    total_users: int


@dataclass(frozen=True)
class PurchaseRow:
    """One transaction on one day, in the property's currency."""

    day: date
    transaction_id: str
    purchase_revenue: Decimal
    tax_amount: Decimal
    shipping_amount: Decimal
    items_purchased: int
    ecommerce_purchases: int


@dataclass(frozen=True)
class DayReport:
    """Everything a property reports for one of its days, as seen at the world's `now`."""

    traffic: tuple[TrafficRow, ...]
    landing_pages: tuple[LandingPageRow, ...]
    purchases: tuple[PurchaseRow, ...]


class GA4World:
    """GA4 properties built from (seed, anchor, ticks); day reports are built on first use, under a lock."""

    def __init__(self, seed: int, anchor: int, ticks: Sequence[int] = ()) -> None:
        StripeWorld.validate_inputs(seed, anchor, ticks)
        self.seed = seed
        self.anchor = anchor
        self.ticks = tuple(ticks)
        self.now = self.ticks[-1] if self.ticks else self.anchor
        self._properties = {item.property_id: item for item in (*PROPERTIES, QUOTA_PROPERTY)}
        ads = AdsWorld(seed, anchor, ticks)
        self._campaigns = {
            item.property_id: _paid_sources(ads, item) for item in self._properties.values()
        }
        self._lock = threading.Lock()
        self._days: dict[tuple[str, date], DayReport] = {}

    @property
    def properties(self) -> tuple[Property, ...]:
        return tuple(self._properties.values())

    def property(self, property_id: str) -> Property | None:
        return self._properties.get(property_id)

    def is_quota_spent(self, property_id: str) -> bool:
        return property_id == QUOTA_PROPERTY.property_id

    def anchor_date(self, property_id: str) -> date:
        return _local_date(self.anchor, self._require(property_id).zone)

    def today(self, property_id: str) -> date:
        """Return the calendar date of `now` in the property's time zone, its last day with data."""
        return _local_date(self.now, self._require(property_id).zone)

    def first_day(self, property_id: str) -> date:
        return self.anchor_date(property_id) - timedelta(days=HISTORY_DAYS - 1)

    def other_row_day(self, property_id: str) -> date:
        """Return the day whose landing pages include an "(other)" row with "(other)" as its date."""
        return self.anchor_date(property_id) - timedelta(days=OTHER_ROW_DAYS_BEFORE_ANCHOR)

    def completeness(self, property_id: str, day: date) -> float:
        """Return the share of a day's final numbers reported at `now`: 1.0 once 72 hours have passed."""
        item = self._require(property_id)
        started = datetime.combine(day, time(0), tzinfo=item.zone).timestamp()
        hours = max(0.0, (self.now - started) / 3600)
        return min(1.0, 0.4 + 0.6 * hours / PROVISIONAL_HOURS)

    def day_report(self, property_id: str, day: date) -> DayReport:
        """Return one day's rows; a day outside the property's days has none."""
        if not self.first_day(property_id) <= day <= self.today(property_id):
            return DayReport((), (), ())
        key = (property_id, day)
        with self._lock:
            report = self._days.get(key)
            if report is None:
                report = self._build_day(property_id, day)
                self._days[key] = report
        return report

    def personal_values(self) -> set[str]:
        """Return every e-mail address the world puts into landing-page query strings."""
        return {
            _leaked_email(item.property_id, day)
            for item in self._properties.values()
            for day in _days(self.first_day(item.property_id), self.today(item.property_id))
        }

    def _require(self, property_id: str) -> Property:
        item = self._properties.get(property_id)
        if item is None:
            msg = f"Unknown GA4 property {property_id!r}; the sandbox serves {', '.join(self._properties)}."
            raise KeyError(msg)
        return item

    def _build_day(self, property_id: str, day: date) -> DayReport:
        share = self.completeness(property_id, day)
        dice = random.Random(f"ga4:{self.seed}:{property_id}:{day.isoformat()}")
        traffic = tuple(_traffic_rows(day, self._campaigns[property_id], dice, share))
        pages = list(_landing_rows(property_id, day, dice, share))
        if day == self.other_row_day(property_id):
            pages.append(LandingPageRow(None, "(other)", _scaled(140, share), _scaled(61, share), _scaled(3, share), _scaled(120, share)))
        purchases = tuple(_purchase_rows(property_id, day, dice, share))
        return DayReport(traffic, tuple(pages), purchases)


def _paid_sources(ads: AdsWorld, item: Property) -> tuple[tuple[str, str, str, float], ...]:
    """Return (source, medium, campaign, weight) for the ad campaigns that send traffic to a property."""
    rows = []
    if item.google_customer:
        rows.extend(("google", "cpc", campaign.name, 2.0) for campaign in ads.google_campaigns(item.google_customer))
    if item.meta_account:
        rows.extend(("facebook", "paid_social", campaign.name, 1.5) for campaign in ads.meta_campaigns(item.meta_account))
    return tuple(rows)


def _traffic_rows(day: date, paid: Sequence[tuple[str, str, str, float]], dice: random.Random, share: float) -> list[TrafficRow]:
    rows = []
    for source, medium, campaign, weight in (*paid, *ORGANIC_SOURCES):
        draws = [dice.random() for _ in range(5)]
        if draws[0] < 0.15 and medium in ("cpc", "paid_social"):
            continue  # a campaign without clicks that day
        sessions = int(weight * (20 + 80 * draws[1]))
        engaged = int(sessions * (0.45 + 0.3 * draws[2]))
        users = max(1, int(sessions * 0.85))
        new_users = int(users * (0.3 + 0.4 * draws[3]))
        key_events = int(sessions * 0.04 * draws[4] * 3)
        revenue = Decimal(int(key_events * (4000 + 6000 * draws[2]))) / 100
        rows.append(TrafficRow(
            day, source, medium, campaign,
            _scaled(sessions, share), _scaled(engaged, share), _scaled(users, share), _scaled(new_users, share),
            _scaled(key_events, share), (revenue * Decimal(str(round(share, 4)))).quantize(Decimal("0.01")),
        ))
    return rows


def _landing_rows(property_id: str, day: date, dice: random.Random, share: float) -> list[LandingPageRow]:
    rows = [LandingPageRow(day, "/", _scaled(300 + int(200 * dice.random()), share), _scaled(150, share), _scaled(9, share), _scaled(260, share))]
    for number in range(1, LANDING_PAGES_PER_DAY):
        section = PAGE_SECTIONS[number % len(PAGE_SECTIONS)]
        sessions = 1 + int(40 * dice.random() ** 2)
        rows.append(LandingPageRow(
            day, f"/{section}/item-{number:04d}",
            _scaled(sessions, share), _scaled(int(sessions * 0.6), share), _scaled(int(sessions * 0.05), share), _scaled(max(1, sessions - 1), share),
        ))
    # The leak GA4 does not stop: a confirmation link with the visitor's address in its query string.
    rows.append(LandingPageRow(day, f"/account/confirm?email={_leaked_email(property_id, day)}&ref=mail", _scaled(2, share), _scaled(1, share), 0, _scaled(1, share)))
    rows.append(LandingPageRow(day, "(not set)", _scaled(5, share), 0, 0, _scaled(5, share)))
    return rows


def _purchase_rows(property_id: str, day: date, dice: random.Random, share: float) -> list[PurchaseRow]:
    count = int(round((8 + 12 * dice.random()) * share))
    rows = []
    for number in range(1, count + 1):
        items = 1 + int(3 * dice.random())
        revenue = Decimal(int(2500 + 15000 * dice.random())) / 100
        rows.append(PurchaseRow(
            day, f"T{property_id[-3:]}-{day:%Y%m%d}-{number:03d}", revenue,
            (revenue * Decimal("0.0825")).quantize(Decimal("0.01")), Decimal("4.95") if revenue < 75 else Decimal("0.00"), items, 1,
        ))
    if count and dice.random() < 0.5:
        rows.append(PurchaseRow(day, "(not set)", Decimal("19.90"), Decimal("1.64"), Decimal("4.95"), 1, 1))
    return rows


def _scaled(value: int, share: float) -> int:
    return int(value * share)


def _leaked_email(property_id: str, day: date) -> str:
    return f"visitor.{property_id[-3:]}.{day:%Y%m%d}@example.com"


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _local_date(epoch: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(epoch, zone).date()
