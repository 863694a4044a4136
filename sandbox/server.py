"""Local HTTP server for the API emulators, and the state that makes each run see new data.

The server binds only to loopback addresses and routes each request by its path: Google Ads
(`/google/...` and `/vNN/customers/...:method`), Google Analytics 4 (`/ga4/...` and
`/v1beta/properties/...`), the Meta Graph API (`/vNN.N/...`), the toy
API (`/toy/...`), Magento (`/rest/...`) and Stripe (everything else). `SandboxState` (seed, anchor, ticks) lives in
`<folder>/state.json`. Every `load_or_create_state` call after the first appends a tick at the
current time, so each start of the sandbox adds a batch of new objects to the world.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from sandbox import ga4_api, google_ads_api, magento_api, meta_api
from sandbox.ads_data import AdsWorld
from sandbox.ga4_api import GA4Session, handle_ga4_request
from sandbox.ga4_data import GA4World
from sandbox.google_ads_api import GoogleAdsSession, handle_google_ads_request
from sandbox.meta_api import MetaSession, handle_meta_request
from sandbox.stripe_api import DEMO_API_KEY, handle_request
from sandbox.magento_api import MagentoSession, handle_magento_request
from sandbox.magento_data import MagentoWorld
from sandbox.toy_api import handle_toy_request
from sandbox.stripe_data import StripeWorld

DEFAULT_SEED = 20260826
STATE_FILE_NAME = "state.json"
STATE_FORMAT_VERSION = 1

# Only the Google Ads, Meta and GA4 routes use request bodies. A larger body is not read, so the
# connection closes after the response, which is 413 on those routes.
MAX_BODY_BYTES = 1 << 20
# Seconds an idle keep-alive connection may hold a handler thread.
CONNECTION_TIMEOUT_SECONDS = 30
# How often the serving thread checks for stop(), which therefore returns within about this time.
SHUTDOWN_POLL_SECONDS = 0.05

logger = logging.getLogger(__name__)


class InvalidStateError(ValueError):
    """Raised when the sandbox state file cannot be read back or disagrees with the request."""


@dataclass(frozen=True)
class SandboxState:
    """Inputs of the sandbox world: the seed, the first start time and every later start time."""

    seed: int
    anchor: int
    ticks: tuple[int, ...] = ()

    def build_world(self) -> StripeWorld:
        return StripeWorld(self.seed, self.anchor, self.ticks)

    def build_ads_world(self) -> AdsWorld:
        return AdsWorld(self.seed, self.anchor, self.ticks)

    def to_json(self) -> str:
        payload = {
            "format_version": STATE_FORMAT_VERSION,
            "seed": self.seed,
            "anchor": self.anchor,
            "ticks": list(self.ticks),
        }
        return json.dumps(payload, indent=2) + "\n"


def state_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / STATE_FILE_NAME


def load_or_create_state(
    folder: str | os.PathLike[str],
    seed: int = DEFAULT_SEED,
    clock: Callable[[], float] = time.time,
) -> SandboxState:
    """Load the state in `folder` and append a tick at `clock()`, or create it with anchor = now.

    No tick is added when `clock()` (truncated to whole seconds) is not later than the last
    tick or the anchor. The file is replaced atomically, so a reader never sees half of it.
    """
    path = state_path(folder)
    now = int(clock())
    StripeWorld.validate_inputs(seed, now, ())

    if not path.exists():
        state = SandboxState(seed=seed, anchor=now)
        _save_state(path, state)
        logger.info("Created sandbox state %s (seed %d, anchor %d)", path, seed, now)
        return state

    state = _read_state(path)
    if state.seed != seed:
        msg = (
            f"Sandbox state {path} was created with seed {state.seed}, but seed {seed} was "
            f"requested. Pass seed {state.seed}, or delete the file to start a new world."
        )
        raise InvalidStateError(msg)

    last = state.ticks[-1] if state.ticks else state.anchor
    if now <= last:
        return state

    # NOTE: two processes that start at once can both read the old file, so one tick may be
    # lost. The last writer wins and the file is never torn.
    state = SandboxState(seed=state.seed, anchor=state.anchor, ticks=(*state.ticks, now))
    _save_state(path, state)
    logger.info("Added tick %d to sandbox state %s (%d ticks)", now, path, len(state.ticks))
    return state


def _read_state(path: Path) -> SandboxState:
    fix = "Delete the file to start a new sandbox world."
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        msg = (
            f"Invalid sandbox state file {path}: not valid JSON at line {error.lineno}, "
            f"column {error.colno}. {fix}"
        )
        raise InvalidStateError(msg) from None
    except UnicodeDecodeError:
        msg = f"Invalid sandbox state file {path}: not UTF-8 text. {fix}"
        raise InvalidStateError(msg) from None

    if not isinstance(payload, dict) or payload.get("format_version") != STATE_FORMAT_VERSION:
        msg = (
            f"Invalid sandbox state file {path}: expected format_version "
            f"{STATE_FORMAT_VERSION}. {fix}"
        )
        raise InvalidStateError(msg)

    fields = {"seed": payload.get("seed"), "anchor": payload.get("anchor")}
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"Invalid sandbox state file {path}: '{name}' must be an integer. {fix}"
            raise InvalidStateError(msg)
    ticks = payload.get("ticks")
    if not isinstance(ticks, list):
        msg = f"Invalid sandbox state file {path}: 'ticks' must be a list of integers. {fix}"
        raise InvalidStateError(msg)

    state = SandboxState(seed=fields["seed"], anchor=fields["anchor"], ticks=tuple(ticks))
    try:
        StripeWorld.validate_inputs(state.seed, state.anchor, state.ticks)
    except (TypeError, ValueError) as error:
        msg = f"Invalid sandbox state file {path}: {error} {fix}"
        raise InvalidStateError(msg) from None
    return state


def _save_state(path: Path, state: SandboxState) -> None:
    """Write `state` to a temporary file beside `path`, flush it to disk, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(state.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class _SandboxRequestHandler(BaseHTTPRequestHandler):
    """Request handler that passes each request to the emulator its path belongs to."""

    protocol_version = "HTTP/1.1"
    server_version = "spendlake-sandbox"
    timeout = CONNECTION_TIMEOUT_SECONDS
    # Headers and body go out in two writes, and without TCP_NODELAY the second one waits
    # for the client's delayed ACK (about 40 ms on Linux).
    disable_nagle_algorithm = True
    server: _SandboxHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET  # noqa: N815

    def _dispatch(self) -> None:
        request_body = self._read_body()
        path, _, query = self.path.partition("?")
        try:
            status, headers, body = self._respond(path, query, request_body)
        except Exception:
            logger.exception("Sandbox request failed: %s %s", self.command, path)
            status, headers = 500, {"Content-Type": "application/json"}
            body = (
                b'{"error": {"type": "api_error", "message": '
                b'"The sandbox failed to handle the request; see the sandbox log."}}'
            )

        # An emulator may state its own clock in `Date` (Stripe's world time); others get the real time.
        self.send_response_only(status)
        self.send_header("Server", self.version_string())
        if not any(name.lower() == "date" for name in headers):
            self.send_header("Date", self.date_time_string())
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        logger.debug("%s %s -> %d", self.command, path, status)

    def _respond(self, path: str, query: str, request_body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        server = self.server
        if ga4_api.handles_path(path):
            if request_body is None:
                logger.info("Rejected %s %s: body over %d bytes", self.command, path, MAX_BODY_BYTES)
                return _body_too_large()
            return handle_ga4_request(server.ga4_world(), server.ga4_session, self.command, path, query, self.headers, request_body)
        google_ads = google_ads_api.handles_path(path)
        if google_ads or meta_api.handles_path(path):
            if request_body is None:
                logger.info("Rejected %s %s: body over %d bytes", self.command, path, MAX_BODY_BYTES)
                return _body_too_large()
            if google_ads:
                return handle_google_ads_request(
                    server.ads_world, server.google_ads_session, self.command, path, query, self.headers, request_body
                )
            return handle_meta_request(
                server.ads_world, server.meta_session, self.command, path, query, self.headers, request_body
            )
        if magento_api.handles_path(path):
            return handle_magento_request(
                server.magento_world(), server.magento_session, self.command, path, query, self.headers, request_body
            )
        if path.startswith("/toy/"):
            return handle_toy_request(server.world, self.command, path, query, self.headers)
        return handle_request(server.world, self.command, path, query, self.headers)

    def _read_body(self) -> bytes | None:
        """Read the request body, or return None (and close the connection) when it is too large."""
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = MAX_BODY_BYTES + 1
        if 0 <= length <= MAX_BODY_BYTES:
            return self.rfile.read(length) if length else b""
        self.close_connection = True
        return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (fixed by http.server)
        """Silence the default access log on stderr, because `_dispatch` logs at DEBUG instead."""


def _body_too_large() -> tuple[int, dict[str, str], bytes]:
    message = f"The request body is larger than {MAX_BODY_BYTES} bytes, the sandbox's limit."
    return 413, {"Content-Type": "application/json"}, json.dumps({"error": {"message": message}}).encode()


class _SandboxHTTPServer(ThreadingHTTPServer):
    # server_close() returns at once and leaves busy handler threads to finish on their own.
    # `socketserver` joins only non-daemon threads, so block_on_close = False states the same
    # rule again in case daemon_threads ever changes.
    # NOTE: a handler that holds the GIL inside one C call, such as a long regular-expression
    # match, still delays SIGINT and SIGTERM, because Python runs signal handlers in the main
    # thread only when that thread gets the GIL.
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], world: StripeWorld, ads_world: AdsWorld, ipv6: bool) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.world = world
        self.ads_world = ads_world
        self.google_ads_session = GoogleAdsSession()
        self.meta_session = MetaSession()
        # Input limits on, as a store that enables them: page sizes above 300 get HTTP 400.
        self.magento_session = MagentoSession(input_limits=True)
        self._magento_world: MagentoWorld | None = None
        self._magento_lock = threading.Lock()
        self.ga4_session = GA4Session()
        self._ga4_world: GA4World | None = None
        self._ga4_lock = threading.Lock()
        super().__init__(address, _SandboxRequestHandler)

    def ga4_world(self) -> GA4World:
        """Return the GA4 world of the same seed, anchor and ticks, built on the first GA4 request."""
        with self._ga4_lock:
            if self._ga4_world is None:
                self._ga4_world = GA4World(self.world.seed, self.world.anchor, self.world.ticks)
            return self._ga4_world

    def magento_world(self) -> MagentoWorld:
        """Return the Magento world of the same seed, anchor and ticks, built on the first Magento request."""
        with self._magento_lock:
            if self._magento_world is None:
                self._magento_world = MagentoWorld(self.world.seed, self.world.anchor, self.world.ticks)
            return self._magento_world

    def server_bind(self) -> None:
        """Bind without `HTTPServer.server_bind`, whose `getfqdn` call can send a DNS query."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]


class SandboxServer:
    """A running sandbox server on a daemon thread. Use it as a context manager or call stop()."""

    def __init__(self, httpd: _SandboxHTTPServer, host: str) -> None:
        self._httpd = httpd
        self.host = host
        # Per-server state of the ad platform emulators, for tests that count requests.
        self.google_ads_session = httpd.google_ads_session
        self.meta_session = httpd.meta_session
        self.ga4_session = httpd.ga4_session
        self.port: int = httpd.server_address[1]
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{url_host}:{self.port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=f"sandbox-server-{self.port}",
            daemon=True,
        )
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket. Calling it twice is harmless.

        Returns without waiting for requests in progress, whose daemon threads finish on their own.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()
        logger.debug("Sandbox server on %s stopped", self.url)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    world: StripeWorld,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ads_world: AdsWorld | None = None,
) -> SandboxServer:
    """Serve `world` on `host:port` (port 0 lets the OS choose) from a daemon thread.

    The Google Ads and Meta routes serve `ads_world`, by default the `AdsWorld` of the same
    seed, anchor and ticks as `world`. Raises ValueError unless `host` is a loopback IP
    address (127.0.0.0/8 or ::1).
    """
    address = _loopback_address(host)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        msg = (
            f"Invalid sandbox port {port!r}: use an integer from 0 to 65535 "
            "(0 picks a free port)."
        )
        raise ValueError(msg)

    if ads_world is None:
        ads_world = AdsWorld(world.seed, world.anchor, world.ticks)
    httpd = _SandboxHTTPServer((str(address), port), world, ads_world, ipv6=address.version == 6)
    server = SandboxServer(httpd, str(address))
    server.start()
    logger.debug("Sandbox server listening on %s", server.url)
    return server


def _loopback_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        msg = (
            f"Invalid sandbox host {host!r}: the sandbox listens only on a loopback IP address "
            "(127.0.0.0/8 or ::1), for example 127.0.0.1."
        )
        raise ValueError(msg)
    return address


def serve_forever(
    folder: str | os.PathLike[str],
    port: int = 0,
    seed: int = DEFAULT_SEED,
    *,
    stop_event: threading.Event | None = None,
) -> None:
    """Serve the world of the state in `folder` on 127.0.0.1 until SIGINT, SIGTERM or `stop_event`.

    Adds a tick to the state first, then prints one line with the URL and the demo API key.
    Signal handlers are installed only in the main thread, so a caller on another thread must
    pass `stop_event` and set it to stop the server.
    """
    state = load_or_create_state(folder, seed=seed)
    world = state.build_world()
    ads_world = state.build_ads_world()
    stop_requested = stop_event if stop_event is not None else threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous_handlers = _install_signal_handlers(request_stop)
    try:
        with start_server(world, port=port, ads_world=ads_world) as server:
            print(
                f"spendlake sandbox listening on {server.url} (demo API key: {DEMO_API_KEY})",
                flush=True,
            )
            print(
                "The demo credentials of Google Ads, Meta, GA4 and Magento are in the dev environment of meltano.yml.",
                flush=True,
            )
            logger.info(
                "Sandbox serving %d charges, %d customers, %d refunds (now %d)",
                len(world.charges), len(world.customers), len(world.refunds), world.now,
            )
            logger.info(
                "Sandbox serving Google Ads customers %s and Meta ad accounts %s",
                ", ".join(account.account_id for account in ads_world.google_customers()),
                ", ".join(account.account_id for account in ads_world.meta_accounts()),
            )
            stop_requested.wait()
    finally:
        _restore_signal_handlers(previous_handlers)
    logger.info("Sandbox stopped")


def _install_signal_handlers(handler: Callable[[int, FrameType | None], None]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        previous[number] = signal.signal(number, handler)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)
