"""Deterministic fake Magento 2 shop: store views, products, customers, orders, invoices, credit memos.

A `MagentoWorld` is a pure function of (seed, anchor, ticks). The history contains about 3,000
orders created in the 120 days before `anchor`, across two store views with their own base
currency. Each tick t_k adds orders created in (t_{k-1}, t_k] with t_0 = anchor.

Every order is given its whole life when it is created: when it will be invoiced, shipped
(completed), refunded or canceled. The world shows each order as it is at `now` (the last
tick, or the anchor), so a later tick also UPDATES older orders: their status, `updated_at`,
invoice and credit memo appear once their time has come. Shipping runs as a daily batch at
16:00:00 UTC, so many orders share the same `updated_at` second, as after an admin mass action.

Amounts are whole cents internally and are served as JSON floats, as Magento's typed
interfaces do (`"grand_total": 165.1`). Product EAV values are strings (`"19.9900"`).
Every personal value is fake: emails use example.com/.org/.net, phones the fictional
555-01xx block, IPs the documentation ranges 198.51.100.0/24 and 203.0.113.0/24, and last
names and street lines carry a per-person number.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.draws import Draw
from sandbox.stripe_data import FIRST_NAMES, LAST_NAMES, STREET_NAMES, US_AREA_CODES

DAY_SECONDS = 86_400
HOUR_SECONDS = 3_600
HISTORY_DAYS = 120
HISTORY_ORDERS = (2_900, 3_100)
HISTORY_CUSTOMERS = (560, 640)
TICK_ORDERS = (20, 40)
TICK_CUSTOMERS = (2, 6)
PRODUCT_COUNT = 40

# Share of orders created in the same second as the order before them.
SAME_SECOND_RATE = 0.08
GUEST_RATE = 0.2
CANCEL_RATE = 0.05
REFUND_RATE = 0.06
COUPON_RATE = 0.15
# Shipping runs daily at this second (UTC) and completes every order invoiced at least a day before.
SHIPPING_BATCH_SECOND_OF_DAY = 16 * HOUR_SECONDS

COUPONS = (("SPRING10", 10), ("WELCOME15", 15), ("VIP20", 20))

# (id, code, name, website_id, currency, time zone, locale, tax rate in percent, path prefix, weight)
STORE_VIEWS = (
    (1, "default", "Default Store View", 1, "USD", "America/New_York", "en_US", 0, "", 0.65),
    (2, "de", "German Store View", 2, "EUR", "Europe/Berlin", "de_DE", 19, "de/", 0.35),
)
SHOP_URL = "https://shop.example.com/"
# Euro prices are the dollar prices times this rate, rounded to the cent.
EUR_PER_USD = 0.92

PRODUCT_KINDS = (
    ("Tee", "tee", 1900, 3400),
    ("Hoodie", "hoodie", 4500, 7900),
    ("Yoga Mat", "yoga-mat", 2500, 6900),
    ("Water Bottle", "bottle", 900, 2400),
    ("Running Shoe", "shoe", 7900, 15900),
)
PRODUCT_ADJECTIVES = ("Radiant", "Champ", "Sprite", "Chaz", "Aether", "Orion", "Zephyr", "Nova")
MANUFACTURER_OPTION_IDS = ("213", "214", "215", "216")
PAYMENT_METHODS = ("checkmo", "banktransfer", "braintree", "paypal_express")


@dataclass(frozen=True)
class Person:
    """A fake shopper: registered customers and guests both have one."""

    number: int
    firstname: str
    lastname: str
    email: str
    telephone: str
    street: str
    city: str
    postcode: str
    region: str
    dob: str

    @property
    def full_name(self) -> str:
        return f"{self.firstname} {self.lastname}"


@dataclass(frozen=True)
class Line:
    """One ordered product; `child_product_id` names the simple variant of a configurable product."""

    product_id: int
    qty: int
    price_cents: int
    discount_cents: int
    child_product_id: int | None = None


@dataclass(frozen=True)
class Order:
    """An order with its whole planned life; `None` times never happen."""

    entity_id: int
    store_id: int
    created: int
    customer_id: int | None
    person: Person
    remote_ip: str
    lines: tuple[Line, ...]
    shipping_cents: int
    coupon: str | None
    payment_method: str
    protect_code: str
    invoiced: int | None
    shipped: int | None
    refunded: int | None
    canceled: int | None


@dataclass
class _Counters:
    people: int = 0
    customers: int = 0
    orders: int = 0
    phones: int = 0


@dataclass
class _Plan:
    customers: list[tuple[int, Person, int, int]] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)


def sql_time(epoch: int) -> str:
    """Render seconds since 1970 as Magento does: 'YYYY-MM-DD HH:MM:SS' in UTC, without a zone."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def money(cents: int) -> float:
    """Return cents as the JSON float Magento sends (16510 -> 165.1)."""
    return cents / 100


