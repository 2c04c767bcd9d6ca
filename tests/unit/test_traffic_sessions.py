"""The labs' builtin traffic engine behaves like a browser with the gateway's session cookie:
one session per simulated user, not one per question (labs/runtime/traffic.py)."""

from __future__ import annotations

import asyncio
import itertools
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from labs.runtime import traffic
from stack.gateway.sessions import COOKIE
from tests.unit.inprocess import free_port, serving


def test_each_simulated_user_keeps_one_session() -> None:
    issued = itertools.count(1)
    sent: list[str | None] = []

    async def answer(request: Request) -> JSONResponse:
        """The gateway's contract: a request without a known session cookie gets a new one
        (the flags of stack/gateway/sessions.py: host-only, no Secure, HttpOnly, Lax)."""
        sid = request.cookies.get(COOKIE)
        sent.append(sid)
        status = 202 if request.method == "POST" and request.url.path == "/api/queries" else 200
        resp = JSONResponse({"id": uuid.uuid4().hex, "status": "queued"}, status_code=status)
        if sid is None:
            resp.set_cookie(COOKIE, f"s{next(issued)}", httponly=True, samesite="lax", path="/")
        return resp

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])

    async def scenario() -> None:
        port = free_port()
        async with serving(app, port):  # type: ignore[arg-type]
            run = traffic.start(
                f"http://127.0.0.1:{port}", users=2, duration_s=1.5, attendees=["cookie-test"]
            )
            await asyncio.to_thread(run.wait, 20)

    asyncio.run(scenario())
    assert len(sent) >= 6, sent
    started = next(issued) - 1
    assert started == 2, f"{started} sessions started for 2 users"
    assert sent.count(None) == 2
