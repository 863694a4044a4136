"""The dashboard in headless Chromium: it renders every chart, loads nothing and shows the exact KPI values.

Playwright drives Debian's chromium, which `make browser` installs (see
tests/dashboard/browser.py).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from spendlake.dashboard.build import build_dashboard
from spendlake.dashboard.output import write_private_file
from tests.dashboard.browser import CHARTS, PageRecord, launched_browser, screenshot_folder
from tests.dashboard.marts import HOSTILE_NAMES, TENANT, create_marts, expected_kpis


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched_browser() as launched:
        yield launched


@pytest.fixture
def dashboard_file(spendlake_env: Path, tmp_path: Path) -> Path:
    create_marts(spendlake_env)
    path = tmp_path / "dashboard.html"
    write_private_file(path, build_dashboard(spendlake_env, TENANT, now=dt.datetime.now(dt.UTC)).html)
    return path


@pytest.fixture
def opened(browser: object, dashboard_file: Path) -> Iterator[PageRecord]:
    record = PageRecord(browser, dashboard_file)
    yield record
    record.page.close()


def test_no_console_errors(opened: PageRecord) -> None:
    assert opened.messages("error") == []
    assert opened.page_errors == []
    assert opened.violations() == []
    assert opened.dialogs == []


def test_only_the_file_requested(opened: PageRecord) -> None:
    assert opened.requests == [opened.url]


def test_charts_rendered(opened: PageRecord) -> None:
    for name in CHARTS:
        svg_count = opened.page.locator(f"[data-chart={name}] .plotly-graph-div svg.main-svg").count()
        assert svg_count >= 1, name
    bars = opened.page.locator("[data-chart=campaigns] g.point").count()
    assert bars >= 30  # 15 campaigns, a CPA bar and a ROAS bar each


def test_hostile_names_inert(opened: PageRecord) -> None:
    links = opened.page.evaluate("document.querySelectorAll('a, [href], [*|href], img, iframe').length")
    tick_labels = opened.page.locator("[data-chart=campaigns] .ytick text").all_text_contents()
    table_names = opened.page.locator("[data-table=campaigns] td.campaign").all_text_contents()

    assert links == 0
    assert "</script><script>alert(2)</script>" in tick_labels
    for name in HOSTILE_NAMES:
        assert name in table_names


def test_kpi_values_equal_sql(spendlake_env: Path, opened: PageRecord) -> None:
    expected = expected_kpis(spendlake_env)
    displayed = opened.page.eval_on_selector_all(
        "[data-kpi]",
        "tiles => tiles.map(tile => [tile.dataset.kpi, tile.querySelector('.tile-value').dataset.value,"
        " tile.querySelector('.tile-value').innerText])",
    )

    assert [key for key, _, _ in displayed] == ["spend", "revenue", "roas", "cpa", "mer"]
    for key, value, text in displayed:
        assert float(value) == expected[key]["value"], key
        assert text != "n/a", key


def test_full_page_screenshot(opened: PageRecord, tmp_path: Path) -> None:
    path = screenshot_folder(tmp_path) / "dashboard.png"

    opened.page.screenshot(path=str(path), full_page=True)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    assert opened.page.evaluate("document.documentElement.scrollHeight") > 2000


class CountingHandler(BaseHTTPRequestHandler):
    """Counts every request it gets, and the CSP test expects none."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        CountingHandler.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the signature of http.server
        return


@pytest.fixture
def local_server() -> Iterator[str]:
    CountingHandler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_csp_blocks_injected_loads(opened: PageRecord, local_server: str) -> None:
    # Markup that slipped into the page could try these loads, and the policy must stop each before a request.
    opened.page.evaluate(
        """base => {
          const image = document.createElement("img"); image.src = base + "/image.png"; document.body.append(image);
          const script = document.createElement("script"); script.src = base + "/script.js"; document.body.append(script);
          const sheet = document.createElement("link"); sheet.rel = "stylesheet"; sheet.href = base + "/style.css";
          document.head.append(sheet);
          fetch(base + "/fetch").catch(() => {});
        }""",
        local_server,
    )
    opened.page.wait_for_function("window.__violations.length >= 4")

    assert CountingHandler.hits == []
    # Playwright reports a request before Chromium blocks it, so each one must have failed on the policy.
    attempted = [request for request in opened.requests if request.startswith(local_server)]
    assert attempted
    for request in attempted:
        assert opened.failed_requests.get(request) == "csp", request
    assert len(opened.violations()) >= 4


def test_csp_blocks_eval(browser: object, dashboard_file: Path) -> None:
    record = PageRecord(browser, dashboard_file, probe_eval=True)
    try:
        result = record.page.evaluate("window.__evalResult")
        violations = record.violations()
    finally:
        record.page.close()

    assert result == "EvalError"
    # The probe's attempt is the only one: plotly.js draws the charts without eval.
    assert violations == ["script-src eval"]
