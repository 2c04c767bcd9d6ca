"""stack/healthcheck.sh, the app containers' Docker health check, against real sockets: healthy
only on a 200, unhealthy on an error status, a refused connection or a server that never
answers — and never hangs past its read timeout."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.deploy import REPO

SCRIPT = REPO / "stack" / "healthcheck.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/ready": 200, "/lab/login": 200}.get(self.path, 503)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def check(*args: str, timeout: float = 10) -> int:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, timeout=timeout
    ).returncode


def test_healthy_on_200(server: int) -> None:
    assert check(str(server)) == 0
    assert check(str(server), "/lab/login") == 0


def test_unhealthy_on_an_error_status(server: int) -> None:
    assert check(str(server), "/not-ready") == 1


def test_unhealthy_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connect is refused
        assert check(str(port)) == 1


def test_a_silent_server_is_unhealthy_within_the_read_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts (the kernel does), never answers
        t0 = time.monotonic()
        assert check(str(s.getsockname()[1])) == 1
        assert time.monotonic() - t0 < 8  # read -t 2; Docker's own timeout is 3 s


def test_usage_error_names_the_argument() -> None:
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0 and "PORT" in proc.stderr
