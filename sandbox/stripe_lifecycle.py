"""The catalog, subscriptions, invoices, payment intents, balance transactions and events of a `StripeWorld`.

`Lifecycle` runs after the charges, customers and refunds of every batch exist. It walks the
batches in time order: the history window (the 90 days before the anchor), then each tick's
window. In each window it creates the objects that belong there and applies the tick's
changes, and it logs an event for every creation, change and deletion in Stripe's shape.

Events older than 30 days before the anchor are not kept: `/v1/events` never serves them,
because the world's "now" is never earlier than the anchor.

Stripe renders an event's object in the API version that was current for the account when
the event was created. A few events of each tick (the tick's first `invoice.paid` and
`LEGACY_EVENTS_PER_TICK` others) carry `LEGACY_API_VERSION` and that version's shape.
There an invoice has `subscription` at the top and no `parent`, and a subscription has its
billing period at the top and not on its items.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

DAY_SECONDS = 86_400
EVENT_DAYS = 30
API_VERSION = "2026-08-26.dahlia"
#: An API version from before basil (2025-03-31), which moved invoice and subscription fields.
LEGACY_API_VERSION = "2024-06-20"
LEGACY_EVENTS_PER_TICK = 2
SETTLEMENT_CURRENCY = "usd"
# Settlement rates to USD, fixed so balance transactions are reproducible.
USD_RATES = {"usd": None, "eur": 1.08, "gbp": 1.27, "jpy": 0.0067}
MINOR_UNIT_EXPONENT = {"usd": 2, "eur": 2, "gbp": 2, "jpy": 0}

# (name, USD monthly amount in cents)
PLANS = (("Spendlake Starter", 900), ("Spendlake Growth", 2_900), ("Spendlake Scale", 9_900))
SHOP_PRODUCTS = (
    ("Canvas tote bag", 1_800), ("Ceramic mug", 1_200), ("Notebook set", 2_400),
    ("Desk lamp", 5_900), ("Wool scarf", 3_900),
)
SUBSCRIBER_SHARE = 0.15
HISTORY_CANCEL_SHARE = 0.1
BILLING_PERIOD = 30 * DAY_SECONDS


@dataclass
class Ledger:
    """Current objects by kind (insertion order) and the events log."""

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    deleted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Event id to its position in time order, to break ties within one second.
    sequence: dict[str, int] = field(default_factory=dict)

    def kind(self, name: str) -> dict[str, dict[str, Any]]:
        return self.objects.setdefault(name, {})


def _price_amount(usd_cents: int, currency: str) -> int:
    """Return a list price in `currency`'s minor unit; yen amounts are whole yen."""
    if currency == "jpy":
        return (usd_cents * 150 // 100) // 10 * 10
    if currency == "usd":
        return usd_cents
    return usd_cents - (100 if currency == "eur" else 200)


def legacy_shape(obj: dict[str, Any]) -> dict[str, Any]:
    """Return `obj` as LEGACY_API_VERSION renders it; objects other than invoices and subscriptions keep their shape."""
    legacy = copy.deepcopy(obj)
    if legacy.get("object") == "invoice":
        parent = legacy.pop("parent", None) or {}
        legacy["subscription"] = (parent.get("subscription_details") or {}).get("subscription")
    elif legacy.get("object") == "subscription":
        for item in legacy["items"]["data"]:
            legacy["current_period_start"] = item.pop("current_period_start")
            legacy["current_period_end"] = item.pop("current_period_end")
    return legacy


def settlement_amount(amount: int, currency: str) -> tuple[int, float | None]:
    """Return `amount` converted to USD cents and the exchange rate used (None for USD)."""
    rate = USD_RATES[currency]
    if rate is None:
        return amount, None
    major = amount / 10 ** MINOR_UNIT_EXPONENT[currency]
    return round(major * rate * 100), rate


class Lifecycle:
    """Builds the objects and events that follow from the base batches; see the module docstring."""

    def __init__(self, seed: int, anchor: int, draw_factory: Any, stripe_id: Any) -> None:
        self.seed = seed
        self.anchor = anchor
        self.event_floor = anchor - EVENT_DAYS * DAY_SECONDS
        self._draw_factory = draw_factory
        self._stripe_id = stripe_id
        self.ledger = Ledger()
        self._counters: dict[str, int] = {}
        self._promo_prices: list[str] = []
        self._charges: dict[str, dict[str, Any]] = {}

    # Identity and events

    def _new_id(self, prefix: str, kind: str, length: int = 24) -> str:
        index = self._counters.get(kind, 0)
        self._counters[kind] = index + 1
        return f"{prefix}_{self._stripe_id(self.seed, kind, index, length)}"

    def event(self, event_type: str, at: int, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        """Log one event with a snapshot of `obj`; events before the 30-day floor are never served."""
        if at < self.event_floor:
            return
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event_id = self._new_id("evt", "event")
        self.ledger.sequence[event_id] = len(self.ledger.events)
        self.ledger.events.append(
            {
                "id": event_id,
                "object": "event",
                "api_version": API_VERSION,
                "created": at,
                "data": data,
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )

    def _update(self, kind: str, obj: dict[str, Any], event_type: str, at: int, changes: dict[str, Any]) -> None:
        previous = {key: copy.deepcopy(obj.get(key)) for key in changes}
        obj.update(changes)
        self.event(event_type, at, obj, previous)

    def _delete(self, kind: str, obj: dict[str, Any], event_type: str, at: int) -> None:
        del self.ledger.kind(kind)[obj["id"]]
        self.ledger.deleted.setdefault(kind, []).append(obj)
        self.event(event_type, at, obj)

    # Windows

    def history(self, start: int, end: int, charges: list[dict[str, Any]], customers: list[dict[str, Any]], refunds: list[dict[str, Any]]) -> None:
        """Create the catalog at the start of history, then everything that follows the base objects."""
        draw = self._draw_factory(f"spendlake-stripe:{self.seed}:lifecycle:history")
        self._catalog(draw, start + 1)
        self._follow_base(draw, start, end, charges, customers, refunds, history=True)

    def tick(self, number: int, start: int, end: int, charges: list[dict[str, Any]], customers: list[dict[str, Any]], refunds: list[dict[str, Any]]) -> None:
        """Follow the tick's new base objects, then apply the day's changes and deletions."""
        draw = self._draw_factory(f"spendlake-stripe:{self.seed}:lifecycle:tick:{number}")
        first_event = len(self.ledger.events)
        self._follow_base(draw, start, end, charges, customers, refunds, history=False)
        self._tick_changes(draw, start, end)
        self._render_some_in_legacy_version(number, self.ledger.events[first_event:])

    def _render_some_in_legacy_version(self, number: int, events: list[dict[str, Any]]) -> None:
        """Give the tick's first `invoice.paid` event and a few others the legacy version and shape."""
        # A draw of its own, so the rest of the world stays as it was before legacy events.
        draw = self._draw_factory(f"spendlake-stripe:{self.seed}:lifecycle:legacy:{number}")
        paid = [event for event in events if event["type"] == "invoice.paid"][:1]
        others = [event for event in events if all(event is not chosen for chosen in paid)]
        for event in paid + draw.sample(others, LEGACY_EVENTS_PER_TICK):
            event["api_version"] = LEGACY_API_VERSION
            event["data"]["object"] = legacy_shape(event["data"]["object"])

    def _catalog(self, draw: Any, at: int) -> None:
        for name, usd_cents in PLANS:
            product = self._product(at, name, "service", "subscription")
            for currency in ("usd", "eur", "gbp", "jpy"):
                price = self._price(at, product, currency, _price_amount(usd_cents, currency), recurring=True)
                if currency == "usd":
                    product["default_price"] = price["id"]
        for name, usd_cents in SHOP_PRODUCTS:
            product = self._product(at, name, "good", "shop")
            product["default_price"] = self._price(at, product, "usd", usd_cents, recurring=False)["id"]
            self._promo_prices.append(self._price(at, product, "usd", usd_cents - 300, recurring=False, nickname="promo")["id"])

    def _product(self, at: int, name: str, product_type: str, category: str) -> dict[str, Any]:
        product = {
            "id": self._new_id("prod", "product", 14),
            "object": "product",
            "active": True,
            "created": at,
            "default_price": None,
            "description": f"{name} from the Spendlake demo catalog",
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": {"category": category},
            "name": name,
            "package_dimensions": None,
            "shippable": product_type == "good",
            "statement_descriptor": None,
            "tax_code": None,
            "type": product_type,
            "unit_label": None,
            "updated": at,
            "url": None,
        }
        self.ledger.kind("products")[product["id"]] = product
        self.event("product.created", at, product)
        return product

    def _price(self, at: int, product: dict[str, Any], currency: str, amount: int, *, recurring: bool, nickname: str | None = None) -> dict[str, Any]:
        price = {
            "id": self._new_id("price", "price"),
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": at,
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": nickname,
            "product": product["id"],
            "recurring": (
                {"interval": "month", "interval_count": 1, "meter": None, "usage_type": "licensed", "trial_period_days": None}
                if recurring
                else None
            ),
            "tax_behavior": "exclusive",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring else "one_time",
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
        }
        self.ledger.kind("prices")[price["id"]] = price
        self.event("price.created", at, price)
        return price

    def _follow_base(
        self, draw: Any, start: int, end: int, charges: list[dict[str, Any]], customers: list[dict[str, Any]],
        refunds: list[dict[str, Any]], *, history: bool,
    ) -> None:
        """Log the base objects' events and create their payment intents, balance transactions and subscriptions."""
        refund_of = {refund["charge"]: refund for refund in refunds}
        for customer in sorted(customers, key=lambda item: (item["created"], item["id"])):
            self.ledger.kind("customers")[customer["id"]] = customer
            self.event("customer.created", customer["created"], customer)
            if draw.chance(SUBSCRIBER_SHARE):
                self._subscribe(draw, customer, end, history=history)
        for charge in sorted(charges, key=lambda item: (item["created"], item["id"])):
            self._charge_events(charge, refund_of.get(charge["id"]))
        for refund in sorted(refunds, key=lambda item: (item["created"], item["id"])):
            self._refund_objects(refund)

    def _charge_events(self, charge: dict[str, Any], refund: dict[str, Any] | None) -> None:
        """Log a charge and its payment intent as they were when paid; a refund later changes the charge."""
        at = charge["created"]
        as_paid = {**charge, "amount_refunded": 0, "refunded": False} if refund is not None else charge
        intent = self._payment_intent(charge)
        self.event("payment_intent.created", at, {**intent, "status": "requires_payment_method", "amount_received": 0, "latest_charge": None})
        self.event("charge.succeeded" if charge["paid"] else "charge.failed", at, as_paid)
        self.event("payment_intent.succeeded" if charge["paid"] else "payment_intent.payment_failed", at, intent)
        if charge["paid"]:
            self._balance_transaction(charge["balance_transaction"], at, charge["amount"], charge["currency"], "charge", charge["id"])

    def _payment_intent(self, charge: dict[str, Any]) -> dict[str, Any]:
        paid = charge["paid"]
        intent = {
            "id": charge["payment_intent"],
            "object": "payment_intent",
            "amount": charge["amount"],
            "amount_capturable": 0,
            "amount_received": charge["amount"] if paid else 0,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{charge['payment_intent']}_secret_{self._stripe_id(self.seed, 'client_secret', charge['id'], 24)}",
            "created": charge["created"],
            "currency": charge["currency"],
            "customer": charge["customer"],
            "description": charge["description"],
            "latest_charge": charge["id"],
            "livemode": False,
            "metadata": dict(charge["metadata"]),
            "payment_method": charge["payment_method"],
            "receipt_email": charge["receipt_email"],
            "status": "succeeded" if paid else "requires_payment_method",
        }
        self.ledger.kind("payment_intents")[intent["id"]] = intent
        return intent

    def _refund_objects(self, refund: dict[str, Any]) -> None:
        at = refund["created"]
        charge = self._charges.get(refund["charge"])
        self.event("refund.created", at, refund)
        if charge is not None:
            self.event("charge.refunded", at, charge, {"amount_refunded": 0, "refunded": False})
        self._balance_transaction(refund["balance_transaction"], at, -refund["amount"], refund["currency"], "refund", refund["id"])

    def index_charges(self, charges: list[dict[str, Any]]) -> None:
        """Let refunds find their charge in any batch."""
        self._charges = {charge["id"]: charge for charge in charges}

    def _balance_transaction(self, transaction_id: str, at: int, amount: int, currency: str, kind: str, source: str) -> None:
        settled, rate = settlement_amount(amount, currency)
        fee = round(settled * 0.029) + 30 if kind == "charge" else 0
        transaction = {
            "id": transaction_id,
            "object": "balance_transaction",
            "amount": settled,
            "available_on": at + 2 * DAY_SECONDS,
            "balance_type": "payments",
            "created": at,
            "currency": SETTLEMENT_CURRENCY,
            "description": None,
            "exchange_rate": rate,
            "fee": fee,
            "fee_details": [{"amount": fee, "currency": SETTLEMENT_CURRENCY, "description": "Stripe processing fees", "type": "stripe_fee"}] if fee else [],
            "net": settled - fee,
            "reporting_category": kind,
            "source": source,
            "status": "available",
            "type": kind,
        }
        self.ledger.kind("balance_transactions")[transaction_id] = transaction

    def _subscribe(self, draw: Any, customer: dict[str, Any], end: int, *, history: bool) -> None:
        """Start a monthly plan for `customer`, invoice every period up to `end`, and maybe cancel it."""
        created = min(end, customer["created"] + draw.integer(60, 3_600))
        plan = draw.pick([p for p in self.ledger.kind("products").values() if p["metadata"]["category"] == "subscription"])
        price = next(p for p in self.ledger.kind("prices").values() if p["product"] == plan["id"] and p["currency"] == customer["currency"])
        subscription_id = self._new_id("sub", "subscription")
        subscription = {
            "id": subscription_id,
            "object": "subscription",
            "billing_cycle_anchor": created,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "collection_method": "charge_automatically",
            "created": created,
            "currency": customer["currency"],
            "customer": customer["id"],
            "description": None,
            "ended_at": None,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self._new_id("si", "subscription_item", 14),
                        "object": "subscription_item",
                        "created": created,
                        "current_period_start": created,
                        "current_period_end": created + BILLING_PERIOD,
                        "metadata": {},
                        "price": copy.deepcopy(price),
                        "quantity": 1,
                        "subscription": subscription_id,
                    }
                ],
                "has_more": False,
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": {"utm_campaign": customer["metadata"].get("signup_source", "direct")},
            "start_date": created,
            "status": "active",
            "trial_end": None,
            "trial_start": None,
        }
        self.ledger.kind("subscriptions")[subscription_id] = subscription
        self.event("customer.subscription.created", created, subscription)
        canceled_at = None
        if history and draw.chance(HISTORY_CANCEL_SHARE) and created + DAY_SECONDS < end:
            canceled_at = draw.integer(created + DAY_SECONDS, end)
        last_period = (canceled_at or end) - 3_660
        period_start = created
        while period_start <= last_period:
            self._paid_invoice(subscription, customer, price, period_start)
            period_start += BILLING_PERIOD
        if canceled_at is not None:
            self.cancel(subscription, canceled_at)

    def _invoice(self, subscription: dict[str, Any], customer: dict[str, Any], price: dict[str, Any], at: int, reason: str) -> dict[str, Any]:
        amount = price["unit_amount"]
        invoice_id = self._new_id("in", "invoice")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": amount,
            "amount_paid": 0,
            "amount_remaining": amount,
            "billing_reason": reason,
            "created": at,
            "currency": price["currency"],
            "customer": customer["id"],
            "customer_address": copy.deepcopy(customer["address"]),
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "customer_phone": customer["phone"],
            "description": None,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_spendlake/{self._stripe_id(self.seed, 'invoice_url', invoice_id, 32)}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_spendlake/{self._stripe_id(self.seed, 'invoice_pdf', invoice_id, 32)}/pdf",
            "livemode": False,
            "metadata": {},
            "number": None,
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": None, "subscription": subscription["id"]},
            },
            "period_end": at,
            "period_start": at - BILLING_PERIOD if reason == "subscription_cycle" else at,
            "status": "draft",
            "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None, "voided_at": None},
            "subtotal": amount,
            "total": amount,
        }
        self.ledger.kind("invoices")[invoice_id] = invoice
        self.event("invoice.created", at, invoice)
        subscription["latest_invoice"] = invoice_id
        return invoice

    def _paid_invoice(self, subscription: dict[str, Any], customer: dict[str, Any], price: dict[str, Any], at: int) -> None:
        reason = "subscription_create" if at == subscription["created"] else "subscription_cycle"
        invoice = self._invoice(subscription, customer, price, at, reason)
        self.finalize(invoice, at + 3_600)
        self.pay(invoice, at + 3_660)

    def finalize(self, invoice: dict[str, Any], at: int) -> None:
        sequence = self._counters.get("invoice_number", 0) + 1
        self._counters["invoice_number"] = sequence
        transitions = {**invoice["status_transitions"], "finalized_at": at}
        self._update("invoices", invoice, "invoice.finalized", at, {"status": "open", "number": f"SPL-{sequence:06d}", "status_transitions": transitions})

    def pay(self, invoice: dict[str, Any], at: int) -> None:
        transitions = {**invoice["status_transitions"], "paid_at": at}
        changes = {"status": "paid", "amount_paid": invoice["amount_due"], "amount_remaining": 0, "status_transitions": transitions}
        self._update("invoices", invoice, "invoice.paid", at, changes)

    def cancel(self, subscription: dict[str, Any], at: int) -> None:
        """Cancel a subscription: Stripe calls the event `customer.subscription.deleted`, but the object stays."""
        self._update("subscriptions", subscription, "customer.subscription.deleted", at, {"status": "canceled", "canceled_at": at, "ended_at": at})

    # A tick's changes

    def _tick_changes(self, draw: Any, start: int, end: int) -> None:
        ledger = self.ledger
        moments = sorted(draw.integer(start + 1, end) for _ in range(9))

        older = [c for c in ledger.kind("customers").values() if c["created"] <= start]
        for customer in draw.sample(older, 2):
            self._change_email(customer, moments[0])

        for invoice in [i for i in ledger.kind("invoices").values() if i["status"] == "open"]:
            self.pay(invoice, moments[1])

        active = [s for s in ledger.kind("subscriptions").values() if s["status"] == "active" and s["created"] <= start]
        if active:
            self.cancel(draw.pick(active), moments[2])
        renewing = [s for s in ledger.kind("subscriptions").values() if s["status"] == "active"]
        drafts = []
        for subscription in draw.sample(renewing, 2):
            customer = ledger.kind("customers")[subscription["customer"]]
            price = subscription["items"]["data"][0]["price"]
            drafts.append(self._invoice(subscription, customer, price, moments[3], "subscription_cycle"))
        if drafts:
            self.finalize(drafts[0], moments[4])
        old_drafts = [i for i in ledger.kind("invoices").values() if i["status"] == "draft"]
        if old_drafts:
            self._delete("invoices", old_drafts[0], "invoice.deleted", moments[5])

        shop = [p for p in ledger.kind("products").values() if p["active"] and p["metadata"]["category"] == "shop"]
        if shop:
            product = draw.pick(shop)
            self._update("products", product, "product.updated", moments[6], {"active": False, "updated": moments[6]})

        self._rotate_promo_price(moments[7])
        self._delete_customer(draw, start, moments[8])

    def _change_email(self, customer: dict[str, Any], at: int) -> None:
        local, _, domain = customer["email"].partition("@")
        new_email = f"{local.split('+')[0]}+{at}@{domain}"
        self._update("customers", customer, "customer.updated", at, {"email": new_email})

    def _rotate_promo_price(self, at: int) -> None:
        """Delete the oldest unused promo price and put a new one on the same product."""
        prices = self.ledger.kind("prices")
        while self._promo_prices and self._promo_prices[0] not in prices:
            self._promo_prices.pop(0)
        if not self._promo_prices:
            return
        old = prices[self._promo_prices.pop(0)]
        self._delete("prices", old, "price.deleted", at)
        product = self.ledger.kind("products")[old["product"]]
        self._promo_prices.append(self._price(at, product, "usd", old["unit_amount"], recurring=False, nickname="promo")["id"])

    def _delete_customer(self, draw: Any, start: int, at: int) -> None:
        """Delete one customer without a live subscription (Stripe would cancel it first)."""
        subscribed = {s["customer"] for s in self.ledger.kind("subscriptions").values() if s["status"] != "canceled"}
        candidates = [c for c in self.ledger.kind("customers").values() if c["id"] not in subscribed and c["created"] <= start]
        if candidates:
            self._delete("customers", draw.pick(candidates), "customer.deleted", at)
