"""The kit's baggage processor puts on every span what opentelemetry-processor-baggage's does."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stack.common.baggage_spans import BaggageAttributes
from stack.common.lean_trace import LeanTracerProvider
from stack.common.telemetry import BAGGAGE_ATTRIBUTES

BAGGAGES = [
    {},
    {"workshop.attendee": "alice"},
    # other entries left out; the order is the baggage's, not BAGGAGE_ATTRIBUTES'
    {
        "synthetic_request": "true",
        "other": "x",
        "workshop.session": "s1",
        "workshop.attendee": "bob",
    },
    {"other": "only"},
]


def _spans(provider_cls: type[TracerProvider], processor: SpanProcessor) -> list[list[object]]:
    memory = InMemorySpanExporter()
    provider = provider_cls()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for entries in BAGGAGES:
        ctx = context.Context()
        for key, value in entries.items():
            ctx = baggage.set_baggage(key, value, ctx)
        token = context.attach(ctx)
        try:
            with tracer.start_as_current_span("parent", attributes={"a": 1}):
                tracer.start_span("child").end()
            tracer.start_span("given", context=context.Context()).end()  # no baggage
        finally:
            context.detach(token)
    return [list((span.attributes or {}).items()) for span in memory.get_finished_spans()]


@pytest.mark.parametrize("provider_cls", [TracerProvider, LeanTracerProvider])
def test_same_attributes_in_the_same_order(provider_cls: type[TracerProvider]) -> None:
    package = _spans(provider_cls, BaggageSpanProcessor(lambda k: k in BAGGAGE_ATTRIBUTES))
    kit = _spans(provider_cls, BaggageAttributes(BAGGAGE_ATTRIBUTES))
    assert kit == package
    # child, parent, given a baggage: the comparison saw the entries at all
    assert kit[6] == [
        ("synthetic_request", "true"),
        ("workshop.session", "s1"),
        ("workshop.attendee", "bob"),
    ]
    assert kit[7][0] == ("a", 1)
