"""Process-level fault effects every service supports: memory_leak and redis_latency."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from stack.common.faults.engine import FaultEngine, mark_span
from stack.common.faults.model import Fault

log = logging.getLogger("stack.faults")


class MemoryLeak:
    """Retains memory at the fault's rate until it is cleared, up to its cap.

    Chunks are 1 MiB bytearrays: allocations that large are mmap'd by the allocator, so
    releasing them returns the memory to the OS and RSS visibly falls back.
    """

    def __init__(self, engine: FaultEngine) -> None:
        self.engine = engine
        self.chunks: list[bytearray] = []
        self._task: asyncio.Task[None] | None = None
        engine.on_change(self._changed)

    async def _changed(self, faults: list[Fault]) -> None:
        active = [f for f in faults if f.kind == "memory_leak" and f.active()]
        if active and self._task is None:
            self._task = asyncio.create_task(self._grow(active[0]), name="memory-leak")
        elif not active:
            await self.release()

    async def _grow(self, fault: Fault) -> None:
        per_second = fault.params["mb_per_minute"] / 60
        cap = fault.params["cap_mb"]
        owed = 0.0
        while fault.active():
            owed += per_second
            while owed >= 1 and len(self.chunks) < cap:
                # Touch every page so the memory is really resident, not just reserved.
                self.chunks.append(bytearray(b"\x01" * (1 << 20)))
                owed -= 1
            await asyncio.sleep(1)

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.chunks:
            log.info("leaked memory released", extra={"fields": {"mb": len(self.chunks)}})
        self.chunks.clear()
        gc.collect()


def redis_delay(engine: FaultEngine) -> float:
    """Seconds to add to a Redis command sent from the current request, if a fault fires."""
    if not engine.faults:
        return 0.0
    fault = engine.firing("redis_latency")
    if fault is None:
        return 0.0
    mark_span(fault)
    delay: float = fault.params["ms"] / 1000
    return delay
