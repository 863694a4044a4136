"""Tests of the sandbox HTTP server on 127.0.0.1 and of its persisted state."""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from sandbox import server as server_module
from sandbox.server import (
    DEFAULT_SEED,
    InvalidStateError,
    SandboxState,
    load_or_create_state,
    serve_forever,
    start_server,
    state_path,
)
from sandbox.stripe_api import DEMO_API_KEY, handle_request
from sandbox.stripe_data import StripeWorld

SEED = 5
ANCHOR = 1_780_000_000
AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LISTENING_LINE = re.compile(
    r"spendlake sandbox listening on (http://127\.0\.0\.1:(\d+)) "
    r"\(demo API key: sk_test_spendlake_demo_key\)"
)
# Upper bound for a subprocess to print or exit, so a broken server fails instead of hanging.
SUBPROCESS_GUARD_SECONDS = 60
SEARCH_PATH = "/v26/customers/4567890123/googleAds:searchStream"


@pytest.fixture(scope="module")
def world() -> StripeWorld:
    return StripeWorld(SEED, ANCHOR, (ANCHOR + 600,))


@pytest.fixture(scope="module")
def server_url(world: StripeWorld) -> Iterator[str]:
    with start_server(world) as server:
        yield server.url


class BusyHandler:
    """A Google Ads handler that stays busy until `release` is set.

    It waits at most SUBPROCESS_GUARD_SECONDS, so a stop() that wrongly waits for it ends
    with `finished` set, which the tests catch, instead of hanging.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def __call__(self, *args: object) -> tuple[int, dict[str, str], bytes]:
        self.entered.set()
        self.release.wait(SUBPROCESS_GUARD_SECONDS)
        self.finished.set()
        return 200, {"Content-Type": "application/json"}, b'{"busy": false}'


class Clock:
    """A settable clock for `load_or_create_state`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# Serving


def test_server_url_on_loopback(world: StripeWorld) -> None:
    with start_server(world) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        response = requests.get(f"{server.url}/__sandbox/health", timeout=10)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "now": ANCHOR + 600}


@pytest.mark.parametrize(
    ("path", "query", "headers"),
    [
        ("/v1/charges", "limit=100", AUTH),
        ("/v1/customers", "limit=3&created[gte]=1779990000", AUTH),
        ("/v1/refunds", "", AUTH),
        ("/v1/charges", "limit=0", AUTH),
        ("/v1/charges", "", {"Authorization": "Bearer sk_test_wrong_key_1234"}),
        ("/v1/unknown", "", AUTH),
    ],
)
def test_server_bytes_match_handler(
    world: StripeWorld, server_url: str, path: str, query: str, headers: dict[str, str]
) -> None:
    expected_status, expected_headers, expected_body = handle_request(
        world, "GET", path, query, headers
    )

    response = requests.get(f"{server_url}{path}?{query}", headers=headers, timeout=10)

    assert response.status_code == expected_status
    assert response.content == expected_body
    assert response.headers["Content-Type"] == expected_headers["Content-Type"]
    assert response.headers["Content-Length"] == str(len(expected_body))
    assert re.fullmatch(r"req_[0-9a-f]{14}", response.headers["Request-Id"])


def test_server_basic_auth_pagination(world: StripeWorld, server_url: str) -> None:
    session = requests.Session()
    session.auth = (DEMO_API_KEY, "")
    collected = []
    params: dict[str, object] = {"limit": 100}

    while True:
        page = session.get(f"{server_url}/v1/charges", params=params, timeout=10).json()
        collected.extend(item["id"] for item in page["data"])
        if not page["has_more"]:
            break
        params["starting_after"] = collected[-1]

    assert collected == [charge["id"] for charge in world.charges]


def test_server_concurrent_requests(server_url: str) -> None:
    def fetch(_: int) -> tuple[int, bytes]:
        response = requests.get(
            f"{server_url}/v1/charges?limit=50", headers=AUTH, timeout=10
        )
        return response.status_code, response.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, range(32)))

    assert {status for status, _ in results} == {200}
    assert len({body for _, body in results}) == 1


def test_server_post_with_body_405(server_url: str) -> None:
    session = requests.Session()

    posted = session.post(
        f"{server_url}/v1/charges", data={"amount": "100"}, headers=AUTH, timeout=10
    )
    after = session.get(f"{server_url}/v1/charges?limit=1", headers=AUTH, timeout=10)

    assert posted.status_code == 405
    assert posted.headers["Allow"] == "GET"
    assert after.status_code == 200


def test_server_head_has_no_body(server_url: str) -> None:
    response = requests.head(f"{server_url}/v1/charges", headers=AUTH, timeout=10)

    assert response.status_code == 405
    assert response.content == b""


def test_server_stop_closes_port(world: StripeWorld) -> None:
    server = start_server(world)
    url = server.url
    assert requests.get(f"{url}/__sandbox/health", timeout=10).status_code == 200

    server.stop()
    server.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/__sandbox/health", timeout=10)


