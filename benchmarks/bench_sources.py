"""Measure tap-google-analytics and tap-magento throughput against a bare decode/encode baseline, in one process.

Run: .venv/bin/python benchmarks/bench_sources.py [--repeats N] [--profile ga4|magento]

Each tap reads pre-built response bodies served by `responses` (no socket) and
writes Singer RECORD lines to an in-memory buffer:
- tap-google-analytics, stream `landing_pages_daily`: one property, one-day
  windows of `--rows-per-day` runReport rows, in pages of `--ga4-page-size`
  rows with `rowCount` (offset paging in the request body);
- tap-magento, stream `orders`: `--orders` orders with 3 items each, in
  searchCriteria pages of `--magento-page-size` orders with `total_count`.

Each baseline decodes the same bodies with msgspec and encodes one RECORD line
per row or order, with no shaping. The ratio shows what the declarative engine
costs per record: paging checks, whitelisting, transforms and singer-sdk's work.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
import typing as t
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import responses

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taps.engine.stream import DeclarativeStream  # noqa: E402
from taps.google_analytics import TapGoogleAnalytics  # noqa: E402
from taps.magento import TapMagento  # noqa: E402

TODAY = datetime(2026, 12, 4, 12, tzinfo=UTC)
GA4_API = "http://ga4-bench.test"
GA4_ADMIN_API = "http://ga4-admin-bench.test"
GA4_TOKEN_URL = "http://ga4-bench.test/token"
PROPERTY_ID = "312000111"
MAGENTO_API = "http://magento-bench.test/rest/default"
ITEMS_PER_ORDER = 3

Callback = t.Callable[[t.Any], tuple[int, dict[str, str], bytes]]
_JSON = {"Content-Type": "application/json; charset=UTF-8"}


@dataclass(frozen=True)
class Source:
    """One benchmarked tap: its class, config, stream, served bodies and how requests pick a body."""

    label: str
    tap_class: type
    config: dict[str, t.Any]
    stream: str
    bodies: dict[t.Any, bytes]
    records: int
    register: t.Callable[[responses.RequestsMock, dict[t.Any, bytes]], None]
    rows_of: t.Callable[[t.Any], t.Iterable[t.Any]]

    def catalog(self) -> dict[str, t.Any]:
        """Return the discovered catalog with only the benchmarked stream selected."""
        catalog = self.tap_class(config=self.config, parse_env_config=False).catalog_dict
        for entry in catalog["streams"]:
            for metadata in entry["metadata"]:
                if metadata["breadcrumb"] == []:
                    metadata["metadata"]["selected"] = entry["tap_stream_id"] == self.stream
        return catalog


# Google Analytics 4


def ga4_days(days: int) -> list[date]:
    """Return the one-day windows the tap reads when its start date is `days - 1` days before today."""
    last = TODAY.date()
    return [last - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def landing_page_rows(day: date, count: int) -> list[dict[str, t.Any]]:
    """Build `count` runReport rows of (date, landingPage) with four metrics, ordered by landing page."""
    rows = []
    for index in range(count):
        path = f"/products/item-{index:06d}" if index % 5 else f"/collections/c-{index:06d}?utm_source=news&ref={index}"
        sessions = 1 + (index * 7919) % 900
        rows.append(
            {
                "dimensionValues": [{"value": f"{day:%Y%m%d}"}, {"value": path}],
                "metricValues": [
                    {"value": str(sessions)},
                    {"value": str(sessions * 2 // 3)},
                    {"value": str((index % 11) / 2)},
                    {"value": str(sessions - index % 3)},
                ],
            }
        )
    rows.sort(key=lambda row: row["dimensionValues"][1]["value"])
    return rows


def ga4_page_body(rows: list[dict[str, t.Any]], row_count: int, page: int) -> bytes:
    """Wrap one page of rows as a runReport response with headers, rowCount, metadata and quota."""
    body = {
        "dimensionHeaders": [{"name": "date"}, {"name": "landingPage"}],
        "metricHeaders": [
            {"name": "sessions", "type": "TYPE_INTEGER"},
            {"name": "engagedSessions", "type": "TYPE_INTEGER"},
            {"name": "keyEvents", "type": "TYPE_FLOAT"},
            {"name": "totalUsers", "type": "TYPE_INTEGER"},
        ],
        "rows": rows,
        "rowCount": row_count,
        "metadata": {"currencyCode": "USD", "timeZone": "UTC"},
        "propertyQuota": {"tokensPerDay": {"consumed": 1 + page, "remaining": 199_999 - page}},
        "kind": "analyticsData#runReport",
    }
    return json.dumps(body).encode()


def ga4_bodies(days: int, rows_per_day: int, page_size: int) -> dict[tuple[str, int], bytes]:
    """Return the runReport pages keyed by (startDate, offset)."""
    bodies = {}
    for day in ga4_days(days):
        rows = landing_page_rows(day, rows_per_day)
        for page, offset in enumerate(range(0, rows_per_day, page_size)):
            bodies[(day.isoformat(), offset)] = ga4_page_body(rows[offset : offset + page_size], rows_per_day, page)
    return bodies


def ga4_property_body() -> bytes:
    """Return the Admin API property the tap reads for its time zone and currency."""
    item = {
        "name": f"properties/{PROPERTY_ID}", "parent": "accounts/290001111", "displayName": "Bench Store",
        "propertyType": "PROPERTY_TYPE_ORDINARY", "timeZone": "UTC", "currencyCode": "USD",
        "serviceLevel": "GOOGLE_ANALYTICS_STANDARD", "industryCategory": "SHOPPING",
        "createTime": "2023-03-01T09:30:00.000Z", "updateTime": "2023-03-01T09:30:00.000Z",
        "account": "accounts/290001111",
    }
    return json.dumps(item).encode()


def ga4_report_callback(bodies: dict[tuple[str, int], bytes]) -> Callback:
    def callback(request: t.Any) -> tuple[int, dict[str, str], bytes]:
        sent = json.loads(request.body)
        key = (sent["dateRanges"][0]["startDate"], int(sent.get("offset", 0)))
        if key not in bodies:
            return 400, _JSON, b'{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "The benchmark serves no page for this date and offset."}}'
        return 200, _JSON, bodies[key]

    return callback


def register_ga4(mock: responses.RequestsMock, bodies: dict[tuple[str, int], bytes]) -> None:
    token = {"access_token": "bench-access", "expires_in": 3599, "token_type": "Bearer"}
    mock.add(responses.POST, GA4_TOKEN_URL, json=token)
    mock.add(responses.GET, f"{GA4_ADMIN_API}/v1beta/properties/{PROPERTY_ID}", body=ga4_property_body(), content_type="application/json")
    mock.add_callback(responses.POST, f"{GA4_API}/v1beta/properties/{PROPERTY_ID}:runReport", callback=ga4_report_callback(bodies))


def ga4_source(days: int, rows_per_day: int, page_size: int) -> Source:
    config = {
        "property_ids": [PROPERTY_ID],
        "client_id": "bench-client",
        "client_secret": "bench-secret",
        "refresh_token": "bench-refresh",
        "oauth_token_url": GA4_TOKEN_URL,
        "api_url": GA4_API,
        "admin_api_url": GA4_ADMIN_API,
        "start_date": (TODAY - timedelta(days=days - 1)).date().isoformat() + "T00:00:00Z",
        "lookback_days": 0,
        "page_size": page_size,
    }
    return Source(
        label="tap-google-analytics landing_pages_daily",
        tap_class=TapGoogleAnalytics,
        config=config,
        stream="landing_pages_daily",
        bodies=ga4_bodies(days, rows_per_day, page_size),
        records=days * rows_per_day,
        register=register_ga4,
        rows_of=lambda body: body.get("rows", ()),
    )


# Magento


def sql_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def order_items(entity_id: int, created: str) -> list[dict[str, t.Any]]:
    """Build an order's three items, each with the fields Magento sends beyond the declared ones."""
    items = []
    for index in range(ITEMS_PER_ORDER):
        price = 9.99 + index * 5 + entity_id % 7
        qty = 1 + index % 2
        items.append(
            {
                "item_id": entity_id * 10 + index, "order_id": entity_id, "sku": f"SKU-{(entity_id + index) % 400:04d}",
                "name": f"Bench product {(entity_id + index) % 400}", "product_id": (entity_id + index) % 400 + 1,
                "product_type": "simple", "qty_ordered": qty, "price": price, "base_price": price,
                "original_price": price, "row_total": round(price * qty, 2), "base_row_total": round(price * qty, 2),
                "discount_amount": 0, "base_discount_amount": 0, "tax_percent": 8.25, "weight": 1,
                "created_at": created, "updated_at": created, "store_id": 1,
            }
        )
    return items


