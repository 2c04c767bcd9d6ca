"""Chosen baggage entries as attributes of every span a service starts.

What opentelemetry-processor-baggage's `BaggageSpanProcessor` does with a predicate, at half
its CPU a span (issue 19): the context's baggage is read as the dict it is, not through a
read-only copy, the keys are a set instead of a predicate called per entry, and the matches go
onto the span in one `set_attributes` (the SDK's `set_attribute` is that call with one entry).
The attributes, and their order (the baggage's), are the package's; SPAN_PATH=sdk keeps the
package (the budget bench's baseline arm).
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.context import Context, get_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor


class BaggageAttributes(SpanProcessor):
    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = frozenset(keys)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        entries = get_value(_BAGGAGE_KEY, parent_context)
        if entries and isinstance(entries, dict):
            keys = self._keys
            found = {k: v for k, v in entries.items() if k in keys}
            if found:
                span.set_attributes(found)

    def on_end(self, span: ReadableSpan) -> None:
        pass
