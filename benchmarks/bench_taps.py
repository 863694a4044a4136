"""Measure tap-google-ads throughput against a bare decode/encode baseline, in one process.

Run: .venv/bin/python benchmarks/bench_taps.py [rows] [repeats]

The tap reads one searchStream response of `rows` ad-day results (served by
`responses`, so no socket is involved) and writes Singer RECORD lines to an
in-memory buffer. The baseline decodes the same body with msgspec and encodes
one RECORD line per result. The ratio shows what the declarative engine costs
per record: whitelisting, transforms, key checks and singer-sdk's own work.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
import time
import typing as t
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import responses

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taps.engine.stream import DeclarativeStream  # noqa: E402
from taps.google_ads import TapGoogleAds  # noqa: E402

API = "http://bench.test"
CUSTOMER = "4567890123"
TODAY = datetime(2026, 12, 4, 12, tzinfo=UTC)
CONFIG = {
    "customer_ids": [CUSTOMER],
    "developer_token": "bench-developer-token",
    "client_id": "bench-client",
    "client_secret": "bench-secret",
    "refresh_token": "bench-refresh",
    "api_url": API,
    "token_url": f"{API}/token",
    "start_date": (TODAY - timedelta(days=29)).isoformat(),
}


def search_stream_body(rows: int) -> bytes:
    """Build one searchStream response body: batches of 10,000 ad-day results over 30 days."""
    results = []
    for index in range(rows):
        day = (TODAY - timedelta(days=index % 30)).date().isoformat()
        ad = index // 30
        results.append(
            {
                "customer": {"resourceName": f"customers/{CUSTOMER}", "id": CUSTOMER, "currencyCode": "USD"},
                "campaign": {"resourceName": f"customers/{CUSTOMER}/campaigns/{ad // 50}", "id": str(ad // 50)},
                "adGroup": {"resourceName": f"customers/{CUSTOMER}/adGroups/{ad // 5}", "id": str(ad // 5)},
                "adGroupAd": {"resourceName": f"customers/{CUSTOMER}/adGroupAds/{ad // 5}~{ad}", "ad": {"id": str(ad)}},
                "segments": {"date": day},
                "metrics": {"impressions": str(100 + index % 900), "clicks": str(index % 40), "costMicros": str(1_000_000 + index),
                            "conversions": (index % 7) / 2, "conversionsValue": index % 300 * 1.5},
            }
        )
    batches = [{"results": results[start : start + 10_000], "fieldMask": "…", "requestId": "bench"} for start in range(0, rows, 10_000)]
    return json.dumps(batches).encode()


def customer_body() -> bytes:
    customer = {"resourceName": f"customers/{CUSTOMER}", "id": CUSTOMER, "currencyCode": "USD", "timeZone": "UTC"}
    return json.dumps([{"results": [{"customer": customer}], "fieldMask": "…", "requestId": "bench"}]).encode()


def answer(body: bytes) -> t.Callable[[t.Any], tuple[int, dict[str, str], bytes]]:
    customers = customer_body()

    def callback(request: t.Any) -> tuple[int, dict[str, str], bytes]:
        query = json.loads(request.body)["query"]
        return 200, {"Content-Type": "application/json"}, customers if query.endswith("FROM customer") else body

    return callback


def catalog_with(stream: str) -> dict[str, t.Any]:
    catalog = TapGoogleAds(config=CONFIG, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == stream
    return catalog


def run_tap(body: bytes, catalog: dict[str, t.Any]) -> int:
    """Sync ad_daily_metrics once; return the RECORD lines written."""
    raw = io.BytesIO()
    wrapper = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, contextlib.redirect_stdout(wrapper):
        mock.add(responses.POST, f"{API}/token", json={"access_token": "bench-access", "expires_in": 3600})
        mock.add_callback(responses.POST, f"{API}/v26/customers/{CUSTOMER}/googleAds:searchStream", callback=answer(body))
        TapGoogleAds(config=CONFIG, catalog=catalog, parse_env_config=False).sync_all()
        sys.stdout.flush()
    return raw.getvalue().count(b'"type":"RECORD"')


def run_baseline(body: bytes) -> int:
    """Decode the body and encode one RECORD line per result, with no shaping."""
    out = io.BytesIO()
    encoder = msgspec.json.Encoder()
    for batch in msgspec.json.decode(body):
        for result in batch.get("results", ()):
            out.write(encoder.encode({"type": "RECORD", "stream": "ad_daily_metrics", "record": result}))
            out.write(b"\n")
    return out.getvalue().count(b"\n")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    DeclarativeStream.clock = staticmethod(lambda: TODAY)  # type: ignore[method-assign]
    body = search_stream_body(rows)
    catalog = catalog_with("ad_daily_metrics")

    baseline_times, tap_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        assert run_baseline(body) == rows
        baseline_times.append(time.perf_counter() - started)

        started = time.perf_counter()
        written = run_tap(body, catalog)
        tap_times.append(time.perf_counter() - started)
        assert written == rows, f"the tap wrote {written} records, expected {rows}"

    baseline, tap = statistics.median(baseline_times), statistics.median(tap_times)
    print(f"body: {len(body) / 1e6:.1f} MB, {rows:,} ad-day results, {repeats} repeats")
    print(f"baseline decode + encode: median {baseline:.2f} s ({rows / baseline:,.0f} records/s)")
    print(f"tap-google-ads ad_daily_metrics: median {tap:.2f} s ({rows / tap:,.0f} records/s), {baseline / tap:.2f} of baseline")


if __name__ == "__main__":
    main()
