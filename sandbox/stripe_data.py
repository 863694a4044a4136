"""Deterministic fake Stripe account: payments, customers, subscriptions, invoices, catalog and events.

A `StripeWorld` is a pure function of (seed, anchor, ticks). The history batch covers the 90
days before `anchor`, and each tick t_k adds a batch of new objects created in (t_{k-1}, t_k]
with t_0 = anchor. Each tick also changes existing objects as a day of real use would: a
customer changes their email, a subscription is canceled, open invoices are paid, a product
is archived, and one customer, one unused price and one draft invoice are deleted. Every
creation, change and deletion is logged as a Stripe event with a snapshot of the object
(`data.object`) and, for changes, `data.previous_attributes`. Objects created in earlier
batches keep their ids and `created` times whatever ticks follow.

Objects are shaped like Stripe API version 2026-08-26.dahlia. Every personal value is fake.
Emails use only example.com, example.org and example.net. US phones are in the fictional
555-01xx block and UK phones in Ofcom's drama range +44 7700 900xxx. Names and street lines
carry a per-person number, so a byte search for one of them finds only that person.

Randomness comes only from `random.Random.random()` seeded with a string, because Python
guarantees that sequence across versions and processes. The integer and choice helpers of
`random` carry no such guarantee, so `sandbox.draws.Draw` rebuilds them on `random()`.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.draws import Draw
from sandbox.stripe_lifecycle import EVENT_DAYS, Lifecycle

KINDS = (
    "charges", "customers", "refunds", "invoices", "subscriptions", "payment_intents",
    "balance_transactions", "products", "prices", "events",
)

DAY_SECONDS = 86_400
HISTORY_DAYS = 90

HISTORY_CHARGES = (2_900, 3_100)
HISTORY_CUSTOMERS = (570, 630)
HISTORY_REFUND_SHARE = 0.05
TICK_CHARGES = (20, 40)
TICK_CUSTOMERS = (2, 6)
TICK_REFUNDS = (1, 3)

# Share of objects that reuse the previous object's `created` second, so that ties are common.
TIE_RATE = 0.06
GUEST_RATE = 0.2
FAILED_RATE = 0.07
DISPUTED_RATE = 0.005

UTM_CAMPAIGNS = (
    ("google", "cpc", "brand_search"),
    ("google", "cpc", "generic_search"),
    ("google", "cpc", "shopping_pmax"),
    ("facebook", "paid_social", "retargeting_q4"),
    ("facebook", "paid_social", "prospecting_lookalike"),
    ("newsletter", "email", "weekly_digest"),
)
# Share of charges whose metadata carries only `order_id`, like a shop does for direct traffic.
DIRECT_TRAFFIC_RATE = 0.15

SIGNUP_SOURCES = ("google", "facebook", "newsletter", "direct", "referral")

FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger",
    "Radia", "Donald", "Hedy", "Tim", "Katherine", "John", "Sophie", "Niklaus", "Annie", "Bjarne",
)
LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
    "Allen", "Dijkstra", "Perlman", "Knuth", "Lamarr", "Berners", "Johnson", "McCarthy",
    "Wilson", "Wirth", "Easley", "Stroustrup",
)
STREET_NAMES = (
    "Maple", "Oak", "Cedar", "Birch", "Elm", "Willow", "Aspen", "Juniper", "Hazel", "Rowan",
)

# (country, currency, locale, weight, ((city, state, postal_code), ...))
COUNTRIES = (
    ("US", "usd", "en-US", 0.35, (("New York", "NY", "10001"), ("Austin", "TX", "78701"),
                                  ("Seattle", "WA", "98101"), ("Chicago", "IL", "60601"))),
    ("GB", "gbp", "en-GB", 0.20, (("London", None, "EC1A 1BB"), ("Manchester", None, "M1 1AE"),
                                  ("Leeds", None, "LS1 4AP"))),
    ("DE", "eur", "de-DE", 0.10, (("Berlin", None, "10115"), ("Hamburg", None, "20095"))),
    ("FR", "eur", "fr-FR", 0.10, (("Paris", None, "75001"), ("Lyon", None, "69001"))),
    ("NL", "eur", "nl-NL", 0.05, (("Amsterdam", None, "1012 JS"),)),
    ("IE", "eur", "en-IE", 0.05, (("Dublin", None, "D02 X285"),)),
    ("JP", "jpy", "ja-JP", 0.15, (("Tokyo", "Tokyo", "100-0001"), ("Osaka", "Osaka", "530-0001"))),
)

# Area codes where phonenumbers 9.0 accepts every +1 NXX 555-01xx number as valid.
US_AREA_CODES = (
    201, 202, 206, 212, 213, 214, 215, 303, 305, 310, 312, 404, 415, 503, 512,
    602, 617, 646, 702, 704, 713, 718, 773, 801, 808, 813, 858, 917, 919, 971,
)
# NOTE: phonenumbers rates the Ofcom drama range as possible but not valid, so a detector
# that requires valid numbers does not find these UK phones inside free text.
UK_DRAMA_PHONES = 1_000

# (brand, funding choices, last4 of Stripe's published test cards)
CARD_BRANDS = (
    ("visa", ("credit", "debit"), ("4242", "5556", "1881")),
    ("mastercard", ("credit", "debit"), ("4444", "3222", "8210")),
    ("amex", ("credit",), ("8431", "0005")),
)
FAILURES = (
    ("card_declined", "generic_decline", "Your card was declined."),
    ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ("expired_card", "expired_card", "Your card has expired."),
    ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
)
REFUND_REASONS = (None, "requested_by_customer", "requested_by_customer", "duplicate", "fraudulent")

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BYTE_TO_BASE62 = bytes(ord(_BASE62[value % 62]) for value in range(256))


def stripe_id(seed: int, kind: str, index: int, length: int) -> str:
    """Derive a stable base62 id body of `length` characters from a hash of (seed, kind, index).

    Each SHAKE-256 output byte maps to one character (byte mod 62). The slight bias toward
    the first characters does not matter for ids.
    """
    digest = hashlib.shake_256(f"{seed}:{kind}:{index}".encode()).digest(length)
    return digest.translate(_BYTE_TO_BASE62).decode("ascii")


@dataclass(frozen=True)
class _Card:
    brand: str
    funding: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    payment_method: str


@dataclass(frozen=True)
class _Person:
    """A fake payer: a customer, or a guest who appears only in one charge's billing details."""

    number: int
    name: str
    email: str
    phone: str | None
    country: str
    currency: str
    locale: str
    address: dict[str, Any]
    card: _Card


