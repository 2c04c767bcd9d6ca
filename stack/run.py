"""Run one service: `python -m stack.run api-gateway` (what supervisord and the image start)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import sys
import time
from collections.abc import Callable
from email.utils import formatdate

import uvicorn
from uvicorn.server import ServerState

from stack.common.http import SERVER_KEEPALIVE_SECONDS
from stack.common.server_protocol import OneWriteHttpToolsProtocol
from stack.common.settings import SERVICE_MODULES, ServiceName, Settings, get_settings


class DatedState(ServerState):
    """uvicorn's server state with a Date header that is current whenever a response reads it.

    uvicorn stamps the Date into `default_headers` from its main loop, once a second, so the
    loop has to wake to do it. Reading the clock as a response is built (a few hundred
    nanoseconds, a new string once a second) lets the loop sleep until it must exit
    (issue 19: idle CPU). uvicorn's own writes still land: they say which headers to send and
    whether a Date is wanted (`--no-date-header`)."""

    def __init__(self) -> None:
        self._rest: list[tuple[bytes, bytes]] = []
        self._with_date = False
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []
        super().__init__()

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        if self._with_date and (now := int(time.time())) != self._second:
            self._second = now
            self._headers = [(b"date", formatdate(now, usegmt=True).encode()), *self._rest]
        return self._headers

    @default_headers.setter
    def default_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._rest = [h for h in headers if h[0] != b"date"]
        self._with_date = len(self._rest) < len(headers)
        self._second = -1
        self._headers = list(headers)


class Server(uvicorn.Server):
    """uvicorn's main loop wakes ten times a second to refresh the Date header and look for an
    exit request. Idle, nine services doing that add up on a t3.small (issue 19). Here the
    Date is read when a response is built (`DatedState`) and an exit request wakes the loop
    itself, so the loop sleeps SERVER_TICK_SECONDS (60 s) between its other checks; a SIGTERM
    is still seen at once."""

    tick_seconds: float = Settings.model_fields["server_tick_seconds"].default

    def __init__(self, config: uvicorn.Config) -> None:
        self._wake: Callable[[], object] | None = None
        super().__init__(config)
        self.server_state = DatedState()

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        # Set by the signal handler (between two bytecodes of this thread) or by a test:
        # call_soon_threadsafe is safe from both and wakes the sleeping loop.
        self._should_exit = value
        if value and self._wake is not None:
            self._wake()

    async def main_loop(self) -> None:
        loop, exiting = asyncio.get_running_loop(), asyncio.Event()
        self._wake = lambda: loop.call_soon_threadsafe(exiting.set)
        should_exit = await self.on_tick(0)  # counter 0: uvicorn stamps its headers
        refreshed = time.monotonic()
        try:
            while not should_exit:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(exiting.wait(), self.tick_seconds)
                # on_tick re-stamps the headers when its counter is a multiple of 10: at most
                # once a second (the baseline arm's 0.1 s tick keeps uvicorn's own cost).
                due = time.monotonic() - refreshed >= 1.0
                if due:
                    refreshed = time.monotonic()
                should_exit = await self.on_tick(0 if due else 1)
        finally:
            self._wake = None


def server_for(service: ServiceName, settings: Settings, *, loop: str = "uvloop") -> Server:
    """The server one service runs in: its app on its port. `loop="none"` serves on a loop the
    caller runs (the budget bench's one-process experiment, workshop/bench_one_process.py)."""
    module = importlib.import_module(SERVICE_MODULES[service])
    config = uvicorn.Config(
        module.create_app(settings),
        host=settings.bind_host,
        port=settings.port(service),
        loop=loop,
        http=OneWriteHttpToolsProtocol if settings.response_writes == "one" else "httptools",
        access_log=False,
        log_config=None,
        # SIGTERM: stop accepting, let in-flight requests finish, then the lifespan flushes.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        timeout_keep_alive=SERVER_KEEPALIVE_SECONDS,
        backlog=2048,
    )
    server = Server(config)
    server.tick_seconds = settings.server_tick_seconds
    return server


def prepare_process(settings: Settings) -> None:
    """What every process that serves services sets before it builds them: the cyclic
    collector's thresholds (PYTHON_GC_THRESHOLD), fewer collections under load."""
    gc.set_threshold(*settings.gc_threshold)


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    names = ", ".join(s.value for s in ServiceName)
    if len(args) != 1 or args[0] not in {s.value for s in ServiceName}:
        sys.exit(f"usage: python -m stack.run SERVICE   (one of: {names})")
    settings = get_settings()
    prepare_process(settings)
    server = server_for(ServiceName(args[0]), settings)
    server.run()
    if not server.started:  # as uvicorn.run: a failed startup is a non-zero exit
        sys.exit(3)


if __name__ == "__main__":
    main()