def test_server_stop_while_handler_busy(world: StripeWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = BusyHandler()
    monkeypatch.setattr(server_module, "handle_google_ads_request", handler)
    server = start_server(world)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(
            requests.post, f"{server.url}{SEARCH_PATH}", data=b"{}", timeout=SUBPROCESS_GUARD_SECONDS
        )
        try:
            entered = handler.entered.wait(SUBPROCESS_GUARD_SECONDS)
            server.stop()
            busy_after_stop = not handler.finished.is_set()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((server.host, server.port), timeout=10).close()
        finally:
            handler.release.set()
        response = pending.result()

    assert entered
    assert busy_after_stop
    assert response.status_code == 200
    assert response.json() == {"busy": False}


def test_server_ipv6_loopback(world: StripeWorld) -> None:
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("This machine has no IPv6 loopback address.")

    with start_server(world, host="::1") as server:
        assert server.url == f"http://[::1]:{server.port}"
        response = requests.get(f"{server.url}/__sandbox/health", timeout=10)

    assert response.status_code == 200


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "localhost", "example.com", ""]
)
def test_server_rejects_non_loopback(world: StripeWorld, host: str) -> None:
    message = rf"Invalid sandbox host '{re.escape(host)}'.*127\.0\.0\.1"

    with pytest.raises(ValueError, match=message):
        start_server(world, host=host)


@pytest.mark.parametrize("port", [-1, 65536, "8080", True])
def test_server_rejects_bad_port(world: StripeWorld, port: object) -> None:
    with pytest.raises(ValueError, match="Invalid sandbox port"):
        start_server(world, port=port)  # type: ignore[arg-type]


def test_server_quiet_by_default(
    world: StripeWorld, capfd: pytest.CaptureFixture[str]
) -> None:
    with start_server(world) as server:
        requests.get(f"{server.url}/v1/charges", headers=AUTH, timeout=10)
        requests.get(f"{server.url}/v1/charges", timeout=10)

    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_server_debug_log_without_key(
    world: StripeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sk_test_some_other_key_5678"
    caplog.set_level(logging.DEBUG, logger="sandbox.server")

    with start_server(world) as server:
        requests.get(f"{server.url}/v1/charges?limit=2", headers=AUTH, timeout=10)
        requests.get(
            f"{server.url}/v1/refunds", headers={"Authorization": f"Bearer {wrong_key}"}, timeout=10
        )

    messages = [record.getMessage() for record in caplog.records]
    assert "GET /v1/charges -> 200" in messages
    assert "GET /v1/refunds -> 401" in messages
    assert not any(DEMO_API_KEY in message or wrong_key in message for message in messages)


# State


def test_state_created_on_first_call(tmp_path: Path) -> None:
    folder = tmp_path / "sandbox"

    state = load_or_create_state(folder, seed=SEED, clock=Clock(1_000.9))

    assert state == SandboxState(seed=SEED, anchor=1_000, ticks=())
    saved = json.loads(state_path(folder).read_text())
    assert saved == {"format_version": 1, "seed": SEED, "anchor": 1_000, "ticks": []}


def test_state_ticks_advance(tmp_path: Path) -> None:
    clock = Clock(1_000)
    load_or_create_state(tmp_path, seed=SEED, clock=clock)

    clock.now = 1_500
    second = load_or_create_state(tmp_path, seed=SEED, clock=clock)
    clock.now = 1_500.7
    same_second = load_or_create_state(tmp_path, seed=SEED, clock=clock)
    clock.now = 1_200
    earlier = load_or_create_state(tmp_path, seed=SEED, clock=clock)
    clock.now = 2_000
    third = load_or_create_state(tmp_path, seed=SEED, clock=clock)

    assert second.ticks == (1_500,)
    assert same_second.ticks == (1_500,)
    assert earlier.ticks == (1_500,)
    assert third == SandboxState(seed=SEED, anchor=1_000, ticks=(1_500, 2_000))
    assert json.loads(state_path(tmp_path).read_text())["ticks"] == [1_500, 2_000]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["state.json"]


def test_state_tick_adds_new_charges(tmp_path: Path) -> None:
    clock = Clock(ANCHOR)
    first = load_or_create_state(tmp_path, seed=SEED, clock=clock).build_world()
    clock.now = ANCHOR + 3_600
    second = load_or_create_state(tmp_path, seed=SEED, clock=clock).build_world()

    new_charges = second.count("charges", gte=ANCHOR + 1)

    assert first.count("charges", gte=ANCHOR + 1) == 0
    assert 20 <= new_charges <= 40
    assert len(second.charges) == len(first.charges) + new_charges
    assert second.now == ANCHOR + 3_600


def test_state_seed_mismatch_rejected(tmp_path: Path) -> None:
    load_or_create_state(tmp_path, seed=SEED, clock=Clock(1_000))

    with pytest.raises(InvalidStateError, match=r"created with seed 5, but seed 6 was requested"):
        load_or_create_state(tmp_path, seed=6, clock=Clock(2_000))

    assert json.loads(state_path(tmp_path).read_text())["ticks"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON at line 1, column 2"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b"[]", "expected format_version 1"),
        (b'{"format_version": 1, "seed": "5", "anchor": 1, "ticks": []}', "'seed' must be an int"),
        (b'{"format_version": 1, "seed": 5, "anchor": 10, "ticks": {}}', "'ticks' must be a list"),
        (b'{"format_version": 1, "seed": 5, "anchor": 10, "ticks": [20, 15]}', r"ticks\[1\] = 15"),
        (b'{"format_version": 1, "seed": 5, "anchor": 10, "ticks": [5]}', r"ticks\[0\] = 5"),
    ],
)
def test_state_invalid_file_rejected(tmp_path: Path, content: bytes, message: str) -> None:
    path = state_path(tmp_path)
    path.write_bytes(content)

    with pytest.raises(InvalidStateError, match=message) as raised:
        load_or_create_state(tmp_path, seed=SEED, clock=Clock(2_000))

    assert str(path) in str(raised.value)
    assert str(raised.value).endswith("Delete the file to start a new sandbox world.")
    assert path.read_bytes() == content