def order_json(entity_id: int) -> dict[str, t.Any]:
    """Build one order as Magento's GET /V1/orders lists it, personal data and nested documents included."""
    created_at = TODAY - timedelta(days=60) + timedelta(minutes=entity_id)
    created = sql_time(created_at)
    updated = sql_time(created_at + timedelta(hours=2))
    items = order_items(entity_id, created)
    subtotal = round(sum(item["row_total"] for item in items), 2)
    grand_total = round(subtotal + 5 + subtotal * 0.0825, 2)
    address = {
        "address_type": "billing", "city": "Springfield", "country_id": "US", "email": f"buyer{entity_id}@example.com",
        "firstname": "Alex", "lastname": f"Buyer{entity_id}", "postcode": "62701", "region": "Illinois",
        "street": [f"{entity_id} Main St"], "telephone": "+12175550100", "entity_id": entity_id * 2, "parent_id": entity_id,
    }
    return {
        "entity_id": entity_id, "increment_id": f"{100000000 + entity_id:09d}", "state": "processing", "status": "processing",
        "created_at": created, "updated_at": updated, "store_id": 1, "store_name": "Main Website\nMain Website Store\nDefault",
        "base_currency_code": "USD", "order_currency_code": "USD", "global_currency_code": "USD", "store_currency_code": "USD",
        "base_to_order_rate": 1, "base_to_global_rate": 1, "store_to_base_rate": 0, "store_to_order_rate": 0,
        "customer_id": 5000 + entity_id % 900, "customer_is_guest": 0, "customer_group_id": 1,
        "customer_email": f"buyer{entity_id}@example.com", "customer_firstname": "Alex", "customer_lastname": f"Buyer{entity_id}",
        "customer_note_notify": 1, "remote_ip": f"203.0.113.{entity_id % 250}", "x_forwarded_for": f"203.0.113.{entity_id % 250}",
        "protect_code": f"pc{entity_id:08x}", "quote_id": entity_id + 1000, "is_virtual": 0, "email_sent": 1, "weight": 3,
        "total_qty_ordered": sum(item["qty_ordered"] for item in items), "total_item_count": len(items),
        "shipping_description": "Flat Rate - Fixed", "coupon_code": "SPRING10" if entity_id % 4 == 0 else None,
        "subtotal": subtotal, "base_subtotal": subtotal, "discount_amount": 0, "base_discount_amount": 0,
        "shipping_amount": 5, "base_shipping_amount": 5, "tax_amount": round(subtotal * 0.0825, 2),
        "base_tax_amount": round(subtotal * 0.0825, 2), "grand_total": grand_total, "base_grand_total": grand_total,
        "total_invoiced": grand_total, "base_total_invoiced": grand_total, "total_paid": grand_total, "base_total_paid": grand_total,
        "items": items,
        "billing_address": address,
        "payment": {
            "method": "checkmo", "amount_ordered": grand_total, "base_amount_ordered": grand_total,
            "additional_information": ["Check / Money order"], "entity_id": entity_id, "parent_id": entity_id,
        },
        "status_histories": [{"comment": None, "created_at": created, "entity_name": "order", "status": "processing"}],
        "extension_attributes": {
            "shipping_assignments": [
                {"shipping": {"address": address | {"address_type": "shipping"}, "method": "flatrate_flatrate"}, "items": items}
            ]
        },
    }


