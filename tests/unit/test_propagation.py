"""The kit's W3C propagator gives the SDK's `tracecontext,baggage` result on every input, and
reads the kit's own headers without the SDK (stack/common/propagation.py, issue 19)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from stack.common import propagation
from stack.common.propagation import W3CPropagator

SDK = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
KIT = W3CPropagator()
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
BAG = "workshop.attendee=alice,workshop.session=s-1a2b3c,synthetic_request=true"

CARRIERS: list[dict[str, Any]] = [
    {},
    {"traceparent": TP},
    {"traceparent": TP, "baggage": BAG},
    {"baggage": BAG},
    {"traceparent": TP.replace("-01", "-00")},
    {"traceparent": TP, "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
    {"traceparent": TP.upper()},
    {"traceparent": " " + TP + " "},
    {"traceparent": "ff" + TP[2:]},
    {"traceparent": "01" + TP[2:] + "-future"},
    {"traceparent": TP + "-extra"},
    {"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01", "baggage": BAG},
    {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01"},
    {"traceparent": "garbage"},
    {"traceparent": ""},
    {"baggage": ""},
    {"baggage": "a=1, b = 2"},
    {"baggage": "a=1;prop=x,b=2;flag"},
    {"baggage": "who=al%20ice,plus=a+b"},
    {"baggage": "k="},
    {"baggage": "=v,k=v"},
    {"baggage": "k=v,k=w"},
    {"baggage": "k=v,broken,j=w"},
    {"baggage": "k=vä"},
    {"baggage": ",".join(f"k{i}=v" for i in range(200))},
    {"baggage": "k=" + "v" * 5000},
    {"baggage": ",".join(f"k{i}=" + "v" * 100 for i in range(100))},
    {"traceparent": [TP], "baggage": [BAG]},
    {"traceparent": [TP, TP.replace("-01", "-00")], "baggage": ["a=1", "b=2"]},
]


def _seen(ctx: Context) -> tuple[Any, ...]:
    sc = trace.get_current_span(ctx).get_span_context()
    return (
        sc.trace_id,
        sc.span_id,
        sc.trace_flags,
        sc.is_remote,
        sc.trace_state.to_header() if sc.trace_state else None,
        dict(baggage.get_all(ctx)),
    )


class ListGetter:
    """A carrier whose values may be lists (several header fields)."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        return value if isinstance(value, list) else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return list(carrier)


@pytest.mark.parametrize("carrier", CARRIERS, ids=range(len(CARRIERS)))
def test_extract_is_the_sdks(carrier: dict[str, Any]) -> None:
    getter = ListGetter()
    assert _seen(KIT.extract(carrier, getter=getter)) == _seen(SDK.extract(carrier, getter=getter))
    # onto a context that already carries baggage: merged the same way
    start = baggage.set_baggage("k", "earlier", baggage.set_baggage("keep", "me"))
    assert _seen(KIT.extract(carrier, start, getter)) == _seen(SDK.extract(carrier, start, getter))


def _context(bag: dict[str, object], state: TraceState | None = None, valid: bool = True) -> Any:
    ctx = Context()
    if valid:
        span = NonRecordingSpan(
            SpanContext(
                0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1), state
            )  # fmt: skip
        )
        ctx = trace.set_span_in_context(span, ctx)
    for key, value in bag.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return ctx


INJECTED = [
    _context({}),
    _context({"workshop.attendee": "alice", "workshop.session": "s-1", "synthetic_request": True}),
    _context({"who": "al ice", "eq": "a=b", "uni": "ä", "plus": "a+b"}),
    _context({"k": "v"}, TraceState([("congo", "t61rcWkgMzE")])),
    _context({"k": "v"}, valid=False),
    _context({f"k{i}": "v" * 50 for i in range(150)}),
    _context({}, valid=False),
]


@pytest.mark.parametrize("ctx", INJECTED, ids=range(len(INJECTED)))
def test_inject_is_the_sdks(ctx: Context) -> None:
    kit: dict[str, str] = {}
    sdk: dict[str, str] = {}
    KIT.inject(kit, ctx)
    SDK.inject(sdk, ctx)
    assert kit == sdk


def test_the_kits_own_headers_never_reach_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is the one taken for what the services send each other."""

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("fell back to the SDK's propagator")

    kit = W3CPropagator()
    for sdk_part in (kit._trace, kit._baggage):
        monkeypatch.setattr(sdk_part, "extract", refuse)
        monkeypatch.setattr(sdk_part, "inject", refuse)
    ctx = kit.extract({"traceparent": TP, "baggage": BAG})
    assert baggage.get_baggage("workshop.attendee", ctx) == "alice"
    carrier: dict[str, str] = {}
    kit.inject(carrier, ctx)
    assert carrier == {"traceparent": TP, "baggage": BAG}


@pytest.mark.parametrize(("setting", "kits"), [(None, True), ("tracecontext,baggage", False)])
def test_otel_propagators_keeps_the_sdks_choice(
    setting: str | None, kits: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = propagate.get_global_textmap()
    if setting is None:
        monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
    else:
        monkeypatch.setenv("OTEL_PROPAGATORS", setting)
    try:
        propagation.install()
        assert isinstance(propagate.get_global_textmap(), W3CPropagator) is kits
    finally:
        propagate.set_global_textmap(before)