# serve_forever


def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], SUBPROCESS_GUARD_SECONDS)
    assert ready, "the sandbox printed no line"
    return process.stdout.readline()


def run_sandbox(folder: Path, stop_signal: int) -> tuple[str, dict[str, object], str]:
    """Start `serve_forever` in a child process, read its health, then stop it with a signal."""
    script = "import sys\nfrom sandbox.server import serve_forever\nserve_forever(sys.argv[1])\n"
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(folder)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(process)
        match = LISTENING_LINE.fullmatch(line.strip())
        assert match, line
        health = requests.get(f"{match.group(1)}/__sandbox/health", timeout=10).json()
        charges = requests.get(f"{match.group(1)}/v1/charges", headers=AUTH, timeout=10)
        assert charges.status_code == 200
        process.send_signal(stop_signal)
        _, errors = process.communicate(timeout=SUBPROCESS_GUARD_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors
    return line, health, errors


def test_serve_forever_runs_and_ticks(tmp_path: Path) -> None:
    folder = tmp_path / "sandbox"

    _, first_health, first_errors = run_sandbox(folder, signal.SIGTERM)
    state = json.loads(state_path(folder).read_text())
    # Move the anchor 100 s back, so the second start adds a tick even within the same second.
    state["anchor"] -= 100
    state_path(folder).write_text(json.dumps(state))
    _, second_health, second_errors = run_sandbox(folder, signal.SIGINT)

    final = json.loads(state_path(folder).read_text())
    assert first_health["now"] == state["anchor"] + 100
    assert final["seed"] == DEFAULT_SEED
    assert len(final["ticks"]) == 1
    assert second_health["now"] == final["ticks"][0]
    assert first_errors == ""
    assert second_errors == ""


def read_listening_url(capsys: pytest.CaptureFixture[str]) -> str:
    """Return the URL that `serve_forever` on another thread prints once it listens."""
    output = ""
    for _ in range(600):
        output += capsys.readouterr().out
        if output:
            break
        time.sleep(0.05)
    match = LISTENING_LINE.fullmatch(output.splitlines()[0].strip())
    assert match, output
    return match.group(1)


def test_serve_forever_stop_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=serve_forever, args=(tmp_path,), kwargs={"seed": SEED, "stop_event": stop}
    )
    thread.start()
    try:
        url = read_listening_url(capsys)
        response = requests.get(f"{url}/__sandbox/health", timeout=10)
    finally:
        stop.set()
        thread.join(SUBPROCESS_GUARD_SECONDS)

    assert response.status_code == 200
    assert not thread.is_alive()
    assert os.path.exists(state_path(tmp_path))


def test_serve_forever_stops_while_handler_busy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = BusyHandler()
    monkeypatch.setattr(server_module, "handle_google_ads_request", handler)
    stop = threading.Event()
    thread = threading.Thread(
        target=serve_forever, args=(tmp_path,), kwargs={"seed": SEED, "stop_event": stop}
    )
    thread.start()

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            url = read_listening_url(capsys)
            pending = pool.submit(
                requests.post, f"{url}{SEARCH_PATH}", data=b"{}", timeout=SUBPROCESS_GUARD_SECONDS
            )
            entered = handler.entered.wait(SUBPROCESS_GUARD_SECONDS)
            stop.set()
            thread.join(SUBPROCESS_GUARD_SECONDS)
            returned = not thread.is_alive()
            busy_after_return = not handler.finished.is_set()
            port = int(url.rsplit(":", 1)[1])
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
        finally:
            stop.set()
            handler.release.set()
            thread.join(SUBPROCESS_GUARD_SECONDS)
        response = pending.result()

    assert entered
    assert returned
    assert busy_after_return
    assert response.json() == {"busy": False}
