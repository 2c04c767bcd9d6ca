"""OTLP trace export, encoded straight to protobuf wire bytes.

The SDK's encoder (`opentelemetry.exporter.otlp.proto.common.trace_encoder`) builds one
protobuf object per span, per attribute and per attribute value, then serialises the tree: about
46 µs of the export thread's CPU for a FastAPI server span, which holds the GIL the request
path needs (issue 19). This module writes the same `ExportTraceServiceRequest` bytes
(opentelemetry-proto `collector/trace/v1/trace_service.proto`) with `bytes` joins, and caches
what repeats from span to span: a resource's and a scope's encoding, and each (key, value)
attribute pair that is a short string, a bool or an int (`http.request.method=POST`,
`server.port=8011`…).

`tests/unit/test_otlp_wire.py` holds it to the contract: decoded with the official
`opentelemetry.proto` classes, its bytes equal the SDK encoder's for every kind of span the kit
makes, events, links, status, trace state and every attribute type included.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind

log = logging.getLogger("stack.telemetry")

# Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
_LEN = 2
_SPAN_FLAGS_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_SPAN_FLAGS_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
# Attribute pairs worth caching repeat across spans; a bounded cache keeps a process that
# sees unbounded values (job ids, URLs) from growing.
_PAIR_CACHE_MAX = 4096
_CACHEABLE_STR_MAX = 128
_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


# Tags, by message (field numbers from opentelemetry-proto v1).
_T_REQ_RESOURCE_SPANS = _tag(1, _LEN)
_T_RS_RESOURCE, _T_RS_SCOPE_SPANS, _T_RS_SCHEMA = _tag(1, _LEN), _tag(2, _LEN), _tag(3, _LEN)
_T_RES_ATTRS = _tag(1, _LEN)
_T_SS_SCOPE, _T_SS_SPANS, _T_SS_SCHEMA = _tag(1, _LEN), _tag(2, _LEN), _tag(3, _LEN)
_T_SCOPE_NAME, _T_SCOPE_VERSION, _T_SCOPE_ATTRS = _tag(1, _LEN), _tag(2, _LEN), _tag(3, _LEN)
_T_SPAN_TRACE_ID = _tag(1, _LEN)
_T_SPAN_SPAN_ID = _tag(2, _LEN)
_T_SPAN_TRACE_STATE = _tag(3, _LEN)
_T_SPAN_PARENT = _tag(4, _LEN)
_T_SPAN_NAME = _tag(5, _LEN)
_T_SPAN_KIND = _tag(6, 0)
_T_SPAN_START = _tag(7, 1)
_T_SPAN_END = _tag(8, 1)
_T_SPAN_ATTR = _tag(9, _LEN)
_T_SPAN_DROPPED_ATTRS = _tag(10, 0)
_T_SPAN_EVENT = _tag(11, _LEN)
_T_SPAN_DROPPED_EVENTS = _tag(12, 0)
_T_SPAN_LINK = _tag(13, _LEN)
_T_SPAN_DROPPED_LINKS = _tag(14, 0)
_T_SPAN_STATUS = _tag(15, _LEN)
_T_SPAN_FLAGS = _tag(16, 5)
_T_EVENT_TIME, _T_EVENT_NAME = _tag(1, 1), _tag(2, _LEN)
_T_EVENT_ATTR, _T_EVENT_DROPPED = _tag(3, _LEN), _tag(4, 0)
_T_LINK_TRACE_ID, _T_LINK_SPAN_ID, _T_LINK_TRACE_STATE = _tag(1, _LEN), _tag(2, _LEN), _tag(3, _LEN)
_T_LINK_ATTR, _T_LINK_DROPPED, _T_LINK_FLAGS = _tag(4, _LEN), _tag(5, 0), _tag(6, 5)
_T_STATUS_MESSAGE, _T_STATUS_CODE = _tag(2, _LEN), _tag(3, 0)
_T_KV_KEY, _T_KV_VALUE = _tag(1, _LEN), _tag(2, _LEN)
_T_ANY_STR, _T_ANY_BOOL, _T_ANY_INT = _tag(1, _LEN), _tag(2, 0), _tag(3, 0)
_T_ANY_DOUBLE, _T_ANY_ARRAY, _T_ANY_KVLIST = _tag(4, 1), _tag(5, _LEN), _tag(6, _LEN)
_T_ANY_BYTES = _tag(7, _LEN)
_T_LIST_VALUES = _tag(1, _LEN)  # ArrayValue.values and KeyValueList.values


def _any_value(value: Any) -> bytes:
    """AnyValue's payload (without its own tag), as the SDK encoder's `_encode_value`."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _T_ANY_BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(_T_ANY_STR, value.encode())
    if isinstance(value, int):
        # int64 as a varint: negative numbers take ten bytes, two's complement.
        return _T_ANY_INT + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return _T_ANY_DOUBLE + _double(value)
    if isinstance(value, bytes):
        return _field(_T_ANY_BYTES, value)
    if isinstance(value, Sequence):
        items = b"".join(_field(_T_LIST_VALUES, _any_value(v)) for v in value)
        return _field(_T_ANY_ARRAY, items)
    if isinstance(value, Mapping):
        pairs = b"".join(_field(_T_LIST_VALUES, _key_value(str(k), v)) for k, v in value.items())
        return _field(_T_ANY_KVLIST, pairs)
    raise TypeError(f"invalid attribute type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(_T_KV_KEY, key.encode()) + _field(_T_KV_VALUE, _any_value(value))


_pairs: dict[tuple[bytes, str, type, Any], bytes] = {}


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Every attribute as a repeated KeyValue field under `tag`."""
    if not attributes:
        return b""
    out = []
    for key, value in attributes.items():
        kind = type(value)
        if kind is str and len(value) <= _CACHEABLE_STR_MAX or kind is bool or kind is int:
            # The type is part of the key (True == 1 in Python, but not on the wire), and so
            # is the tag: a span's attributes are field 9, an event's field 3, a link's 4.
            cache_key = (tag, key, kind, value)
            encoded = _pairs.get(cache_key)
            if encoded is None:
                if len(_pairs) >= _PAIR_CACHE_MAX:
                    _pairs.clear()
                encoded = _pairs[cache_key] = _field(tag, _key_value(key, value))
            out.append(encoded)
        else:
            out.append(_field(tag, _key_value(key, value)))
    return b"".join(out)


def _flags(parent: SpanContext | None) -> int:
    if parent is not None and parent.is_remote:
        return _SPAN_FLAGS_HAS_IS_REMOTE | _SPAN_FLAGS_IS_REMOTE
    return _SPAN_FLAGS_HAS_IS_REMOTE


def _trace_state(context: SpanContext) -> bytes:
    state = context.trace_state
    if not state:
        return b""
    return ",".join(f"{k}={v}" for k, v in state.items()).encode()


def _ids(trace_tag: bytes, span_tag: bytes, context: SpanContext) -> list[bytes]:
    """A trace id (16 bytes) and a span id (8 bytes) as two length-delimited fields."""
    return [
        trace_tag,
        b"\x10",
        context.trace_id.to_bytes(16, "big"),
        span_tag,
        b"\x08",
        context.span_id.to_bytes(8, "big"),
    ]


def encode_span(span: ReadableSpan) -> bytes:
    """One Span message's payload."""
    context = span.get_span_context()
    assert context is not None
    parts = _ids(_T_SPAN_TRACE_ID, _T_SPAN_SPAN_ID, context)
    state = _trace_state(context)
    if state:
        parts.append(_field(_T_SPAN_TRACE_STATE, state))
    parent = span.parent
    if parent is not None:
        parts += (_T_SPAN_PARENT, b"\x08", parent.span_id.to_bytes(8, "big"))
    parts.append(_field(_T_SPAN_NAME, span.name.encode()))
    parts += (_T_SPAN_KIND, _varint(_KIND[span.kind]))
    if span.start_time:
        parts += (_T_SPAN_START, _fixed64(span.start_time))
    if span.end_time:
        parts += (_T_SPAN_END, _fixed64(span.end_time))
    parts.append(_attributes(_T_SPAN_ATTR, span.attributes))
    if span.dropped_attributes:
        parts += (_T_SPAN_DROPPED_ATTRS, _varint(span.dropped_attributes))
    for event in span.events:
        payload = [_T_EVENT_TIME, _fixed64(event.timestamp)] if event.timestamp else []
        payload.append(_field(_T_EVENT_NAME, event.name.encode()) if event.name else b"")
        payload.append(_attributes(_T_EVENT_ATTR, event.attributes))
        if event.dropped_attributes:
            payload += (_T_EVENT_DROPPED, _varint(event.dropped_attributes))
        parts.append(_field(_T_SPAN_EVENT, b"".join(payload)))
    if span.dropped_events:
        parts += (_T_SPAN_DROPPED_EVENTS, _varint(span.dropped_events))
    for link in span.links:
        linked = link.context
        payload = _ids(_T_LINK_TRACE_ID, _T_LINK_SPAN_ID, linked)
        payload.append(_attributes(_T_LINK_ATTR, link.attributes))
        if link.dropped_attributes:
            payload += (_T_LINK_DROPPED, _varint(link.dropped_attributes))
        payload += (_T_LINK_FLAGS, _fixed32(_flags(linked)))
        parts.append(_field(_T_SPAN_LINK, b"".join(payload)))
    if span.dropped_links:
        parts += (_T_SPAN_DROPPED_LINKS, _varint(span.dropped_links))
    status = span.status
    code = status.status_code.value
    message = status.description
    status_payload = (_field(_T_STATUS_MESSAGE, message.encode()) if message else b"") + (
        _T_STATUS_CODE + _varint(code) if code else b""
    )
    parts.append(_field(_T_SPAN_STATUS, status_payload))
    parts += (_T_SPAN_FLAGS, _fixed32(_flags(parent)))
    return b"".join(parts)


_scopes: dict[InstrumentationScope | None, bytes] = {}


# Keyed by identity: a Resource hashes by JSON-dumping its attributes (the SDK encoder pays
# that for every span); a process has one, made once. The object is kept beside its bytes, so a
# recycled id cannot match.
_resources: dict[int, tuple[Resource, bytes]] = {}


def _resource(resource: Resource) -> bytes:
    """A Resource field (tag included)."""
    hit = _resources.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    if len(_resources) >= 64:
        _resources.clear()
    encoded = _field(_T_RS_RESOURCE, _attributes(_T_RES_ATTRS, resource.attributes))
    _resources[id(resource)] = (resource, encoded)
    return encoded


def _scope(scope: InstrumentationScope | None) -> bytes:
    encoded = _scopes.get(scope)
    if encoded is None:
        payload = b""
        if scope is not None:
            payload = (
                (_field(_T_SCOPE_NAME, scope.name.encode()) if scope.name else b"")
                + (_field(_T_SCOPE_VERSION, scope.version.encode()) if scope.version else b"")
                + _attributes(_T_SCOPE_ATTRS, scope.attributes)
            )
        if len(_scopes) >= 256:
            _scopes.clear()
        encoded = _scopes[scope] = _field(_T_SS_SCOPE, payload)
    return encoded


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest: spans grouped by resource, then by scope, in first-seen
    order (as the SDK encoder groups them; resources by identity, see `_resources`)."""
    grouped: dict[int, tuple[Resource, dict[InstrumentationScope | None, list[bytes]]]] = {}
    for span in spans:
        scope = span.instrumentation_scope or None
        group = grouped.get(id(span.resource))
        if group is None:
            group = grouped[id(span.resource)] = (span.resource, {})
        encoded = _field(_T_SS_SPANS, encode_span(span))
        group[1].setdefault(scope, []).append(encoded)
    out = []
    for resource, by_scope in grouped.values():
        payload = [_resource(resource)]
        for scope, encoded_spans in by_scope.items():
            scope_payload = [_scope(scope), *encoded_spans]
            if scope is not None and scope.schema_url:
                scope_payload.append(_field(_T_SS_SCHEMA, scope.schema_url.encode()))
            payload.append(_field(_T_RS_SCOPE_SPANS, b"".join(scope_payload)))
        if resource.schema_url:
            payload.append(_field(_T_RS_SCHEMA, resource.schema_url.encode()))
        out.append(_field(_T_REQ_RESOURCE_SPANS, b"".join(payload)))
    return b"".join(out)


class WireSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter (endpoint, headers, timeout, compression, retries
    from the standard OTEL_EXPORTER_OTLP_* variables) with `encode_spans` above in place of
    the SDK's encoder; the rest of `export` is the SDK's (1.45)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                data = encode_spans(spans)
            except Exception as error:  # a span the encoder cannot hold must not kill the thread
                log.error("failed to encode a span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if len(data) > self._max_request_size:
                log.warning("dropping a span batch of %d bytes: over the request limit", len(data))
                return SpanExportResult.FAILURE
            outcome = self._client.export(data)
            if not outcome.success:
                result.error = outcome.error
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
