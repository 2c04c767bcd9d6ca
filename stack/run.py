"""Run one service: `python -m stack.run api-gateway` (what supervisord and the image start)."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time

import uvicorn

from stack.common.http import SERVER_KEEPALIVE_SECONDS
from stack.common.settings import SERVICE_MODULES, ServiceName, get_settings


class Server(uvicorn.Server):
    """uvicorn's main loop wakes ten times a second only to refresh the Date header (once a
    second) and look for an exit request. Idle, nine services doing that add up on a t3.small
    (issue 19): this loop wakes every SERVER_TICK_SECONDS (1 s) and does the same work. An
    exit request (SIGTERM) is therefore seen within a second instead of 0.1 s."""

    tick_seconds = 1.0

    async def main_loop(self) -> None:
        should_exit = await self.on_tick(0)  # counter 0: refresh the Date header
        refreshed = time.monotonic()
        while not should_exit:
            await asyncio.sleep(self.tick_seconds)
            # on_tick refreshes the header when its counter is a multiple of 10: once a second.
            due = time.monotonic() - refreshed >= 1.0
            if due:
                refreshed = time.monotonic()
            should_exit = await self.on_tick(0 if due else 1)


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    names = ", ".join(s.value for s in ServiceName)
    if len(args) != 1 or args[0] not in {s.value for s in ServiceName}:
        sys.exit(f"usage: python -m stack.run SERVICE   (one of: {names})")
    service = ServiceName(args[0])
    settings = get_settings()
    module = importlib.import_module(SERVICE_MODULES[service])
    config = uvicorn.Config(
        module.create_app(settings),
        host=settings.bind_host,
        port=settings.port(service),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        # SIGTERM: stop accepting, let in-flight requests finish, then the lifespan flushes.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        timeout_keep_alive=SERVER_KEEPALIVE_SECONDS,
        backlog=2048,
    )
    server = Server(config)
    server.tick_seconds = settings.server_tick_seconds
    server.run()
    if not server.started:  # as uvicorn.run: a failed startup is a non-zero exit
        sys.exit(3)


if __name__ == "__main__":
    main()
