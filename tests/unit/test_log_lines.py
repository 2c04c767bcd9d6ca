"""The services' stdout log lines: INFO held briefly and written together, nothing lost or
reordered, problems written at once (stack/common/logging.py, issue 19)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import weakref

import pytest

from stack.common.logging import DeferredStreamHandler, JsonFormatter


class CountingStream(io.StringIO):
    """A stdout whose reader would wake once per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(stream: CountingStream, delay_s: float) -> logging.Logger:
    handler = DeferredStreamHandler(stream, delay_s)
    handler.setFormatter(JsonFormatter("test-service"))
    log = logging.getLogger(f"test.log_lines.{id(stream)}")
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def _messages(stream: CountingStream) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


def test_info_lines_on_a_loop_are_written_together_after_the_delay() -> None:
    stream = CountingStream()
    log = _logger(stream, 0.05)

    async def main() -> tuple[list[str], int]:
        for i in range(20):
            log.info("job %d", i)
        held = _messages(stream)
        await asyncio.sleep(0.2)
        return held, stream.writes

    held, writes = asyncio.run(main())
    assert held == []  # nothing written while the delay runs
    assert _messages(stream) == [f"job {i}" for i in range(20)]  # all of them, in order
    assert writes == 1  # one write: its reader wakes once, not 20 times


def test_a_warning_writes_what_is_pending_at_once_in_order() -> None:
    stream = CountingStream()
    log = _logger(stream, 60)

    async def main() -> list[str]:
        log.info("before")
        log.warning("trouble")
        return _messages(stream)

    assert asyncio.run(main()) == ["before", "trouble"]


def test_lines_without_a_running_loop_are_written_at_once() -> None:
    stream = CountingStream()
    log = _logger(stream, 60)
    log.info("from a thread without a loop")
    assert _messages(stream) == ["from a thread without a loop"]


def test_zero_delay_writes_every_line() -> None:
    stream = CountingStream()
    log = _logger(stream, 0)

    async def main() -> None:
        log.info("one")
        log.info("two")

    asyncio.run(main())
    assert _messages(stream) == ["one", "two"] and stream.writes == 2


def test_logging_shutdown_flushes_held_lines() -> None:
    stream = CountingStream()
    log = _logger(stream, 60)

    async def main() -> None:
        log.info("held when the loop stopped")

    asyncio.run(main())
    assert _messages(stream) == []
    logging.shutdown(handlerList=[weakref.ref(log.handlers[0])])  # what runs at exit
    assert _messages(stream) == ["held when the loop stopped"]


def test_a_loop_that_stopped_with_lines_held_does_not_hold_the_next_loops() -> None:
    stream = CountingStream()
    log = _logger(stream, 0.05)

    async def first() -> None:
        log.info("one")  # its flush was scheduled on this loop, which stops first

    async def second() -> None:
        log.info("two")
        await asyncio.sleep(0.2)

    asyncio.run(first())
    asyncio.run(second())
    assert _messages(stream) == ["one", "two"]


@pytest.mark.parametrize("value", ["-1", "10001", "soon"])
def test_log_flush_ms_rejects_bad_values(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from stack.common.settings import Settings

    monkeypatch.setenv("LOG_FLUSH_MS", value)
    with pytest.raises(ValidationError, match="LOG_FLUSH_MS"):
        Settings()
