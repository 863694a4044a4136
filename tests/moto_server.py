"""moto's AWS server on 127.0.0.1 for tests: start it as a subprocess, wait until it responds, stop it.

Use the fixtures from a test module with
`from tests.moto_server import aws_env, moto_endpoint  # noqa: F401`:

- `moto_endpoint` (session scope) yields the server's URL, `http://127.0.0.1:<port>`;
- `aws_env` also points boto3 at it: dummy credentials, a region,
  `AWS_ENDPOINT_URL`, no instance metadata and no shared AWS config files.

`running_moto_server()` is the same as a context manager for code outside pytest.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
REGION = "eu-west-1"


class MotoServerError(RuntimeError):
    """Raised when moto's server does not start."""


@contextlib.contextmanager
def running_moto_server(start_timeout: float = START_TIMEOUT_SECONDS) -> Iterator[str]:
    """Run `moto_server` on a free port of 127.0.0.1 and yield its URL; stop it on exit."""
    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    url = f"http://{HOST}:{port}"
    # A file, not a pipe, takes the request log: an unread pipe fills up and blocks the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            _wait_until_answering(process, url, start_timeout, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server shared by the test session."""
    with running_moto_server() as url:
        yield url


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point boto3 at the moto server with dummy credentials; return the endpoint URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return moto_endpoint


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_until_answering(process: subprocess.Popen[bytes], url: str, timeout: float, log: t.IO[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            detail = log.read().decode(errors="replace")[-2000:]
            msg = f"moto_server exited with code {process.returncode} before answering on {url}: {detail}"
            raise MotoServerError(msg)
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - a fixed http URL on 127.0.0.1
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    msg = f"moto_server did not answer on {url} within {timeout:.0f} s."
    raise MotoServerError(msg)
