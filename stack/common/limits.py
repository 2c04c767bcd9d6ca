"""A pure-ASGI request body cap: 413 before a large body is read into memory.

FastAPI ≥ 0.165 has `max_body_size` (Starlette's RequestBodyLimitMiddleware), but its 413
is a plain-text body sent before the app's handlers run; every error here is
application/problem+json with the field and the reason, so the kit keeps its own cap.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stack.common.problems import Problem, problem_response


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if value.isdigit():
                    if int(value) > self.max_bytes:
                        await self._reject(scope, receive, send)
                        return
                    # The server hands the app exactly Content-Length bytes of body (HTTP/1.1
                    # frames it so): nothing to count. Only a chunked body can outgrow the cap.
                    await self.app(scope, receive, send)
                    return
                break
        seen = 0
        started = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # FastAPI catches errors while reading the body and answers 400 itself; a
                # body over the cap (chunked, no Content-Length) is a 413 whatever it answers.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Problem(413, f"request body is larger than {self.max_bytes} bytes", slug="too-large")
        )
        await response(scope, receive, send)
