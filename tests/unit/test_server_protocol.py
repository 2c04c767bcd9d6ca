"""The services' HTTP protocol (stack/common/server_protocol.py) against uvicorn's own: the same
bytes on the wire for every kind of response, in one write where uvicorn makes two."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.lifespan.off import LifespanOff
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from stack.common.server_protocol import OneWriteHttpToolsProtocol

Scope = dict[str, Any]


class Transport(asyncio.Transport):
    """Records every write and the close, as the loop's socket transport would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8011)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        pass


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/body":  # read the request first: a 100-continue client waits for this
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got " + body})
        return
    if path == "/stream":
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in (b"one", b"two"):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/announce":  # an event stream with nothing to say yet
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await asyncio.Event().wait()  # never: the test looks while the stream is idle
    if path == "/broken":  # fails after the head: uvicorn sends the head and closes
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _serve(cls: type[HttpToolsProtocol], request: bytes) -> Transport:
    config = uvicorn.Config(app, http=cls, log_config=None, access_log=False, lifespan="off")
    state = ServerState()
    state.default_headers = [(b"date", b"Mon, 07 Dec 2026 08:00:00 GMT")]
    protocol = cls(config=config, server_state=state, app_state=LifespanOff(config).state)
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):  # let the request's task run to the end
        await asyncio.sleep(0)
    await asyncio.gather(*protocol.tasks, return_exceptions=True)
    return transport


REQUESTS = {
    "json": b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "head": b"HEAD /json HTTP/1.1\r\nHost: x\r\n\r\n",
    "stream": b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n",
    "continue": (
        b"POST /body HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
    ),
    "broken": b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n",
    "two on one connection": (
        b"GET /json HTTP/1.1\r\nHost: x\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_the_bytes_on_the_wire_are_uvicorns(name: str) -> None:
    ours = asyncio.run(_serve(OneWriteHttpToolsProtocol, REQUESTS[name]))
    theirs = asyncio.run(_serve(HttpToolsProtocol, REQUESTS[name]))
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert b"".join(ours.writes).startswith(b"HTTP/1.1 ")
    assert ours.closed == theirs.closed


def test_a_response_is_one_write_where_uvicorn_makes_two() -> None:
    ours = asyncio.run(_serve(OneWriteHttpToolsProtocol, REQUESTS["json"]))
    theirs = asyncio.run(_serve(HttpToolsProtocol, REQUESTS["json"]))
    assert len(theirs.writes) == 2
    assert len(ours.writes) == 1 and ours.writes[0].endswith(b'\r\n\r\n{"ok":true}')


def test_each_response_on_a_kept_alive_connection_is_one_write() -> None:
    ours = asyncio.run(_serve(OneWriteHttpToolsProtocol, REQUESTS["two on one connection"]))
    assert len(ours.writes) == 2
    assert all(w.startswith(b"HTTP/1.1 200 OK") for w in ours.writes)


def test_a_100_continue_still_goes_before_the_response() -> None:
    ours = asyncio.run(_serve(OneWriteHttpToolsProtocol, REQUESTS["continue"]))
    assert ours.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert len(ours.writes) == 2 and ours.writes[1].endswith(b"\r\n\r\n6\r\ngot hi\r\n0\r\n\r\n")


def test_a_stream_sends_its_head_with_the_first_chunk_then_each_chunk() -> None:
    ours = asyncio.run(_serve(OneWriteHttpToolsProtocol, REQUESTS["stream"]))
    assert len(ours.writes) == 3
    assert ours.writes[0].startswith(b"HTTP/1.1 200 OK")
    assert ours.writes[0].endswith(b"3\r\none\r\n")


def test_an_empty_first_chunk_sends_a_streams_head_before_any_event() -> None:
    async def idle_stream() -> list[bytes]:
        config = uvicorn.Config(
            app, http=OneWriteHttpToolsProtocol, log_config=None, access_log=False, lifespan="off"
        )
        protocol = OneWriteHttpToolsProtocol(
            config=config, server_state=ServerState(), app_state=LifespanOff(config).state
        )
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /announce HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(50):
            await asyncio.sleep(0)
        writes = list(transport.writes)
        for task in protocol.tasks:
            task.cancel()
        await asyncio.gather(*protocol.tasks, return_exceptions=True)
        return writes

    writes = asyncio.run(idle_stream())
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK")
    assert b"text/event-stream" in writes[0]


def test_a_response_that_fails_after_its_head_still_sends_the_head() -> None:
    ours = asyncio.run(_serve(OneWriteHttpToolsProtocol, REQUESTS["broken"]))
    assert ours.closed and ours.writes and ours.writes[0].startswith(b"HTTP/1.1 200 OK")


def test_services_serve_with_it_unless_the_baseline_arm_asks_for_uvicorns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from stack.common.settings import ServiceName, Settings
    from stack.run import server_for

    settings = Settings(data_dir=tmp_path, otel_sdk_disabled=True)
    assert server_for(ServiceName.VALIDATION, settings).config.http is OneWriteHttpToolsProtocol
    monkeypatch.setenv("RESPONSE_WRITES", "uvicorn")
    baseline = Settings(data_dir=tmp_path, otel_sdk_disabled=True)
    assert server_for(ServiceName.VALIDATION, baseline).config.http == "httptools"
