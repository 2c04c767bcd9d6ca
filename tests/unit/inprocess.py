"""Helpers for the in-process route tests (tests/unit/test_routes_*.py; fixtures in
tests/unit/conftest.py): free loopback ports, an app's lifespan + an httpx ASGI client, and an
app served on a real port in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator

import httpx
import uvicorn
from fastapi import FastAPI

from stack.common.settings import PORT_OFFSETS

# Below the kernel's ephemeral range (32768-60999 on Linux): a port picked there can be taken
# by any outgoing connection's local end before the server binds it ("address already in
# use" seen once). Above the ranges the live-stack tests use (TEST_PORT_BASE 18000 in CI).
_PICK_FROM, _PICK_TO = 27000, 32700


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    for _ in range(200):
        port = random.randrange(_PICK_FROM, _PICK_TO)
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 in {_PICK_FROM}-{_PICK_TO}")


def free_port_base() -> int:
    """A WORKSHOP_PORT_BASE whose every service port is free."""
    span = max(PORT_OFFSETS.values())
    for _ in range(200):
        base = random.randrange(_PICK_FROM, _PICK_TO - span)
        if all(_bindable(base + o) for o in PORT_OFFSETS.values()):
            return base
    raise RuntimeError("no free range of service ports on 127.0.0.1")


@contextlib.asynccontextmanager
async def client_for(
    app: FastAPI, base_url: str = "http://test"
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `app` in-process, with the app's lifespan (startup, shutdown) run."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[None]:
    """`app` listening on 127.0.0.1:`port` in this event loop, for a service under test that
    calls it over HTTP (the worker calls processing and storage)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits when it cannot bind: fail the test, not the loop
            raise RuntimeError(f"nothing could listen on 127.0.0.1:{port}") from exc

    task = asyncio.create_task(serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"server on port {port} did not start")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
