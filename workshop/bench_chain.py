"""The benchmark's ceiling: a bare ASGI app (no FastAPI, no telemetry) that forwards each POST
to the next hop with one shared aiohttp ClientSession; the last hop answers. `workshop bench`
starts a chain of these under uvicorn with the services' own settings (uvloop, httptools, no
access log), so the chain costs what the transport alone costs on this machine.

    CHAIN_NEXT=http://127.0.0.1:23031/ python -m uvicorn workshop.bench_chain:app --port 23030

GET answers at once on every hop (a readiness probe that does not walk the chain).
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

NEXT = os.environ.get("CHAIN_NEXT", "")
_session: aiohttp.ClientSession | None = None


async def _lifespan(receive: Any, send: Any) -> None:
    global _session
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if NEXT:
                _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status, answer = 200, b'{"ok":true}'
    if scope["method"] == "POST" and _session is not None:
        async with _session.post(
            NEXT, data=body, headers={"content-type": "application/json"}
        ) as resp:
            status, answer = resp.status, await resp.read()
    elif scope["method"] == "POST":
        answer = b'{"ok":true,"echo":' + str(len(body)).encode() + b"}"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": answer})
