"""Run one service: `python -m stack.run api-gateway` (what supervisord and the image start)."""

from __future__ import annotations

import importlib
import sys

import uvicorn

from stack.common.settings import SERVICE_MODULES, ServiceName, get_settings


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    names = ", ".join(s.value for s in ServiceName)
    if len(args) != 1 or args[0] not in {s.value for s in ServiceName}:
        sys.exit(f"usage: python -m stack.run SERVICE   (one of: {names})")
    service = ServiceName(args[0])
    settings = get_settings()
    module = importlib.import_module(SERVICE_MODULES[service])
    uvicorn.run(
        module.app,
        host=settings.bind_host,
        port=settings.port(service),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        # SIGTERM: stop accepting, let in-flight requests finish, then the lifespan flushes.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        timeout_keep_alive=30,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
