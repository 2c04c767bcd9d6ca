"""stack.common.http_wire against real sockets: keep-alive reuse, chunked and sized bodies,
Retry-After, query strings, and every way a call can fail — refused, a peer that says nothing,
a peer that hangs up mid-answer, a caller that gives up — each mapped by ServiceClient to the
problem a caller returns, and none leaving a poisoned connection in the pool."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stack.common.http import ServiceClient
from stack.common.http_wire import ConnectError, Disconnected, WireClient
from stack.common.problems import Problem
from stack.common.settings import ServiceName, Settings

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answer(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *extra, "", ""]
    return "\r\n".join(head).encode() + body


class Server:
    """An HTTP/1.1 server by hand: each request's head goes to `handler`, which writes the
    answer (or not) and says whether to keep the connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                if not await self.handler(head, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _client(**kw: Any) -> WireClient:
    opts = {"pool_size": 4, "connect_timeout": 1.0, "read_timeout": 2.0, "keepalive_s": 15.0}
    return WireClient(**{**opts, **kw})


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given() -> None:
    async def ok(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(200, b'{"ok":true}', "Retry-After: 3"))
        return True

    async def scenario() -> None:
        async with Server(ok) as srv:
            client = _client()
            for _ in range(3):
                status, body, retry = await client.request(
                    "POST", "127.0.0.1", srv.port, "/jobs", params={"a": "b c"},
                    headers={"traceparent": "00-x"}, data=b'{"q":1}',
                )  # fmt: skip
                assert (status, body, retry) == (200, b'{"ok":true}', "3")
            await client.close()
            assert srv.connections == 1 and len(srv.requests) == 3
            first = srv.requests[0]
            assert first.startswith(b"POST /jobs?a=b+c HTTP/1.1\r\n")
            assert b"\r\ntraceparent: 00-x\r\n" in first and b"Content-Length: 7\r\n" in first
            assert first.endswith(b'\r\n\r\n{"q":1}')

    run(scenario())


def test_a_chunked_answer_is_read_whole() -> None:
    async def chunked(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b'{"detail":', b'"busy"}'):
            w.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await w.drain()
            await asyncio.sleep(0.01)
        w.write(b"0\r\n\r\n")
        return True

    async def scenario() -> None:
        async with Server(chunked) as srv:
            client = _client()
            assert await client.request("GET", "127.0.0.1", srv.port, "/") == (
                503, b'{"detail":"busy"}', None,
            )  # fmt: skip
            await client.close()

    run(scenario())


def test_connection_close_and_idle_expiry_open_a_new_connection() -> None:
    async def close(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(200, b"{}", "Connection: close"))
        return False

    async def ok(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(200, b"{}"))
        return True

    async def scenario() -> None:
        async with Server(close) as srv:
            client = _client()
            for _ in range(2):
                assert (await client.request("GET", "127.0.0.1", srv.port, "/"))[0] == 200
            assert srv.connections == 2
            await client.close()
        async with Server(ok) as srv:
            client = _client(keepalive_s=0.05)  # given up before the server would
            for _ in range(2):
                assert (await client.request("GET", "127.0.0.1", srv.port, "/"))[0] == 200
                await asyncio.sleep(0.1)
            assert srv.connections == 2
            await client.close()

    run(scenario())


def test_a_peer_that_hangs_up_idle_connections_costs_no_call() -> None:
    async def once(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(200, b"{}"))
        await w.drain()
        return False  # closes after answering, without saying so

    async def scenario() -> None:
        async with Server(once) as srv:
            client = _client()
            for _ in range(3):
                assert (await client.request("GET", "127.0.0.1", srv.port, "/"))[0] == 200
                await asyncio.sleep(0.05)  # the close arrives before the next call
            assert srv.connections == 3
            await client.close()

    run(scenario())


def test_failures_map_to_the_callers_problems(monkeypatch) -> None:
    async def silent(head: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def half(head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 X\r\nContent-Length: 100\r\n\r\n{")
        await w.drain()
        return False

    async def call(port: int) -> Problem:
        monkeypatch.setenv("SERVICE_URL_TEMPLATE", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("HTTP_READ_TIMEOUT", "0.3")
        client = ServiceClient(Settings())
        await client.start()
        try:
            with pytest.raises(Problem) as info:
                await client.get(ServiceName.QUERY, "/x")
            return info.value
        finally:
            await client.close()

    async def scenario() -> None:
        refused = await call(_free_port())
        assert refused.status == 503 and "query-service is unavailable" in refused.detail
        assert isinstance(refused.__cause__, ConnectError)
        async with Server(silent) as srv:
            slow = await call(srv.port)
        assert slow.status == 504 and "did not answer in time" in slow.detail
        async with Server(half) as srv:
            cut = await call(srv.port)
        assert cut.status == 503 and isinstance(cut.__cause__, Disconnected)

    run(scenario())


def test_a_cancelled_call_leaves_no_answer_for_the_next() -> None:
    async def slow_then_fast(head: bytes, w: asyncio.StreamWriter) -> bool:
        if b"/slow" in head:
            await asyncio.sleep(0.3)
            w.write(_answer(200, b'"slow"'))
        else:
            w.write(_answer(200, b'"fast"'))
        return True

    async def scenario() -> None:
        async with Server(slow_then_fast) as srv:
            client = _client(pool_size=1)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.request("GET", "127.0.0.1", srv.port, "/slow"), 0.1)
            _, body, _ = await client.request("GET", "127.0.0.1", srv.port, "/fast")
            assert body == b'"fast"'  # not the slow call's late answer
            await client.close()

    run(scenario())


def test_the_pool_bounds_concurrent_connections() -> None:
    async def ok(head: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        w.write(_answer(200, b"{}"))
        return True

    async def scenario() -> None:
        async with Server(ok) as srv:
            client = _client(pool_size=2)
            calls = [client.request("GET", "127.0.0.1", srv.port, "/") for _ in range(6)]
            assert [r[0] for r in await asyncio.gather(*calls)] == [200] * 6
            assert srv.connections == 2
            await client.close()

    run(scenario())


@pytest.mark.parametrize("client", ["wire", "aiohttp"])
def test_a_per_call_read_timeout_beats_the_clients_own(monkeypatch, client: str) -> None:
    """The gateway's readiness fan-out asks for 2 s where the client's own is 5 s: over either
    client (HTTP_CLIENT) the call gives up at the shorter one."""

    async def silent(head: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def scenario() -> None:
        async with Server(silent) as srv:
            monkeypatch.setenv("SERVICE_URL_TEMPLATE", f"http://127.0.0.1:{srv.port}")
            monkeypatch.setenv("HTTP_CLIENT", client)
            sc = ServiceClient(Settings())
            await sc.start()
            t0 = asyncio.get_running_loop().time()
            try:
                with pytest.raises(Problem) as info:
                    await sc.request(ServiceName.QUERY, "GET", "/ready", read_timeout=0.3)
            finally:
                await sc.close()
            assert info.value.status == 504
            assert asyncio.get_running_loop().time() - t0 < 3  # not HTTP_READ_TIMEOUT's 5 s

    run(scenario())
