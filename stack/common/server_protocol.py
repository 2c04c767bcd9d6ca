"""uvicorn's httptools protocol, sending a response's head and its body in one write (issue 19).

uvicorn (0.55, `protocols/http/httptools_impl.py`) writes a response in two calls: the status
line and headers when the app sends `http.response.start`, the body when it sends
`http.response.body`. With TCP_NODELAY (uvicorn sets it) each write is its own segment and its
own send syscall on loopback, which also delivers the segment and wakes the reader: py-spy at 25
users put those two writes at about a tenth of every service's CPU, the head's the larger. A
service's answer is one small JSON body sent right after its head, so holding the head until the
first body chunk makes one segment, one syscall and one wakeup of the caller instead of two.
Measured on one attendee's lab traffic: 29.0 wakeups a question across the stack instead of
31.8; at 25 users the CPU a question moved within this machine's noise. Nothing else changes: a
`100 Continue` still goes at once, a streamed body still goes chunk by chunk (the head with the
first), and a connection closed after the head but before any body still sends the head first.
The one difference a client could see: a stream's head now waits for its first chunk, so an
endpoint that must announce a response before it has any body (a server-sent event stream idle
at first) should send an empty first chunk. The kit's only stream is the frontend's proxy of
gateway answers, whose first chunk follows at once. RESPONSE_WRITES=uvicorn keeps uvicorn's own
protocol (the budget bench's baseline arm).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _HeadWithBody:
    """A request cycle's view of the connection's transport: the first write after the
    response has started (uvicorn's head) waits for the next write (the first body chunk)."""

    __slots__ = ("_transport", "_cycle", "_head", "_done")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._done = False  # the head has gone: every write passes through

    def write(self, data: bytes) -> None:
        if self._done:
            self._transport.write(data)
        elif self._head is not None:
            self._done = True
            head, self._head = self._head, None
            self._transport.write(head + data)
        elif self._cycle.response_started and self._cycle.scope["method"] != "HEAD":
            # uvicorn writes no body for HEAD: its head goes at once.
            self._head = bytes(data)
        else:  # before the response (a 100 Continue): as uvicorn
            self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            self._done = True
            head, self._head = self._head, None
            self._transport.write(head)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol; each request cycle writes through `_HeadWithBody`."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # A new cycle (not an upgrade): its task has been created but not run yet.
        if cycle is not None and cycle is not before and self.transport is not None:
            cycle.transport = _HeadWithBody(self.transport, cycle)  # type: ignore[assignment]
