"""Headless Chromium for the dashboard tests: Debian's chromium driven by Playwright, and a recorded page.

Playwright never downloads a browser here. Without /usr/bin/chromium the
tests that use it skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Upper bound for loading the page and drawing its charts; plotly.js is about 5 MB of script.
LOAD_TIMEOUT_MS = 120_000
CHARTS = ["trend", "channels", "campaigns"]
#: Collects the Content-Security-Policy violations of the page before any of its scripts runs.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""
#: Tries eval once the policy is parsed. Playwright's `evaluate` lifts the eval block, so the page must try it itself.
PROBE_EVAL = """
document.addEventListener("DOMContentLoaded", () => {
  try { eval("1 + 1"); window.__evalResult = "ran"; } catch (error) { window.__evalResult = error.name; }
});
"""


def chromium_path() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing, and CI=true requires it: run `make browser` (apt-get install chromium).")
    pytest.skip(f"{CHROMIUM} is not installed. `make browser` installs it.")


class PageRecord:
    """A page opened from a file, with every request, console message, page error and dialog it produced."""

    def __init__(self, browser: object, path: Path, *, probe_eval: bool = False) -> None:
        self.url = path.resolve().as_uri()
        self.requests: list[str] = []
        self.failed_requests: dict[str, str] = {}
        self.console: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(LOAD_TIMEOUT_MS)
        self.page.add_init_script(RECORD_VIOLATIONS)
        if probe_eval:
            self.page.add_init_script(PROBE_EVAL)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("requestfailed", lambda request: self.failed_requests.update({request.url: request.failure or ""}))
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("dialog", self._dismiss)
        self.page.goto(self.url, wait_until="load")
        for name in CHARTS:
            self.page.wait_for_selector(f"[data-chart={name}] .plotly-graph-div svg.main-svg", state="attached")

    def _dismiss(self, dialog: object) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def messages(self, kind: str) -> list[str]:
        return [text for message_type, text in self.console if message_type == kind]

    def violations(self) -> list[str]:
        return self.page.evaluate("window.__violations")


@contextmanager
def launched_browser() -> Iterator[object]:
    """Start headless Chromium for the `with` block."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_folder(tmp_path: Path) -> Path:
    configured = os.environ.get("SPENDLAKE_SCREENSHOT_DIR")
    folder = Path(configured) if configured else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