@dataclass
class _Counters:
    """Running indexes that continue from one batch into the next."""

    charges: int = 0
    customers: int = 0
    refunds: int = 0
    persons: int = 0
    us_phones: int = 0
    uk_phones: int = 0


@dataclass
class _Batch:
    charges: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)


class SortedObjects:
    """Objects of one kind in Stripe's list order, with lookups by id and by `created`.

    The order is `created` descending with ties broken by id descending (code point order),
    so it ends in a unique key and cursor paging over it is stable.
    """

    def __init__(self, objects: Sequence[dict[str, Any]], tie: Any = None) -> None:
        """`tie(item)` orders objects of one second; by default their ids do."""
        tie = tie or (lambda item: item["id"])
        ordered = sorted(objects, key=lambda item: (item["created"], tie(item)), reverse=True)
        self.objects: tuple[dict[str, Any], ...] = tuple(ordered)
        self._positions = {item["id"]: position for position, item in enumerate(ordered)}
        # Negated so that the list ascends and `bisect` applies.
        self._negated_created = [-item["created"] for item in ordered]

    def __len__(self) -> int:
        return len(self.objects)

    def position(self, object_id: str) -> int | None:
        """Return the list position of `object_id`, or None when no object has that id."""
        return self._positions.get(object_id)

    def created_span(self, gte: int | None = None, lte: int | None = None) -> tuple[int, int]:
        """Return positions [start, stop) of the objects with `created` in [gte, lte]."""
        negated = self._negated_created
        start = 0 if lte is None else bisect.bisect_left(negated, -lte)
        stop = len(negated) if gte is None else bisect.bisect_right(negated, -gte)
        return start, max(start, stop)


