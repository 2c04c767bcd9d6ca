"""A lean HTTP/1.1 client for calls between the kit's own services (HTTP_CLIENT=wire).

Why not aiohttp for these calls: its client side of a call cost two to three times the CPU of
the uvicorn server it called, and a question makes about seven such calls. Measured on the
development machine (2 cores), a POST with a traceparent to a bare uvicorn app, three rounds
each, client CPU per call: one call every 20 ms (lab traffic's pace) aiohttp 545–1040 µs, this
client 232–287 µs; back to back aiohttp 136–160 µs, this client 49–54 µs (the server: 225–400
and 60–83 µs either way). In the whole stack, one attendee's lab traffic alternating between
two stacks that differ only in HTTP_CLIENT (4 rounds of 20 s): 18.03 ms of CPU per question
with this client, 20.31 with aiohttp (api-gateway 3.10 vs 4.01 ms, queue-worker 2.71 vs 3.31,
query-service 2.64 vs 3.09). This client does only what a call
between two of the kit's services needs: one request at a time per keep-alive connection, a
pool per peer, the body in memory, httptools (the parser uvicorn already uses) for the
response. Anything else — TLS, proxies, redirects, cookies, streaming — is aiohttp's job, and
`HTTP_CLIENT=aiohttp` puts it back (the budget bench's baseline arm).

Failures raise `ConnectError` (nothing listening: 503 for the caller), `Disconnected` (the peer
closed without answering: 503), `TimeoutError` (504) or `ProtocolError` (502), which
`stack.common.http.transport_problem` maps as it does aiohttp's.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode

import httptools


class WireError(Exception):
    """A call that got no usable HTTP answer."""


class ConnectError(WireError):
    """The peer could not be reached (refused, unresolvable, connect timed out)."""


class Disconnected(WireError):
    """The connection closed before the answer was complete."""


class ProtocolError(WireError):
    """The answer was not HTTP/1.1 this client can read."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    __slots__ = (
        "transport", "parser", "waiter", "status", "body", "retry_after", "keep_alive",
        "closed", "idle_since", "_timer", "_timeout",
    )  # fmt: skip

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.body: list[bytes] = []
        self.retry_after: str | None = None
        self.keep_alive = True
        self.closed = False
        self.idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"unreadable answer: {exc}"))
            return
        if self.waiter is not None and not self.waiter.done() and self._timer is not None:
            # sock_read semantics, as aiohttp's: the timeout runs from the last bytes read.
            self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._time_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(Disconnected("the connection closed before the answer was complete"))

    # -- httptools callbacks --------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self.retry_after = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- the call -------------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        self.keep_alive = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def _time_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError("no answer within the read timeout"))
        if self.transport is not None:
            self.transport.abort()

    async def exchange(self, request: bytes, timeout: float) -> tuple[int, bytes, str | None]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.status, self.body, self.retry_after = 0, [], None
        self._timeout = timeout
        self._timer = loop.call_later(timeout, self._time_out)
        self.transport.write(request)
        try:
            await self.waiter
        except BaseException:
            # Cancelled or failed mid-answer: what is still on the wire belongs to no one.
            self.keep_alive = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            raise
        finally:
            self.waiter = None
        return self.status, b"".join(self.body), self.retry_after

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


class _Pool:
    """Keep-alive connections to one host:port, at most `size` at once."""

    def __init__(self, host: str, port: int, size: int, keepalive_s: float) -> None:
        self.host, self.port = host, port
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(size)
        self.keepalive_s = keepalive_s

    async def acquire(self, connect_timeout: float) -> _Connection:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()  # the most recently used: the warmest
            if not conn.closed and now - conn.idle_since < self.keepalive_s:
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port), connect_timeout
            )
        except TimeoutError as exc:
            raise ConnectError(f"connect to {self.host}:{self.port} timed out") from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn

    def release(self, conn: _Connection) -> None:
        if conn.keep_alive and not conn.closed:
            conn.idle_since = time.monotonic()
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class WireClient:
    """Requests to `http://host:port/path` of the kit's own services."""

    def __init__(
        self, *, pool_size: int, connect_timeout: float, read_timeout: float, keepalive_s: float
    ) -> None:
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive_s = keepalive_s
        self._pools: dict[tuple[str, int], _Pool] = {}

    async def request(
        self,
        method: str,
        host: str,
        port: int,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        read_timeout: float | None = None,
    ) -> tuple[int, bytes, str | None]:
        """(status, body, Retry-After) of one call."""
        if params:
            path = f"{path}{'&' if '?' in path else '?'}{urlencode(params)}"
        head = [f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n")
        if data is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(data or b'')}\r\n")
        head.append("\r\n")
        request = "".join(head).encode("latin-1") + (data or b"")
        pool = self._pools.get((host, port))
        if pool is None:
            pool = self._pools[(host, port)] = _Pool(host, port, self.pool_size, self.keepalive_s)
        async with pool.slots:
            conn = await pool.acquire(self.connect_timeout)
            try:
                return await conn.exchange(request, read_timeout or self.read_timeout)
            finally:
                pool.release(conn)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