def magento_bodies(orders: int, page_size: int) -> dict[int, bytes]:
    """Return the order pages keyed by page number, sorted by updated_at then entity_id as the tap requests."""
    bodies = {}
    for page, start in enumerate(range(0, orders, page_size), start=1):
        items = [order_json(entity_id) for entity_id in range(start + 1, min(start + page_size, orders) + 1)]
        criteria = {"filter_groups": [], "page_size": page_size, "current_page": page}
        bodies[page] = json.dumps({"items": items, "search_criteria": criteria, "total_count": orders}).encode()
    return bodies


def magento_callback(bodies: dict[int, bytes]) -> Callback:
    def callback(request: t.Any) -> tuple[int, dict[str, str], bytes]:
        query = parse_qs(urlsplit(request.url).query)
        page = int(query.get("searchCriteria[currentPage]", ["1"])[0])
        # Magento clamps a page past the end to the last page.
        return 200, _JSON, bodies[min(page, len(bodies))]

    return callback


def register_magento(mock: responses.RequestsMock, bodies: dict[int, bytes]) -> None:
    mock.add_callback(responses.GET, f"{MAGENTO_API}/V1/orders", callback=magento_callback(bodies))


def magento_source(orders: int, page_size: int) -> Source:
    return Source(
        label="tap-magento orders",
        tap_class=TapMagento,
        config={"access_token": "bench-token", "api_url": MAGENTO_API, "page_size": page_size},
        stream="orders",
        bodies=magento_bodies(orders, page_size),
        records=orders,
        register=register_magento,
        rows_of=lambda body: body.get("items", ()),
    )