class StripeWorld:
    """Charges, customers and refunds of one fake Stripe account, built from (seed, anchor, ticks).

    `anchor` and `ticks` are epoch seconds (UTC). Ticks must be strictly increasing and later
    than `anchor`. Lists hold the same dict objects on every call, so callers must not mutate
    them.
    """

    def __init__(self, seed: int, anchor: int, ticks: Sequence[int] = ()) -> None:
        self.validate_inputs(seed, anchor, ticks)
        self.seed = seed
        self.anchor = anchor
        self.ticks = tuple(ticks)
        self.now = self.ticks[-1] if self.ticks else self.anchor

        generator = _Generator(self.seed, self.anchor)
        windows = [(self.anchor - HISTORY_DAYS * DAY_SECONDS, self.anchor, generator.history())]
        window_start = self.anchor
        for number, tick in enumerate(self.ticks, start=1):
            windows.append((window_start, tick, generator.tick(number, window_start, tick)))
            window_start = tick
        batch = _Batch()
        for _, _, later in windows:
            _extend(batch, later)

        lifecycle = Lifecycle(self.seed, self.anchor, Draw, stripe_id)
        lifecycle.index_charges(batch.charges)
        for number, (start, end, window) in enumerate(windows):
            if number == 0:
                lifecycle.history(start, end, window.charges, window.customers, window.refunds)
            else:
                lifecycle.tick(number, start, end, window.charges, window.customers, window.refunds)
        ledger = lifecycle.ledger
        self._deleted = ledger.deleted
        self._filtered: dict[str, SortedObjects] = {}

        self._lists = {
            "charges": SortedObjects(batch.charges),
            "customers": SortedObjects(list(ledger.kind("customers").values())),
            "refunds": SortedObjects(batch.refunds),
        }
        for kind in ("invoices", "subscriptions", "payment_intents", "balance_transactions", "products", "prices"):
            self._lists[kind] = SortedObjects(list(ledger.kind(kind).values()))
        # Stripe keeps 30 days of events; the world serves those up to its "now".
        floor = self.now - EVENT_DAYS * DAY_SECONDS
        served = [event for event in ledger.events if event["created"] >= floor]
        self._lists["events"] = SortedObjects(served, tie=lambda item: ledger.sequence[item["id"]])

    @staticmethod
    def validate_inputs(seed: int, anchor: int, ticks: Sequence[int]) -> None:
        """Raise TypeError or ValueError, naming the value, unless the inputs build a world."""
        _require_int("seed", seed)
        previous = _require_int("anchor", anchor)
        for position, tick in enumerate(ticks):
            _require_int(f"ticks[{position}]", tick)
            if tick <= previous:
                msg = (
                    f"Invalid ticks[{position}] = {tick}: each tick must be later than the anchor "
                    f"and than the tick before it (previous value {previous})."
                )
                raise ValueError(msg)
            previous = tick

    @property
    def charges(self) -> list[dict[str, Any]]:
        return list(self._lists["charges"].objects)

    @property
    def customers(self) -> list[dict[str, Any]]:
        return list(self._lists["customers"].objects)

    @property
    def refunds(self) -> list[dict[str, Any]]:
        return list(self._lists["refunds"].objects)

    def listing(self, kind: str) -> SortedObjects:
        """Return the precomputed list of `kind` (one of KINDS); deleted objects are not in it."""
        if kind not in self._lists:
            msg = f"Unknown object kind {kind!r}: use one of {', '.join(KINDS)}."
            raise ValueError(msg)
        return self._lists[kind]

    def subscriptions_with_status(self, status: str | None) -> SortedObjects:
        """Return the subscriptions Stripe lists for a `status` filter (None: all but canceled)."""
        key = f"subscriptions:{status}"
        if key not in self._filtered:
            every = self._lists["subscriptions"].objects
            if status == "all":
                chosen = list(every)
            elif status is None:
                chosen = [item for item in every if item["status"] != "canceled"]
            elif status == "ended":
                chosen = [item for item in every if item["status"] in ("canceled", "incomplete_expired")]
            else:
                chosen = [item for item in every if item["status"] == status]
            self._filtered[key] = SortedObjects(chosen)
        return self._filtered[key]

    def events_of_types(self, types: frozenset[str] | None, pattern: str | None = None) -> SortedObjects:
        """Return the served events of the given types, or matching a `type` pattern such as `charge.*`."""
        if types is None and pattern is None:
            return self._lists["events"]
        key = f"events:{sorted(types) if types else pattern}"
        if key not in self._filtered:
            prefix = pattern[:-1] if pattern and pattern.endswith("*") else None

            def wanted(name: str) -> bool:
                if types is not None:
                    return name in types
                return name.startswith(prefix) if prefix is not None else name == pattern

            chosen = [event for event in self._lists["events"].objects if wanted(event["type"])]
            order = {event["id"]: position for position, event in enumerate(reversed(self._lists["events"].objects))}
            self._filtered[key] = SortedObjects(chosen, tie=lambda item: order[item["id"]])
        return self._filtered[key]

    def count(self, kind: str, gte: int | None = None, lte: int | None = None) -> int:
        """Count the objects of `kind` with `created` in [gte, lte]. None leaves that end open."""
        start, stop = self.listing(kind).created_span(gte, lte)
        return stop - start

    def deleted(self, kind: str) -> list[dict[str, Any]]:
        """Return the objects of `kind` deleted in the history or a tick, as they were when deleted."""
        return list(self._deleted.get(kind, ()))

    def retrieve(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """Return the current object of `kind` with `object_id`, as `GET /v1/<kind>/<id>` serves it.

        A deleted customer comes back as a stub with `deleted: true`, as Stripe returns it. Other
        deleted or unknown objects give None (Stripe's 404).
        """
        listing = self.listing(kind)
        position = listing.position(object_id)
        if position is not None:
            return listing.objects[position]
        if kind == "customers" and any(item["id"] == object_id for item in self._deleted.get(kind, ())):
            return {"id": object_id, "object": "customer", "deleted": True}
        return None

    def personal_values(self) -> set[str]:
        """Return every email, name, phone and street line (`line1`) in the world.

        Covers customers (current, deleted, and every earlier version in the events), charges'
        billing details and receipt emails, invoices' customer details and payment intents'
        receipt emails. City, postal code and `line2` are left out because they are shared by
        many people, so a byte search for them would report false leaks.
        """
        values: set[str] = set()
        customers = [*self._lists["customers"].objects, *self.deleted("customers")]
        customers.extend(event["data"]["object"] for event in self._lists["events"].objects if event["data"]["object"]["object"] == "customer")
        for customer in customers:
            values.update(_contact_values(customer))
            if customer["shipping"] is not None:
                values.update(_contact_values(customer["shipping"]))
        for invoice in [*self._lists["invoices"].objects, *self.deleted("invoices")]:
            values.update(_contact_values({key.removeprefix("customer_"): value for key, value in invoice.items()}))
        for intent in self._lists["payment_intents"].objects:
            if intent["receipt_email"] is not None:
                values.add(intent["receipt_email"])
        for charge in self._lists["charges"].objects:
            values.update(_contact_values(charge["billing_details"]))
            if charge["receipt_email"] is not None:
                values.add(charge["receipt_email"])
        return values


def _contact_values(holder: dict[str, Any]) -> Iterator[str]:
    for key in ("email", "name", "phone"):
        if holder.get(key) is not None:
            yield holder[key]
    address = holder.get("address")
    if address is not None and address["line1"] is not None:
        yield address["line1"]


def _require_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"Invalid {name} {value!r}: expected an integer (epoch seconds for times)."
        raise TypeError(msg)
    return value


def _extend(batch: _Batch, later: _Batch) -> None:
    batch.charges.extend(later.charges)
    batch.customers.extend(later.customers)
    batch.refunds.extend(later.refunds)


class _Generator:
    """Builds batches in time order and carries counters and customers from batch to batch."""

    def __init__(self, seed: int, anchor: int) -> None:
        self.seed = seed
        self.card_exp_base_year = time.gmtime(anchor).tm_year
        self.anchor = anchor
        self.counters = _Counters()
        # Customers in (created, index) order, with their `created` values for bisection.
        self.customers: list[tuple[dict[str, Any], _Person]] = []
        self.customer_created: list[int] = []

    def history(self) -> _Batch:
        draw = Draw(f"spendlake-stripe:{self.seed}:history")
        charges = draw.integer(*HISTORY_CHARGES)
        customers = draw.integer(*HISTORY_CUSTOMERS)
        refunds = round(charges * HISTORY_REFUND_SHARE)
        start = self.anchor - HISTORY_DAYS * DAY_SECONDS
        return self._batch(draw, start, self.anchor, charges, customers, refunds)

    def tick(self, number: int, start: int, end: int) -> _Batch:
        draw = Draw(f"spendlake-stripe:{self.seed}:tick:{number}")
        charges = draw.integer(*TICK_CHARGES)
        customers = draw.integer(*TICK_CUSTOMERS)
        refunds = draw.integer(*TICK_REFUNDS)
        return self._batch(draw, start, end, charges, customers, refunds)

    def _batch(
        self, draw: Draw, start: int, end: int, charges: int, customers: int, refunds: int
    ) -> _Batch:
        """Create objects with `created` in (start, end]."""
        batch = _Batch()

        for created in sorted(_created_times(draw, customers, start, end)):
            batch.customers.append(self._customer(draw, created))

        # Two charges on the window's last second: a sync window that ends there must keep both.
        charge_times = [end, end] + _created_times(draw, charges - 2, start, end)
        for created in charge_times:
            batch.charges.append(self._charge(draw, created))

        batch.refunds = self._refunds(draw, batch.charges, refunds, end)
        return batch

    def _person(self, draw: Draw) -> _Person:
        self.counters.persons += 1
        number = self.counters.persons
        country, currency, locale, _, cities = draw.pick_weighted(
            COUNTRIES, [entry[3] for entry in COUNTRIES]
        )
        first = draw.pick(FIRST_NAMES)
        last = draw.pick(LAST_NAMES)
        city, state, postal_code = draw.pick(cities)
        address = {
            "city": city,
            "country": country,
            "line1": f"{10_000 + number} {draw.pick(STREET_NAMES)} Street",
            "line2": f"Flat {draw.integer(1, 40)}" if draw.chance(0.2) else None,
            "postal_code": postal_code,
            "state": state,
        }
        domain = draw.pick(("example.com", "example.org", "example.net"))
        return _Person(
            number=number,
            name=f"{first} {last} {number:05d}",
            email=f"{first}.{last}.{number:05d}@{domain}".lower(),
            phone=self._phone(country),
            country=country,
            currency=currency,
            locale=locale,
            address=address,
            card=self._card(draw, number),
        )

    def _phone(self, country: str) -> str:
        """Return a fictional phone number in E.164 form, unique until its range runs out."""
        if country == "GB":
            serial = self.counters.uk_phones % UK_DRAMA_PHONES
            self.counters.uk_phones += 1
            return f"+447700{900_000 + serial}"
        serial = self.counters.us_phones % (100 * len(US_AREA_CODES))
        self.counters.us_phones += 1
        area_code = US_AREA_CODES[serial // 100]
        return f"+1{area_code}55501{serial % 100:02d}"

    def _card(self, draw: Draw, person_number: int) -> _Card:
        brand, fundings, last4s = draw.pick(CARD_BRANDS)
        return _Card(
            brand=brand,
            funding=draw.pick(fundings),
            last4=draw.pick(last4s),
            exp_month=draw.integer(1, 12),
            exp_year=self.card_exp_base_year + draw.integer(1, 5),
            fingerprint=stripe_id(self.seed, "card_fingerprint", person_number, 16),
            payment_method="pm_" + stripe_id(self.seed, "payment_method", person_number, 24),
        )

    def _customer(self, draw: Draw, created: int) -> dict[str, Any]:
        index = self.counters.customers
        self.counters.customers += 1
        person = self._person(draw)
        if draw.chance(0.1):
            person = _without_phone(person)

        customer = {
            "id": "cus_" + stripe_id(self.seed, "customer", index, 14),
            "object": "customer",
            "address": dict(person.address),
            "balance": -100 * draw.integer(1, 20) if draw.chance(0.05) else 0,
            "created": created,
            "currency": person.currency,
            "delinquent": draw.chance(0.02),
            "description": _customer_description(draw, person),
            "email": person.email,
            "invoice_prefix": stripe_id(self.seed, "invoice_prefix", index, 8).upper(),
            "livemode": False,
            "metadata": {"signup_source": draw.pick(SIGNUP_SOURCES)},
            "name": person.name,
            "phone": person.phone,
            "preferred_locales": [person.locale],
            "shipping": _shipping(draw, person),
            "tax": {
                "automatic_tax": "supported",
                "ip_address": _ip_address(draw, person.number),
                "location": {"country": person.country, "source": "ip_address", "state": None},
                "provider": "stripe",
            },
            "tax_exempt": "none",
        }
        self.customers.append((customer, person))
        self.customer_created.append(created)
        return customer

    def _payer(self, draw: Draw, created: int) -> tuple[dict[str, Any] | None, _Person]:
        """Pick an existing customer created at or before `created`, or make a guest."""
        eligible = bisect.bisect_right(self.customer_created, created)
        if eligible == 0 or draw.chance(GUEST_RATE):
            person = self._person(draw)
            return None, person if draw.chance(0.6) else _without_phone(person)
        customer, person = self.customers[draw.integer(0, eligible - 1)]
        return customer, person

    def _charge(self, draw: Draw, created: int) -> dict[str, Any]:
        index = self.counters.charges
        self.counters.charges += 1
        customer, person = self._payer(draw, created)
        amount = _amount(draw, person.currency)
        failure = draw.pick(FAILURES) if draw.chance(FAILED_RATE) else None
        succeeded = failure is None
        order_id = f"SL-{100_001 + index}"
        receipt_email = person.email if succeeded and draw.chance(0.8) else None

        return {
            "id": "ch_" + stripe_id(self.seed, "charge", index, 24),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if succeeded else 0,
            "amount_refunded": 0,
            "balance_transaction": (
                "txn_" + stripe_id(self.seed, "charge_transaction", index, 24)
                if succeeded
                else None
            ),
            "billing_details": {
                "address": dict(person.address),
                "email": person.email,
                "name": person.name,
                "phone": person.phone,
            },
            "calculated_statement_descriptor": "SPENDLAKE SHOP",
            "captured": succeeded,
            "created": created,
            "currency": person.currency,
            "customer": None if customer is None else customer["id"],
            "description": _charge_description(draw, order_id, person),
            "disputed": succeeded and draw.chance(DISPUTED_RATE),
            "failure_code": None if succeeded else failure[0],
            "failure_message": None if succeeded else failure[2],
            "livemode": False,
            "metadata": _charge_metadata(draw, order_id),
            "outcome": _outcome(draw, failure),
            "paid": succeeded,
            "payment_intent": "pi_" + stripe_id(self.seed, "payment_intent", index, 24),
            "payment_method": person.card.payment_method,
            "payment_method_details": {
                "card": {
                    "brand": person.card.brand,
                    "country": person.country,
                    "exp_month": person.card.exp_month,
                    "exp_year": person.card.exp_year,
                    "fingerprint": person.card.fingerprint,
                    "funding": person.card.funding,
                    "last4": person.card.last4,
                },
                "type": "card",
            },
            "receipt_email": receipt_email,
            "receipt_number": (
                f"{draw.integer(1000, 9999)}-{draw.integer(1000, 9999)}" if receipt_email else None
            ),
            "receipt_url": (
                "https://pay.stripe.com/receipts/payment/"
                + stripe_id(self.seed, "receipt", index, 40)
            ),
            "refunded": False,
            "status": "succeeded" if succeeded else "failed",
            "statement_descriptor": None,
        }

    def _refunds(
        self, draw: Draw, charges: list[dict[str, Any]], count: int, end: int
    ) -> list[dict[str, Any]]:
        """Refund `count` succeeded charges, each after its charge and no later than `end`."""
        candidates = [
            position
            for position, charge in enumerate(charges)
            if charge["status"] == "succeeded"
            and not charge["disputed"]
            and charge["created"] < end
        ]
        refunds = []
        for position in sorted(draw.sample(candidates, count)):
            refunds.append(self._refund(draw, charges[position], end))
        return refunds

    def _refund(self, draw: Draw, charge: dict[str, Any], end: int) -> dict[str, Any]:
        index = self.counters.refunds
        self.counters.refunds += 1
        latest = min(end, charge["created"] + 30 * DAY_SECONDS)
        amount = charge["amount"] if draw.chance(0.7) else charge["amount"] // 2

        charge["amount_refunded"] = amount
        charge["refunded"] = amount == charge["amount"]

        return {
            "id": "re_" + stripe_id(self.seed, "refund", index, 24),
            "object": "refund",
            "amount": amount,
            "balance_transaction": "txn_" + stripe_id(self.seed, "refund_transaction", index, 24),
            "charge": charge["id"],
            "created": draw.integer(charge["created"] + 1, latest),
            "currency": charge["currency"],
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": draw.pick(REFUND_REASONS),
            "receipt_number": None,
            "status": "succeeded",
        }


def _created_times(draw: Draw, count: int, start: int, end: int) -> list[int]:
    """Return `count` seconds in (start, end]. About TIE_RATE of them repeat the one before."""
    times: list[int] = []
    for _ in range(count):
        if times and draw.chance(TIE_RATE):
            times.append(times[-1])
        else:
            times.append(draw.integer(start + 1, end))
    return times


def _without_phone(person: _Person) -> _Person:
    return dataclasses.replace(person, phone=None)


def _amount(draw: Draw, currency: str) -> int:
    """Return an amount in minor units. JPY is zero-decimal, so its amount is whole yen."""
    if currency == "jpy":
        return 100 * draw.integer(5, 300)
    return 100 * draw.integer(5, 250) - 1


def _shipping(draw: Draw, person: _Person) -> dict[str, Any] | None:
    if draw.chance(0.3):
        return None
    address = dict(person.address)
    if draw.chance(0.2):
        address["line1"] = f"{10_000 + person.number} {draw.pick(STREET_NAMES)} Avenue"
    return {"address": address, "name": person.name, "phone": person.phone}


def _ip_address(draw: Draw, person_number: int) -> str | None:
    """Return an address from the documentation ranges (RFC 5737 and RFC 3849), or None."""
    roll = draw.integer(0, 9)
    if roll == 0:
        return None
    if roll == 1:
        return f"2001:db8::{person_number:x}"
    prefix = ("192.0.2", "198.51.100", "203.0.113")[(person_number // 254) % 3]
    return f"{prefix}.{1 + person_number % 254}"


def _customer_description(draw: Draw, person: _Person) -> str | None:
    roll = draw.integer(0, 19)
    if roll < 2:
        return f"Wholesale account of {person.name}"
    if roll == 2:
        return f"Prefers contact by email at {person.email}"
    return None


def _charge_description(draw: Draw, order_id: str, person: _Person) -> str | None:
    roll = draw.integer(0, 99)
    if roll < 45:
        return f"Order {order_id}"
    if roll < 60:
        return f"Order {order_id} for {person.name}"
    if roll < 68:
        return f"Gift order, send the receipt to {person.email}"
    return None


def _charge_metadata(draw: Draw, order_id: str) -> dict[str, str]:
    if draw.chance(DIRECT_TRAFFIC_RATE):
        return {"order_id": order_id}
    source, medium, campaign = draw.pick(UTM_CAMPAIGNS)
    return {
        "utm_source": source,
        "utm_medium": medium,
        "utm_campaign": campaign,
        "order_id": order_id,
    }


def _outcome(draw: Draw, failure: tuple[str, str, str] | None) -> dict[str, Any]:
    if failure is not None:
        return {
            "network_status": "declined_by_network",
            "reason": failure[1],
            "risk_level": "normal",
            "risk_score": draw.integer(5, 60),
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    elevated = draw.chance(0.05)
    return {
        "network_status": "approved_by_network",
        "reason": "elevated_risk_level" if elevated else None,
        "risk_level": "elevated" if elevated else "normal",
        "risk_score": draw.integer(66, 75) if elevated else draw.integer(0, 55),
        "seller_message": "Payment complete.",
        "type": "authorized",
    }
