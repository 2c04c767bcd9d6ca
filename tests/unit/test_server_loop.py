"""stack/run.py's uvicorn Server: its main loop sleeps until asked to exit (issue 19, idle
CPU), yet every response carries the current Date and an exit request is seen at once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from email.utils import parsedate_to_datetime

import aiohttp
import pytest
import uvicorn

from stack.run import DatedState, Server
from tests.unit.inprocess import free_port


async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


def in_loop(test):  # type: ignore[no-untyped-def]
    """Run an async test in its own event loop (the unit lane has no asyncio plugin)."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@contextlib.asynccontextmanager
async def running(tick: float, **config: object):  # type: ignore[no-untyped-def]
    port = free_port()
    server = Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off", **config)
    )
    server.tick_seconds = tick
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield server, f"http://127.0.0.1:{port}/", task
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def date_of(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        return parsedate_to_datetime(resp.headers["Date"]).timestamp()


@in_loop
async def test_every_response_carries_the_current_date_though_the_loop_sleeps() -> None:
    async with running(tick=60.0) as (_server, url, _task):
        first = await date_of(url)
        assert abs(first - time.time()) <= 1.5
        await asyncio.sleep(2.2)  # the loop has not ticked: the Date is read per response
        second = await date_of(url)
        assert second - first >= 2
        assert abs(second - time.time()) <= 1.5


@in_loop
async def test_no_date_header_stays_off() -> None:
    async with (
        running(tick=60.0, date_header=False) as (_server, url, _task),
        aiohttp.ClientSession() as http,
        http.get(url) as resp,
    ):
        assert "Date" not in resp.headers
        assert resp.headers["server"] == "uvicorn"  # uvicorn's other headers still sent


@in_loop
async def test_an_exit_request_is_seen_at_once_not_at_the_next_tick() -> None:
    async with running(tick=60.0) as (server, _url, task):
        started = time.monotonic()
        server.should_exit = True
        await asyncio.wait_for(task, 5)  # a 60 s tick would time out here
        assert time.monotonic() - started < 5


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_wakes_the_sleeping_loop() -> None:
    """The path supervisord and Docker take: uvicorn's own signal handler (installed by
    serve()) sets should_exit. uvicorn raises the signal again once it has stopped, to the
    handler it found: a harmless one here, so the test process lives on."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda sig, _frame: caught.append(sig))

    async def scenario() -> None:
        async with running(tick=60.0) as (_server, _url, task):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(task, 5)  # a 60 s tick would time out here

    try:
        asyncio.run(scenario())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert caught == [signal.SIGTERM]


def test_uvicorns_own_writes_decide_the_headers() -> None:
    state = DatedState()
    assert state.default_headers == []
    state.default_headers = [(b"date", b"stale"), (b"server", b"uvicorn")]
    headers = dict(state.default_headers)
    assert headers[b"server"] == b"uvicorn"
    assert headers[b"date"] != b"stale"  # stamped when read
    state.default_headers = [(b"server", b"uvicorn")]  # --no-date-header
    assert state.default_headers == [(b"server", b"uvicorn")]


def test_a_service_collects_garbage_at_its_configured_thresholds(monkeypatch) -> None:
    # CPython's 700,10,10 runs the cyclic collector many times a second under load; a
    # service process starts with PYTHON_GC_THRESHOLD instead (the baseline arm sets 700,10,10).
    import gc

    from stack import run
    from stack.common.settings import Settings

    class Ran(Exception):
        pass

    def no_server(*_a: object, **_k: object) -> None:
        raise Ran

    before = gc.get_threshold()
    monkeypatch.setenv("PYTHON_GC_THRESHOLD", "1234,5,6")
    monkeypatch.setattr(run, "get_settings", lambda: Settings())
    monkeypatch.setattr(run, "server_for", no_server)
    try:
        with pytest.raises(Ran):
            run.main(["validation-service"])
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*before)
    monkeypatch.delenv("PYTHON_GC_THRESHOLD")
    assert Settings().gc_threshold == (10000, 20, 50)


def test_a_malformed_gc_threshold_is_refused_by_name(monkeypatch) -> None:
    from pydantic import ValidationError

    from stack.common.settings import Settings

    monkeypatch.setenv("PYTHON_GC_THRESHOLD", "10000,20")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "PYTHON_GC_THRESHOLD" in str(info.value)