class MagentoWorld:
    """A shop that is a pure function of (seed, anchor, ticks); see the module docstring."""

    def __init__(self, seed: int, anchor: int, ticks: Sequence[int] = ()) -> None:
        self.validate_inputs(seed, anchor, ticks)
        self.seed = seed
        self.anchor = anchor
        self.ticks = tuple(ticks)
        self.now = self.ticks[-1] if self.ticks else anchor
        self._counters = _Counters()
        self._products = self._build_products()
        # Registered customers in sign-up order: their sign-up seconds and (id, person).
        self._signup_times: list[int] = []
        self._registered: list[tuple[int, Person]] = []

        plan = self._plan_history()
        previous = anchor
        for index, tick in enumerate(self.ticks):
            later = self._plan_tick(index, previous, tick)
            plan.customers.extend(later.customers)
            plan.orders.extend(later.orders)
            previous = tick

        self.order_plans = tuple(plan.orders)
        self.collections: dict[str, list[dict[str, Any]]] = {
            "products": [self._product_json(product) for product in self._products],
            "customers": [self._customer_json(*customer) for customer in plan.customers],
            "orders": [self._order_json(order) for order in plan.orders],
            "invoices": [self._invoice_json(order) for order in plan.orders if _happened(order.invoiced, self.now)],
            "creditmemos": [self._creditmemo_json(order) for order in plan.orders if _happened(order.refunded, self.now)],
        }

    @staticmethod
    def validate_inputs(seed: int, anchor: int, ticks: Sequence[int]) -> None:
        """Raise ValueError or TypeError unless the ticks are integers that rise after the anchor."""
        for name, value in (("seed", seed), ("anchor", anchor), *((f"tick {i}", tick) for i, tick in enumerate(ticks))):
            if isinstance(value, bool) or not isinstance(value, int):
                msg = f"Invalid {name} {value!r}: expected an integer (epoch seconds for times)."
                raise TypeError(msg)
        previous = anchor
        for index, tick in enumerate(ticks):
            if tick <= previous:
                msg = f"Invalid tick {index}: {tick} is not later than {previous}; ticks must rise after the anchor."
                raise ValueError(msg)
            previous = tick

    def collection(self, name: str) -> list[dict[str, Any]]:
        """Return the objects of one searchable collection, in entity id order."""
        return self.collections[name]

    def update_entity(self, collection: str, entity_id: int, at: int, **values: Any) -> dict[str, Any]:
        """Change one row as an admin edit at `at` (epoch seconds) does: set `values` and `updated_at`.

        A test hook for changes during a read; a tick recomputes the world without them.
        """
        id_key = "id" if collection in ("products", "customers") else "entity_id"
        row = next((item for item in self.collection(collection) if item[id_key] == entity_id), None)
        if row is None:
            msg = f"No {collection} row with {id_key} {entity_id}."
            raise KeyError(msg)
        row.update(values)
        row["updated_at"] = sql_time(at)
        return row

    def store_views(self) -> list[dict[str, Any]]:
        """Return the store views as `/V1/store/storeViews` lists them."""
        return [
            {"id": view[0], "code": view[1], "name": view[2], "website_id": view[3], "store_group_id": view[3], "is_active": 1}
            for view in STORE_VIEWS
        ]

    def store_configs(self) -> list[dict[str, Any]]:
        """Return the store configurations as `/V1/store/storeConfigs` lists them."""
        configs = []
        for view_id, code, _name, website_id, currency, zone, locale, _tax, prefix, _weight in STORE_VIEWS:
            url = SHOP_URL + prefix
            configs.append({
                "id": view_id, "code": code, "website_id": website_id, "locale": locale,
                "base_currency_code": currency, "default_display_currency_code": currency, "timezone": zone,
                "weight_unit": "lbs" if currency == "USD" else "kgs",
                "base_url": url, "base_link_url": url, "base_static_url": url + "static/",
                "base_media_url": url + "media/", "secure_base_url": url, "secure_base_link_url": url,
                "secure_base_static_url": url + "static/", "secure_base_media_url": url + "media/",
            })
        return configs

    def personal_values(self) -> set[str]:
        """Return every email, full name, last name, phone, street line, date of birth and IP served.

        First names, cities and postcodes are left out because many people share them, so a
        byte search for them would report false leaks.
        """
        values: set[str] = set()
        for customer in self.collections["customers"]:
            values.update((customer["email"], customer["lastname"], customer["dob"]))
            values.update(_address_values(customer["addresses"][0]))
        for order in self.collections["orders"]:
            values.update((order["customer_email"], order["customer_lastname"], order["remote_ip"]))
            if order["customer_dob"] is not None:
                values.add(order["customer_dob"])
            values.update(_address_values(order["billing_address"]))
        for plan in self.order_plans:
            if _happened(plan.canceled, self.now):  # the cancel comment names the shopper
                values.add(plan.person.full_name)
        return values

    def _build_products(self) -> list[dict[str, Any]]:
        draw = Draw(f"magento:{self.seed}:products")
        start = self.anchor - (HISTORY_DAYS + 200) * DAY_SECONDS
        products = []
        for index in range(PRODUCT_COUNT):
            label, slug, low, high = PRODUCT_KINDS[index % len(PRODUCT_KINDS)]
            adjective = PRODUCT_ADJECTIVES[index // len(PRODUCT_KINDS) % len(PRODUCT_ADJECTIVES)]
            configurable = label in ("Tee", "Hoodie") and index % 2 == 0
            price = draw.integer(low // 100, high // 100) * 100 - draw.pick((1, 5, 10, 0))
            created = start + draw.integer(0, 150 * DAY_SECONDS)
            products.append({
                "id": index + 1,
                "sku": f"SL-{slug.upper()}-{index + 1:03d}",
                "name": f"{adjective} {label}",
                "type_id": "configurable" if configurable else "simple",
                "price_cents": price,
                "special_cents": price * 85 // 100 if draw.chance(0.3) else None,
                "cost_cents": price * draw.integer(35, 55) // 100,
                "manufacturer": draw.pick(MANUFACTURER_OPTION_IDS),
                "url_key": f"{adjective.lower()}-{slug}-{index + 1}",
                "status": 2 if draw.chance(0.05) else 1,
                "attribute_set_id": 9 if label in ("Tee", "Hoodie") else 4,
                "created": created,
                "updated": min(created + draw.integer(0, 200 * DAY_SECONDS), self.anchor - DAY_SECONDS),
            })
        return products

    def _plan_history(self) -> _Plan:
        draw = Draw(f"magento:{self.seed}:history")
        start = self.anchor - HISTORY_DAYS * DAY_SECONDS
        return self._plan_batch(draw, start, self.anchor, customers=draw.integer(*HISTORY_CUSTOMERS), orders=draw.integer(*HISTORY_ORDERS))

    def _plan_tick(self, index: int, start: int, end: int) -> _Plan:
        draw = Draw(f"magento:{self.seed}:tick:{index}:{end}")
        return self._plan_batch(draw, start, end, customers=draw.integer(*TICK_CUSTOMERS), orders=draw.integer(*TICK_ORDERS))

    def _plan_batch(self, draw: Draw, start: int, end: int, *, customers: int, orders: int) -> _Plan:
        """Plan customers and orders created in (start, end], in creation order."""
        plan = _Plan()
        span = end - start
        signups = sorted(start + 1 + draw.integer(0, span - 1) for _ in range(customers))
        for created in signups:
            self._counters.customers += 1
            store_id = draw.pick(STORE_VIEWS)[0]
            person = self._person(draw)
            plan.customers.append((self._counters.customers, person, store_id, created))
            self._signup_times.append(created)
            self._registered.append((self._counters.customers, person))

        times = sorted(start + 1 + draw.integer(0, span - 1) for _ in range(orders))
        for position in range(1, len(times)):
            if draw.chance(SAME_SECOND_RATE):
                times[position] = times[position - 1]
        for created in times:
            plan.orders.append(self._order(draw, created))
        return plan

    def _order(self, draw: Draw, created: int) -> Order:
        self._counters.orders += 1
        view = _pick_weighted(draw, STORE_VIEWS, [view[9] for view in STORE_VIEWS])
        signed_up = bisect.bisect_right(self._signup_times, created)
        customer_id: int | None
        if signed_up and not draw.chance(GUEST_RATE):
            customer_id, person = self._registered[draw.integer(0, signed_up - 1)]
        else:
            customer_id, person = None, self._person(draw)

        lines = tuple(self._line(draw, view[1]) for _ in range(draw.integer(1, 4)))
        coupon = draw.pick(COUPONS) if draw.chance(COUPON_RATE) else None
        if coupon is not None:
            lines = tuple(
                Line(line.product_id, line.qty, line.price_cents, line.price_cents * line.qty * coupon[1] // 100, line.child_product_id)
                for line in lines
            )
        subtotal = sum(line.price_cents * line.qty for line in lines)
        invoiced, shipped, refunded, canceled = self._life(draw, created)
        return Order(
            entity_id=self._counters.orders,
            store_id=view[0],
            created=created,
            customer_id=customer_id,
            person=person,
            remote_ip=f"{draw.pick(('198.51.100', '203.0.113'))}.{draw.integer(100, 254)}",
            lines=lines,
            shipping_cents=0 if subtotal >= 10_000 else 500,
            coupon=coupon[0] if coupon else None,
            payment_method=draw.pick(PAYMENT_METHODS),
            protect_code=draw.hex(6),
            invoiced=invoiced,
            shipped=shipped,
            refunded=refunded,
            canceled=canceled,
        )

    def _life(self, draw: Draw, created: int) -> tuple[int | None, int | None, int | None, int | None]:
        """Plan when an order is invoiced, shipped in the daily batch, refunded or canceled."""
        if draw.chance(CANCEL_RATE):
            return None, None, None, created + draw.integer(HOUR_SECONDS, 5 * DAY_SECONDS)
        invoiced = created + draw.integer(10 * 60, 3 * DAY_SECONDS)
        ready = invoiced + DAY_SECONDS
        batch_day = ready - ready % DAY_SECONDS
        shipped = batch_day + SHIPPING_BATCH_SECOND_OF_DAY
        if shipped < ready:
            shipped += DAY_SECONDS
        refunded = shipped + draw.integer(3 * DAY_SECONDS, 30 * DAY_SECONDS) if draw.chance(REFUND_RATE) else None
        return invoiced, shipped, refunded, None

    def _line(self, draw: Draw, store_code: str) -> Line:
        product = draw.pick(self._products)
        child = None
        if product["type_id"] == "configurable":
            simple = [item for item in self._products if item["type_id"] == "simple"]
            child = simple[product["id"] % len(simple)]["id"]
        return Line(product["id"], draw.integer(1, 3), _price_in(product["price_cents"], store_code), 0, child)

    def _person(self, draw: Draw) -> Person:
        self._counters.people += 1
        number = self._counters.people
        first, last = draw.pick(FIRST_NAMES), draw.pick(LAST_NAMES)
        lastname = f"{last} {number:05d}"
        area = US_AREA_CODES[self._counters.phones // 100 % len(US_AREA_CODES)]
        phone = f"({area}) 555-01{self._counters.phones % 100:02d}"
        self._counters.phones += 1
        city, region, postcode = draw.pick((("Austin", "Texas", "78701"), ("Seattle", "Washington", "98101"), ("Berlin", "Berlin", "10115")))
        return Person(
            number=number,
            firstname=first,
            lastname=lastname,
            email=f"{first}.{last}.{number:05d}@{draw.pick(('example.com', 'example.org', 'example.net'))}".lower(),
            telephone=phone,
            street=f"{20_000 + number} {draw.pick(STREET_NAMES)} Road",
            city=city,
            postcode=postcode,
            region=region,
            dob=f"{draw.integer(1950, 2004)}-{draw.integer(1, 12):02d}-{draw.integer(1, 28):02d}",
        )

    def _product_json(self, product: dict[str, Any]) -> dict[str, Any]:
        attributes = [
            {"attribute_code": "description", "value": f"<p>The {product['name']} for every day.</p>"},
            {"attribute_code": "url_key", "value": product["url_key"]},
            {"attribute_code": "cost", "value": _eav_decimal(product["cost_cents"])},
            {"attribute_code": "manufacturer", "value": product["manufacturer"]},
            {"attribute_code": "category_ids", "value": ["11", str(12 + product["attribute_set_id"] % 5)]},
            {"attribute_code": "tax_class_id", "value": "2"},
        ]
        if product["special_cents"] is not None:
            attributes.insert(1, {"attribute_code": "special_price", "value": _eav_decimal(product["special_cents"])})
        return {
            "id": product["id"], "sku": product["sku"], "name": product["name"],
            "attribute_set_id": product["attribute_set_id"], "price": money(product["price_cents"]),
            "status": product["status"], "visibility": 4 if product["type_id"] == "configurable" else 1,
            "type_id": product["type_id"], "created_at": sql_time(product["created"]),
            "updated_at": sql_time(product["updated"]), "weight": 0.5,
            "extension_attributes": {"website_ids": [1, 2], "category_links": [{"position": 0, "category_id": "11"}]},
            "product_links": [], "options": [], "media_gallery_entries": [], "tier_prices": [],
            "custom_attributes": attributes,
        }

    def _customer_json(self, customer_id: int, person: Person, store_id: int, created: int) -> dict[str, Any]:
        address = _address(person, "billing") | {"id": customer_id, "customer_id": customer_id, "default_billing": True}
        return {
            "id": customer_id, "group_id": 1, "default_billing": str(customer_id), "default_shipping": str(customer_id),
            "created_at": sql_time(created), "updated_at": sql_time(created),
            "created_in": STORE_VIEWS[store_id - 1][2], "dob": person.dob, "email": person.email,
            "firstname": person.firstname, "lastname": person.lastname, "gender": person.number % 3,
            "store_id": store_id, "website_id": STORE_VIEWS[store_id - 1][3],
            "addresses": [address], "disable_auto_group_change": 0,
            "extension_attributes": {"is_subscribed": person.number % 4 == 0},
        }

    def _order_json(self, order: Order) -> dict[str, Any]:
        """Render an order as it is at `now`."""
        view = STORE_VIEWS[order.store_id - 1]
        totals = _totals(order, view[7])
        state, status, updated = _status(order, self.now)
        items = self._order_items(order)
        body: dict[str, Any] = {
            "entity_id": order.entity_id, "increment_id": _increment_id(order),
            "state": state, "status": status, "created_at": sql_time(order.created), "updated_at": sql_time(updated),
            "store_id": order.store_id, "store_name": f"Main Website\nMain Website Store\n{view[2]}",
            "base_currency_code": view[4], "order_currency_code": view[4], "global_currency_code": "USD",
            "store_currency_code": view[4], "base_to_order_rate": 1, "base_to_global_rate": 1 if view[4] == "USD" else 1.087,
            "customer_id": order.customer_id, "customer_is_guest": 1 if order.customer_id is None else 0,
            "customer_email": order.person.email, "customer_firstname": order.person.firstname,
            "customer_lastname": order.person.lastname, "customer_dob": order.person.dob if order.customer_id else None,
            "customer_group_id": 0 if order.customer_id is None else 1, "customer_note_notify": 1,
            "remote_ip": order.remote_ip, "x_forwarded_for": order.remote_ip,
            "protect_code": order.protect_code, "quote_id": order.entity_id + 1000,
            "total_qty_ordered": sum(line.qty for line in order.lines), "total_item_count": len(items),
            "shipping_description": "Flat Rate - Fixed" if order.shipping_cents else "Free Shipping - Free",
            "is_virtual": 0, "email_sent": 1, "weight": 1,
            "items": items,
            "billing_address": _address(order.person, "billing") | {"entity_id": order.entity_id * 2, "parent_id": order.entity_id},
            "payment": {
                "method": order.payment_method, "amount_ordered": money(totals["grand_total"]),
                "base_amount_ordered": money(totals["grand_total"]), "cc_last4": "4242" if order.payment_method == "braintree" else None,
                "additional_information": [order.payment_method, order.protect_code], "entity_id": order.entity_id,
                "parent_id": order.entity_id,
            },
            "status_histories": _histories(order, self.now),
            "extension_attributes": {"shipping_assignments": [{
                "shipping": {"address": _address(order.person, "shipping") | {"entity_id": order.entity_id * 2 - 1}, "method": "flatrate_flatrate"},
                "items": items,
            }]},
        }
        for name in ("subtotal", "discount_amount", "shipping_amount", "tax_amount", "grand_total"):
            body[name] = body["base_" + name] = money(totals[name])
        if order.coupon is not None:
            body["coupon_code"] = order.coupon
            body["discount_description"] = order.coupon
        if _happened(order.invoiced, self.now):
            body["total_invoiced"] = body["base_total_invoiced"] = money(totals["grand_total"])
            body["total_paid"] = body["base_total_paid"] = money(totals["grand_total"])
        if _happened(order.refunded, self.now):
            body["total_refunded"] = body["base_total_refunded"] = money(totals["grand_total"])
        if _happened(order.canceled, self.now):
            body["total_canceled"] = body["base_total_canceled"] = money(totals["grand_total"])
        return body

    def _order_items(self, order: Order) -> list[dict[str, Any]]:
        items = []
        for index, line in enumerate(order.lines):
            product = self._products[line.product_id - 1]
            item_id = order.entity_id * 10 + index * 2
            row = line.price_cents * line.qty
            item = {
                "item_id": item_id, "order_id": order.entity_id, "sku": product["sku"], "name": product["name"],
                "product_id": product["id"], "product_type": product["type_id"], "qty_ordered": line.qty,
                "price": money(line.price_cents), "base_price": money(line.price_cents),
                "original_price": money(line.price_cents), "row_total": money(row), "base_row_total": money(row),
                "discount_amount": money(line.discount_cents), "base_discount_amount": money(line.discount_cents),
                "created_at": sql_time(order.created), "updated_at": sql_time(order.created), "store_id": order.store_id,
            }
            items.append(item)
            if line.child_product_id is not None:
                child = self._products[line.child_product_id - 1]
                items.append({
                    "item_id": item_id + 1, "order_id": order.entity_id, "parent_item_id": item_id,
                    "sku": product["sku"], "name": f"{product['name']}-M", "product_id": child["id"],
                    "product_type": "simple", "qty_ordered": line.qty, "price": 0, "base_price": 0, "row_total": 0,
                    "base_row_total": 0, "discount_amount": 0, "created_at": sql_time(order.created),
                    "updated_at": sql_time(order.created), "store_id": order.store_id,
                })
        return items

    def _invoice_json(self, order: Order) -> dict[str, Any]:
        """Render an order's invoice; it shares the order's entity id and increment id."""
        assert order.invoiced is not None
        view = STORE_VIEWS[order.store_id - 1]
        totals = _totals(order, view[7])
        items = [
            {
                "entity_id": item["item_id"], "order_item_id": item["item_id"], "parent_id": order.entity_id,
                "sku": item["sku"], "name": item["name"], "product_id": item["product_id"], "qty": item["qty_ordered"],
                "price": item["price"], "base_price": item["base_price"], "row_total": item["row_total"],
                "base_row_total": item["base_row_total"],
            }
            for item in self._order_items(order)
        ]
        body = _document_json(order, view, totals, order.invoiced, items)
        body.update({"state": 2, "can_void_flag": 0, "email_sent": 1, "total_qty": sum(line.qty for line in order.lines)})
        return body

    def _creditmemo_json(self, order: Order) -> dict[str, Any]:
        """Render the full refund of an order; it shares the order's entity id."""
        assert order.refunded is not None
        view = STORE_VIEWS[order.store_id - 1]
        totals = _totals(order, view[7])
        items = [
            {"entity_id": item["item_id"], "order_item_id": item["item_id"], "parent_id": order.entity_id,
             "sku": item["sku"], "name": item["name"], "product_id": item["product_id"], "qty": item["qty_ordered"],
             "price": item["price"], "base_price": item["base_price"], "row_total": item["row_total"],
             "base_row_total": item["base_row_total"]}
            for item in self._order_items(order)
        ]
        body = _document_json(order, view, totals, order.refunded, items)
        body.update({
            "invoice_id": order.entity_id, "state": 2, "creditmemo_status": 2, "adjustment": 0, "base_adjustment": 0,
            "adjustment_positive": 0, "adjustment_negative": 0, "email_sent": 1,
        })
        return body


def _happened(moment: int | None, now: int) -> bool:
    return moment is not None and moment <= now


def _status(order: Order, now: int) -> tuple[str, str, int]:
    """Return the order's state, status and updated_at second at `now`."""
    if _happened(order.canceled, now):
        return "canceled", "canceled", order.canceled  # type: ignore[return-value]
    if _happened(order.refunded, now):
        return "closed", "closed", order.refunded  # type: ignore[return-value]
    if _happened(order.shipped, now):
        return "complete", "complete", order.shipped  # type: ignore[return-value]
    if _happened(order.invoiced, now):
        return "processing", "processing", order.invoiced  # type: ignore[return-value]
    return "new", "pending", order.created


def _totals(order: Order, tax_percent: int) -> dict[str, int]:
    subtotal = sum(line.price_cents * line.qty for line in order.lines)
    discount = sum(line.discount_cents for line in order.lines)
    tax = (subtotal - discount) * tax_percent // 100
    return {
        "subtotal": subtotal,
        "discount_amount": -discount,
        "shipping_amount": order.shipping_cents,
        "tax_amount": tax,
        "grand_total": subtotal - discount + order.shipping_cents + tax,
    }


def _document_json(order: Order, view: tuple[Any, ...], totals: dict[str, int], when: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "entity_id": order.entity_id, "order_id": order.entity_id, "increment_id": _increment_id(order),
        "store_id": order.store_id, "base_currency_code": view[4], "order_currency_code": view[4],
        "global_currency_code": "USD", "store_currency_code": view[4], "base_to_order_rate": 1,
        "billing_address_id": order.entity_id * 2, "shipping_address_id": order.entity_id * 2 - 1,
        "created_at": sql_time(when), "updated_at": sql_time(when + 1), "items": items, "comments": [],
    }
    for name, cents in totals.items():
        body[name] = body["base_" + name] = money(cents)
    return body


def _increment_id(order: Order) -> str:
    return f"{order.store_id}{order.entity_id:08d}"


def _address(person: Person, kind: str) -> dict[str, Any]:
    return {
        "address_type": kind, "firstname": person.firstname, "lastname": person.lastname, "email": person.email,
        "street": [person.street], "city": person.city, "region": person.region, "postcode": person.postcode,
        "country_id": "DE" if person.city == "Berlin" else "US", "telephone": person.telephone,
    }


def _address_values(address: dict[str, Any]) -> list[str]:
    return [*address["street"], address["telephone"], address["email"]]


def _histories(order: Order, now: int) -> list[dict[str, Any]]:
    comments = []
    if _happened(order.canceled, now):
        comments.append({"comment": f"Canceled at the request of {order.person.full_name}.", "status": "canceled"})
    if _happened(order.refunded, now):
        comments.append({"comment": f"Refunded; reply sent to {order.person.email}.", "status": "closed"})
    return comments


def _eav_decimal(cents: int) -> str:
    """Render cents as an EAV decimal string with four places ('19.9900'), as Magento stores them."""
    return f"{cents // 100}.{cents % 100:02d}00"


def _price_in(usd_cents: int, store_code: str) -> int:
    if store_code == "de":
        return round(usd_cents * EUR_PER_USD)
    return usd_cents


def _pick_weighted(draw: Draw, items: Sequence[Any], weights: Sequence[float]) -> Any:
    total = sum(weights)
    value = draw.integer(0, 9_999) / 10_000 * total
    for item, weight in zip(items, weights):
        value -= weight
        if value < 0:
            return item
    return items[-1]
