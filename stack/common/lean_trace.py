"""The SDK's tracer with a shorter path for the spans the kit makes (issue 19).

At 25 users py-spy put the OpenTelemetry SDK's span machinery at about an eighth of every
service's CPU: `Tracer.start_span` asks the sampler for a `SamplingResult`, every span builds a
`BoundedAttributes` (a lock, and each value checked through a generic cleaner), two
`BoundedList`s and, when it ends, a `ReadableSpan` copy of itself; `start_as_current_span` is
two generator context managers deep. Here:

- `LeanTracer.start_span` decides as the default sampler (`parentbased_always_on`) would,
  without asking it, and builds a `LeanSpan`;
- `LeanSpan` keeps its attributes in a dict, checks the common value types (str, bool, int,
  float, None) inline and hands any other to the SDK's own cleaner; events and links get their
  bounded lists when the first one arrives; ending hands the span itself to the processors
  (setters refuse an ended span, as the SDK's do, so it cannot change after);
- `start_as_current_span` is one small context manager class.

Everything else is the SDK's: the provider, processors, id generator, limits, resource, scope,
events, links, status rules and `record_exception`. The short path is taken only where it
gives the SDK's result: the default sampler, the SDK's internal metrics off, the tracer
enabled; otherwise `LeanTracer` is the SDK's `Tracer`. `tests/unit/test_lean_trace.py`
holds it to that: the same calls through both tracers export the same OTLP bytes, ids and
times aside. SPAN_PATH=sdk keeps the SDK's tracer (the budget bench's baseline arm).
Written against opentelemetry-sdk 1.45 (requirements/*.lock pin it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import Any, cast

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import _clean_attribute_value
from opentelemetry.sdk.trace import Span, SpanLimits, Tracer, TracerProvider, sampling
from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.util import types

# The SDK's warnings, under the SDK's loggers.
logger = logging.getLogger("opentelemetry.sdk.trace")
attributes_logger = logging.getLogger("opentelemetry.attributes")

_UNSET = Status(StatusCode.UNSET)
_SIMPLE = (str, bool, int, float, type(None))
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_NOT_SAMPLED_RANDOM = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)


def _is_default_sampler(sampler: sampling.Sampler) -> bool:
    """`parentbased_always_on` (the SDK's default, OTEL_TRACES_SAMPLER unset), which samples a
    root span and follows a parent's sampled flag."""
    if not isinstance(sampler, sampling.ParentBased):
        return False
    on, off = sampling.ALWAYS_ON, sampling.ALWAYS_OFF
    return (
        sampler._root is on
        and sampler._remote_parent_sampled is on
        and sampler._local_parent_sampled is on
        and sampler._remote_parent_not_sampled is off
        and sampler._local_parent_not_sampled is off
    )


class LeanSpan(Span):
    """An SDK `Span` whose hot methods skip the SDK's generic machinery (see the module)."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        tracer: Tracer,
        kind: SpanKind,
        links: Sequence[trace_api.Link] | None,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        limits: SpanLimits = tracer._span_limits
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope
        self._parent = parent
        self._start_time: int | None = None
        self._end_time: int | None = None
        self._resource = tracer.resource
        self._status = _UNSET
        self._sampler = tracer.sampler
        self._trace_config = None
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._span_processor = tracer.span_processor
        self._limits = limits
        self._lock = _NO_LOCK  # type: ignore[assignment]
        self._attributes: dict[str, types.AnyValue] = {}
        self._dropped = 0
        self._max_attributes = limits.max_span_attributes
        self._max_length = limits.max_span_attribute_length
        self._events = ()  # a BoundedList from the first event
        self._links = self._new_links(links) if links else ()
        self._record_end_metrics = None

    # -- attributes: BoundedAttributes' rules, without its lock or generic cleaning -----------

    def _put(self, key: str, value: types.AnyValue) -> None:
        attributes = self._attributes
        if key in attributes:
            del attributes[key]  # a re-set key moves to the end, as in BoundedAttributes
        elif self._max_attributes is not None and len(attributes) >= self._max_attributes:
            if self._max_attributes == 0:
                self._dropped += 1
                return
            attributes_logger.warning(
                "Attributes dict is full. Dropping the oldest key-value pair from attributes "
                "to make space for the new key-value pair."
            )
            del attributes[next(iter(attributes))]
            self._dropped += 1
        attributes[key] = value

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is not None:
            logger.warning("Setting attribute on ended span.")
            return
        if not key or type(key) is not str:
            attributes_logger.warning(
                "invalid key `%s`. must be non-empty string. Dropping key from attributes.", key
            )
            self._dropped += 1
            return
        if type(value) not in _SIMPLE or self._max_length is not None:
            value = _clean_attribute_value(value, self._max_length)
        self._put(key, value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            logger.warning("Setting attribute on ended span.")
            return
        self._set_all(attributes)

    def _set_all(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._max_length is None and all(
            type(k) is str and k and type(v) in _SIMPLE for k, v in attributes.items()
        ):
            for key, value in attributes.items():
                self._put(key, value)
            return
        cleaned = _clean_attribute_value(attributes, self._max_length)
        self._dropped += len(attributes) - len(cleaned)
        for key, value in cleaned.items():
            self._put(key, value)

    @property
    def dropped_attributes(self) -> int:
        return self._dropped

    # -- events and links: the SDK's, once the first arrives -----------------------------------

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        if type(self._events) is tuple:
            self._events = BoundedList(self._limits.max_events)
        super().add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if type(self._links) is tuple:
            self._links = BoundedList(self._limits.max_links)
        super().add_link(context, attributes)

    # -- lifecycle -------------------------------------------------------------------------------

    def end(self, end_time: int | None = None) -> None:
        if self._start_time is None:
            raise RuntimeError("Calling end() on a not started span.")
        if self._end_time is not None:
            logger.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time if end_time is not None else time_ns()
        processor = self._span_processor
        processor._on_ending(self)
        # The span itself, not a ReadableSpan copy: every setter refuses it from here on.
        processor.on_end(self)


# The SDK guards a span's end-time check with a lock; the kit's spans are each used by one
# event loop (or one thread), so the check alone is enough. Used by the inherited
# `_check_span_ended`; a nullcontext can be entered again and again.
_NO_LOCK = contextlib.nullcontext()


class _CurrentSpan:
    """`start_as_current_span`'s context manager: `trace.use_span(span, end_on_exit=True)` as
    one object instead of two generators (same order: detach, record, set status, end)."""

    __slots__ = ("_span", "_token", "_end", "_record", "_set_status")

    def __init__(self, span: trace_api.Span, end: bool, record: bool, set_status: bool) -> None:
        self._span = span
        self._end = end
        self._record = record
        self._set_status = set_status

    def __enter__(self) -> trace_api.Span:
        self._token = context_api.attach(context_api.set_value(_SPAN_KEY, self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        try:
            context_api.detach(self._token)
            # As use_span: only Exception subclasses are errors (not GeneratorExit and the like).
            if isinstance(exc, Exception) and span.is_recording():
                if self._record:
                    span.record_exception(exc)
                if self._set_status:
                    span.set_status(
                        Status(StatusCode.ERROR, description=f"{type(exc).__name__}: {exc}")
                    )
        finally:
            if self._end:
                span.end()


class LeanTracer(Tracer):
    """The SDK's `Tracer`, starting `LeanSpan`s where that gives the SDK's result."""

    _lean: bool  # the short path gives the SDK's result (see LeanTracerProvider.get_tracer)

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _CurrentSpan:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        return _CurrentSpan(span, end_on_exit, record_exception, set_status_on_exception)

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        if not self._lean or not self._is_enabled():
            return super().start_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )
        parent: SpanContext | None = trace_api.get_current_span(context).get_span_context()
        ids = self.id_generator
        if parent is None or not parent.is_valid:
            # parentbased_always_on: a root span is sampled, with no trace state.
            random_id = ids.is_trace_id_random()
            span_context = SpanContext(
                ids.generate_trace_id(),
                ids.generate_span_id(),
                is_remote=False,
                trace_flags=_SAMPLED_RANDOM if random_id else _SAMPLED,
            )
            parent = None
        else:
            # A child follows its parent's sampled flag and keeps its trace state.
            sampled = parent.trace_flags.sampled
            if parent.trace_flags.random_trace_id:
                flags = _SAMPLED_RANDOM if sampled else _NOT_SAMPLED_RANDOM
            else:
                flags = _SAMPLED if sampled else _NOT_SAMPLED
            span_context = SpanContext(
                parent.trace_id,
                ids.generate_span_id(),
                is_remote=False,
                trace_flags=flags,
                trace_state=parent.trace_state,
            )
            if not sampled:
                return trace_api.NonRecordingSpan(context=span_context)
        span = LeanSpan(
            name, span_context, parent, self, kind, links, record_exception, set_status_on_exception
        )
        if attributes:
            span._set_all(attributes)
        span._start_time = start_time if start_time is not None else time_ns()
        self.span_processor.on_start(span, parent_context=context)
        return span


class LeanTracerProvider(TracerProvider):
    """The SDK's `TracerProvider`, whose tracers are `LeanTracer`s."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace_api.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        if type(tracer) is Tracer:
            # Made just now and kept by the provider, which returns it for this scope from now
            # on and updates it (its resource after a fork, its config): it becomes a
            # LeanTracer in place rather than a copy the provider would not know.
            tracer.__class__ = LeanTracer
            lean = cast(LeanTracer, tracer)
            lean._lean = _is_default_sampler(lean.sampler) and isinstance(
                lean._tracer_metrics, NoOpTracerMetrics
            )
        return tracer
