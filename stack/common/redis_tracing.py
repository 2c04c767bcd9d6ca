"""CLIENT spans for Redis commands and pipelines, made by the kit's client class.

They are the spans opentelemetry-instrumentation-redis made (0.66b1, `util.py`): a command's
span is named after it (`HGETALL`), a pipeline's after its commands (`HSET EXPIRE XADD`), with
the sanitised statement (`HSET ? ? ?`, one line per pipelined command) under the old and the
stable database conventions, the argument or pipeline length, and the connection's
attributes. That package sets those one `set_attribute` call at a time on every command and
reads the connection's settings each time: about 60 µs of CPU a command here, against about 25
for this class, which builds the connection's attributes once and hands the span one mapping
(issue 19). Background polling stays untraced: `stack.common.telemetry.untraced()` suppresses
these spans as it did the package's.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.trace import SpanKind
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

_STATEMENT_MAX = 1000  # the package's cmd_max_len, "..." included
_tracer: trace.Tracer | None = None


def enable(tracer_provider: Any) -> None:
    """Trace every TracedRedis in this process (the service's telemetry is on)."""
    global _tracer
    _tracer = tracer_provider.get_tracer("stack.redis")


def disable() -> None:
    global _tracer
    _tracer = None


def _active() -> trace.Tracer | None:
    if _tracer is None or get_value(_SUPPRESS_INSTRUMENTATION_KEY):
        return None
    return _tracer


def statement(args: tuple[Any, ...]) -> str:
    """`HSET ? ? ?`: the command, every argument masked, at most 1000 characters."""
    if not args:
        return ""
    text = " ".join([str(args[0]), *("?" * (len(args) - 1))])
    if len(text) > _STATEMENT_MAX:
        text = text[: _STATEMENT_MAX - 3] + "..."
    return text


def connection_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the package read from the pool's connection settings, once per client."""
    attributes: dict[str, Any] = {
        "db.system": "redis",
        "db.system.name": "redis",
        "db.redis.database_index": kwargs.get("db") or 0,
    }
    if "path" in kwargs:
        attributes["server.address"] = kwargs.get("path", "")
        attributes["network.transport"] = "unix"
    else:
        attributes["server.address"] = kwargs.get("host", "localhost")
        attributes["server.port"] = kwargs.get("port", 6379)
        attributes["network.transport"] = "tcp"
    return attributes


class _Traced:
    connection_pool: aioredis.ConnectionPool
    _span_attributes: dict[str, Any] | None = None

    def _attributes(self, text: str, key: str, length: int) -> dict[str, Any]:
        base = self._span_attributes
        if base is None:
            base = self._span_attributes = connection_attributes(
                self.connection_pool.connection_kwargs
            )
        return {"db.statement": text, "db.query.text": text, key: length, **base}

    async def _command(self, send: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        """One command sent by `send` (redis-py's own method), in a span when traced."""
        tracer = _active()
        if tracer is None:
            return await send(*args, **options)
        if args and args[0]:
            name = str(args[0])
        else:  # the package's fallback name: the database index
            name = str(self.connection_pool.connection_kwargs.get("db") or 0)
        attributes = self._attributes(statement(args), "db.redis.args_length", len(args))
        with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            return await send(*args, **options)


# (ignore[misc]: redis-py's own command mixins disagree on command_info's signature.)
class TracedRedis(_Traced, aioredis.Redis):  # type: ignore[misc]
    """The services' Redis client (stack.common.redis.create_redis)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await self._command(super().execute_command, args, options)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> TracedPipeline:
        return TracedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class TracedPipeline(_Traced, Pipeline):  # type: ignore[misc]
    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        """WATCH and the commands a watching pipeline sends at once: a span each."""
        return await self._command(super().immediate_execute_command, args, options)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        tracer = _active()
        stack = self.command_stack
        if tracer is None or not stack:
            return await super().execute(raise_on_error)
        name = " ".join(str(args[0]) for args, _options in stack)
        text = "\n".join(statement(args) for args, _options in stack)
        attributes = self._attributes(text, "db.redis.pipeline_length", len(stack))
        lost_watch: WatchError | None = None
        with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            try:
                return await super().execute(raise_on_error)
            except WatchError as exc:
                # A lost optimistic lock is the caller's signal to retry, not a failed span:
                # raised once the span has ended, as the package did.
                lost_watch = exc
        raise lost_watch
