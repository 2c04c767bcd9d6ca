"""W3C trace context and baggage on every hop, for a third of the SDK propagators' CPU.

Every request a service serves extracts `traceparent` and `baggage`, and every call it makes
injects them. The SDK's composite of `TraceContextTextMapPropagator` and
`W3CBaggagePropagator` costs about 18 µs an extract here (py-spy put it at 6 % of
validation-service at saturation, issue 19): a regex search, then per baggage entry a regex
validation, URL unquoting and a new context.

This propagator reads the headers the kit itself writes — version 00, no tracestate, baggage
of plain `key=value` tokens — with one full match each and builds the context once. Anything
else (a tracestate, another version, padding, properties, percent-encoding, limits in play) goes
to the SDK's propagators, so the result is the SDK's for every input:
tests/unit/test_propagation.py compares the two on the kit's headers and on malformed ones.
Setting OTEL_PROPAGATORS (even to the default, `tracecontext,baggage`) keeps the SDK's choice.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry import trace
from opentelemetry.baggage import _BAGGAGE_KEY, get_all
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, set_value
from opentelemetry.propagators import textmap
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# What the kit writes: version 00, lowercase hex, nothing around it.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# Baggage of plain tokens: nothing to unquote, trim or validate further; at most 180 entries
# (the SDK's limit) fit in the 4096 characters this path accepts (the SDK's per-entry limit).
_TOKEN = r"[A-Za-z0-9_.\-]+"
_BAGGAGE = re.compile(rf"{_TOKEN}={_TOKEN}(?:,{_TOKEN}={_TOKEN}){{0,179}}")
_BAGGAGE_FAST_MAX = 4096
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class W3CPropagator(textmap.TextMapPropagator):
    """traceparent, tracestate and baggage, as `tracecontext,baggage` would."""

    def __init__(self) -> None:
        self._trace = TraceContextTextMapPropagator()
        self._baggage = W3CBaggagePropagator()

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        # The composite hands the first propagator None and the next one its result; trace
        # context starts from an empty context, not the current one.
        context = self._extract_trace(carrier, Context() if context is None else context, getter)
        return self._extract_baggage(carrier, context, getter)

    def _extract_trace(
        self, carrier: Any, context: Context, getter: textmap.Getter[Any]
    ) -> Context:
        header = getter.get(carrier, "traceparent")
        if not header:
            return context
        match = _TRACEPARENT.fullmatch(header[0])
        if match is None or getter.get(carrier, "tracestate") is not None:
            return self._trace.extract(carrier, context, getter)
        trace_id, span_id, flags = match.groups()
        if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return context
        span_context = trace.SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(int(flags, 16)),
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context), context)

    def _extract_baggage(
        self, carrier: Any, context: Context, getter: textmap.Getter[Any]
    ) -> Context:
        values = getter.get(carrier, "baggage")
        if not values:
            return context
        header = values[0]
        if not header:
            return context
        if len(header) > _BAGGAGE_FAST_MAX or _BAGGAGE.fullmatch(header) is None:
            return self._baggage.extract(carrier, context, getter)
        entries = dict(get_all(context))
        for pair in header.split(","):
            name, value = pair.split("=", 1)
            entries[name] = value
        return set_value(_BAGGAGE_KEY, entries, context)

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.trace_state:
            self._trace.inject(carrier, context, setter)
        elif span_context != trace.INVALID_SPAN_CONTEXT:
            setter.set(
                carrier,
                "traceparent",
                f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
                f"{span_context.trace_flags:02x}",
            )
        entries = get_all(context)
        if not entries:
            return
        header = ",".join(f"{name}={value}" for name, value in entries.items())
        if len(header) > _BAGGAGE_FAST_MAX or _BAGGAGE.fullmatch(header) is None:
            self._baggage.inject(carrier, context, setter)
        else:
            setter.set(carrier, "baggage", header)

    @property
    def fields(self) -> set[str]:
        return {"traceparent", "tracestate", "baggage"}


def install() -> None:
    """Make this the process's propagator unless OTEL_PROPAGATORS chose one."""
    from opentelemetry import propagate

    from stack.common import envvars

    if not envvars.get("OTEL_PROPAGATORS").strip():
        propagate.set_global_textmap(W3CPropagator())