# Measurement


def run_tap(source: Source, catalog: dict[str, t.Any]) -> int:
    """Sync the benchmarked stream once and return the number of RECORD lines it wrote."""
    raw = io.BytesIO()
    wrapper = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, contextlib.redirect_stdout(wrapper):
        source.register(mock, source.bodies)
        source.tap_class(config=source.config, catalog=catalog, parse_env_config=False).sync_all()
        sys.stdout.flush()
    return raw.getvalue().count(b'"type":"RECORD"')


def run_baseline(source: Source) -> int:
    """Decode every body and encode one RECORD line per row or order, with no shaping."""
    out = io.BytesIO()
    encoder = msgspec.json.Encoder()
    for body in source.bodies.values():
        for row in source.rows_of(msgspec.json.decode(body)):
            out.write(encoder.encode({"type": "RECORD", "stream": source.stream, "record": row}))
            out.write(b"\n")
    return out.getvalue().count(b"\n")


def measure(source: Source, repeats: int) -> tuple[float, float]:
    """Alternate baseline and tap runs; return the median seconds of each."""
    catalog = source.catalog()
    baseline_times, tap_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        written = run_baseline(source)
        baseline_times.append(time.perf_counter() - started)
        assert written == source.records, f"the baseline wrote {written} records, expected {source.records}"

        started = time.perf_counter()
        written = run_tap(source, catalog)
        tap_times.append(time.perf_counter() - started)
        assert written == source.records, f"{source.label} wrote {written} records, expected {source.records}"
    return statistics.median(baseline_times), statistics.median(tap_times)


def report(source: Source, repeats: int, baseline: float, tap: float) -> None:
    size = sum(len(body) for body in source.bodies.values())
    count = source.records
    print(f"{source.label}: {count:,} records in {len(source.bodies)} pages ({size / 1e6:.1f} MB), {repeats} repeats")
    print(f"  baseline decode + encode: median {baseline:.2f} s ({count / baseline:,.0f} records/s)")
    print(f"  tap: median {tap:.2f} s ({count / tap:,.0f} records/s), {baseline / tap:.3f} of baseline")


def profile(source: Source, lines: int = 25) -> None:
    """Run the tap once under cProfile and print the functions with the most cumulative and own time."""
    catalog = source.catalog()
    profiler = cProfile.Profile()
    profiler.enable()
    run_tap(source, catalog)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5, help="one-day GA4 windows read (default 5)")
    parser.add_argument("--rows-per-day", type=int, default=20_000, help="GA4 landing-page rows per day (default 20000)")
    parser.add_argument("--ga4-page-size", type=int, default=10_000, help="GA4 rows per runReport page (default 10000)")
    parser.add_argument("--orders", type=int, default=30_000, help="Magento orders, 3 items each (default 30000)")
    parser.add_argument("--magento-page-size", type=int, default=300, help="Magento orders per page, 1 to 300 (default 300)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each tap and baseline (default 5)")
    parser.add_argument("--only", choices=["ga4", "magento"], help="benchmark one tap only")
    parser.add_argument("--profile", choices=["ga4", "magento"], help="profile one tap run instead of timing")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    arguments = parse_arguments(argv)
    DeclarativeStream.clock = staticmethod(lambda: TODAY)  # type: ignore[method-assign]
    builders = {
        "ga4": lambda: ga4_source(arguments.days, arguments.rows_per_day, arguments.ga4_page_size),
        "magento": lambda: magento_source(arguments.orders, arguments.magento_page_size),
    }

    if arguments.profile:
        profile(builders[arguments.profile]())
        return
    for name, build in builders.items():
        if arguments.only and name != arguments.only:
            continue
        source = build()
        baseline, tap = measure(source, arguments.repeats)
        report(source, arguments.repeats, baseline, tap)


if __name__ == "__main__":
    main(sys.argv[1:])
