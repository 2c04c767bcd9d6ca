"""OpenTelemetry for every service: traces, metrics and logs over OTLP, one call to set up.

Standard OTEL_* variables configure the exporters; OTEL_SDK_DISABLED=true turns everything off
(no providers, no instrumentation, no exporter threads). Batch processors only: a synchronous
span processor would put the collector on every request's critical path.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context, attach, detach, set_value
from opentelemetry.trace import SpanKind, Status, StatusCode

from stack.common import envvars, propagation, redis_tracing
from stack.common.settings import ServiceName, Settings

log = logging.getLogger("stack.telemetry")

# Baggage entries copied onto every span so attendees can filter their own traces.
BAGGAGE_ATTRIBUTES = ("workshop.attendee", "workshop.session", "synthetic_request")
NOT_TRACED_PATHS = ("/health", "/ready")
# The UI's telemetry views (stack.gateway.telemetry_api): watching must not add spans.
NOT_TRACED_PREFIXES = ("/api/telemetry/", "/api/traces/")


def _otel_disabled(settings: Settings) -> bool:
    return settings.otel_sdk_disabled or envvars.get("OTEL_SDK_DISABLED").lower() == "true"


def resource_attributes(service: ServiceName, settings: Settings, version: str) -> dict[str, str]:
    return {
        "service.name": service.value,
        "service.version": version,
        "service.namespace": "dataprime",
        "service.instance.id": f"{service.value}-{os.getpid()}",
        "deployment.environment.name": settings.environment,
        "cx.application.name": settings.cx_application_name,
        "cx.subsystem.name": service.value,
    }


@dataclass
class Telemetry:
    service: ServiceName
    enabled: bool
    _providers: list[Any] = field(default_factory=list)

    def shutdown(self) -> None:
        """Flush and stop exporters; called on service shutdown so no span is lost."""
        for provider in self._providers:
            try:
                # Bounded: a stopping service must not hang on an unreachable collector.
                provider.force_flush(3000)
                provider.shutdown()
            except Exception:
                log.warning("telemetry provider %s failed to shut down", type(provider).__name__)
        self._providers.clear()


def setup_telemetry(service: ServiceName, settings: Settings, version: str) -> Telemetry:
    if _otel_disabled(settings):
        return Telemetry(service, enabled=False)

    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    from stack.common.quiet_metrics import QuietMetricExporter

    resource = Resource.create(resource_attributes(service, settings, version))
    propagation.install()

    tracer_provider = tracer_provider_class(settings)(resource=resource)
    tracer_provider.add_span_processor(baggage_processor(settings))
    tracer_provider.add_span_processor(batching(settings, "spans")(span_exporter(settings)))
    trace.set_tracer_provider(tracer_provider)

    interval = int(envvars.get("OTEL_METRIC_EXPORT_INTERVAL"))
    metric_exporter: MetricExporter = OTLPMetricExporter(session=otlp_session())
    if settings.metric_idle_export_ms:
        idle_s = settings.metric_idle_export_ms / 1000
        metric_exporter = QuietMetricExporter(metric_exporter, idle_s)
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[
            PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval)
        ],
    )
    metrics.set_meter_provider(meter_provider)

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        batching(settings, "logs")(OTLPLogExporter(session=otlp_session()))
    )
    set_logger_provider(logger_provider)
    logging.getLogger().addHandler(
        LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    )

    instrument_clients(tracer_provider, settings.client_spans)
    return Telemetry(service, True, [tracer_provider, meter_provider, logger_provider])


def instrument_clients(tracer_provider: Any, source: str) -> None:
    """Who makes the CLIENT spans. `kit`: stack.common.http.ServiceClient for calls between
    services (the service passes it `traced`) and stack.common.redis_tracing for Redis, for
    about half the CPU of the packages they replace (issue 19). `packages`: those packages, as
    before, for the budget bench's baseline arm; they come with the dev extra only."""
    if source == "kit":
        redis_tracing.enable(tracer_provider)
        return
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
    except ImportError as exc:
        raise RuntimeError(
            "CLIENT_SPANS=packages needs opentelemetry-instrumentation-aiohttp-client and "
            "-redis, which only the dev extra installs (pip install -e '.[dev]'); unset "
            "CLIENT_SPANS to use the kit's client spans"
        ) from exc
    from opentelemetry.metrics import NoOpMeterProvider

    # The conventions the kit's own spans follow; the packages need the opt-in.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database/dup")
    # HTTP RED metrics come from the collector's span_metrics connector: no client histograms.
    AioHttpClientInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=NoOpMeterProvider()
    )
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)


def baggage_processor(settings: Settings) -> Any:
    """What copies BAGGAGE_ATTRIBUTES onto every span: the kit's processor, or the package's
    with the SDK's own span path (SPAN_PATH=sdk, the budget bench's baseline arm)."""
    if settings.span_path == "sdk":
        from opentelemetry.processor.baggage import BaggageSpanProcessor

        return BaggageSpanProcessor(lambda k: k in BAGGAGE_ATTRIBUTES)
    from stack.common.baggage_spans import BaggageAttributes

    return BaggageAttributes(BAGGAGE_ATTRIBUTES)


def tracer_provider_class(settings: Settings) -> Any:
    """The tracer provider: the SDK's, whose tracers take a shorter path for the kit's spans
    (stack/common/lean_trace.py, issue 19), or the SDK's as it ships (SPAN_PATH=sdk, the
    budget bench's baseline arm)."""
    if settings.span_path == "sdk":
        from opentelemetry.sdk.trace import TracerProvider

        return TracerProvider
    from stack.common.lean_trace import LeanTracerProvider

    return LeanTracerProvider


def batching(settings: Settings, signal: Literal["spans", "logs"]) -> Any:
    """The batch processor class for spans or logs: the SDK's, with a worker that sleeps while
    nothing is queued (stack/common/quiet_batch.py, issue 19), or as the SDK ships it
    (BATCH_WORKER=sdk, the budget bench's baseline arm)."""
    if settings.batch_worker == "sdk":
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        return BatchSpanProcessor if signal == "spans" else BatchLogRecordProcessor
    from stack.common.quiet_batch import QuietLogProcessor, QuietSpanProcessor

    return QuietSpanProcessor if signal == "spans" else QuietLogProcessor


def span_exporter(settings: Settings) -> Any:
    """The OTLP/HTTP span exporter: the kit's encoder writes the SDK's bytes for a fifth of the
    export thread's CPU (issue 19); OTLP_SPAN_ENCODER=sdk puts the SDK's back (the budget
    bench's baseline arm)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from stack.common.otlp_wire import WireSpanExporter

    cls = WireSpanExporter if settings.otlp_span_encoder == "wire" else OTLPSpanExporter
    return cls(session=otlp_session())


def otlp_session() -> Any:
    """The HTTP session an OTLP exporter sends with. The collector is always this machine's or
    this compose project's, so the session ignores the environment's proxies and ~/.netrc:
    an HTTP_PROXY without a NO_PROXY for it would send every export through the proxy, and
    requests would stat ~/.netrc and read the proxy variables on every export (about a fifth
    of an export's CPU, issue 19)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def server_telemetry(telemetry: Telemetry, settings: Settings) -> dict[str, Any]:
    """FastAPI's own (native) OpenTelemetry config: one SERVER span per request, named
    `METHOD /route`, with the stable HTTP semantic conventions.

    It replaces opentelemetry-instrumentation-fastapi, whose ASGI middleware py-spy put among
    the gateway's top costs; FastAPI's own path is shorter and needs no extra package. HTTP
    duration histograms stay off — the collector's span_metrics connector derives RED metrics
    from the spans — and so do the per-operation spans (dependency resolution, endpoint,
    serialisation), which would add several spans to every request for little insight.
    Probes are never traced. With SERVER_SPANS=kit (the default) the kit opens the same spans
    itself (stack/common/server_spans.py, `server_spans_layer`) and FastAPI's stay off.
    """
    on = telemetry.enabled and settings.server_spans == "fastapi"
    return {
        "tracing": on,
        "logs": on,
        "metrics": False,
        "operation_spans": False,
        "exclude": _is_probe,
    }


def server_spans_layer(telemetry: Telemetry, settings: Settings) -> Any:
    """The ASGI layer that opens SERVER spans outside the app's middleware stack, or None when
    FastAPI's own telemetry does (SERVER_SPANS=fastapi) or telemetry is off."""
    if not telemetry.enabled or settings.server_spans != "kit":
        return None
    from stack.common.server_spans import ServerSpans

    return functools.partial(ServerSpans, exclude=_is_probe)


def _is_probe(scope: MutableMapping[str, Any]) -> bool:
    path = str(scope.get("path", ""))
    return path.endswith(NOT_TRACED_PATHS) or path.startswith(NOT_TRACED_PREFIXES)


def tracer(name: str = "stack") -> trace.Tracer:
    # The SDK's get_tracer builds two scope objects and resets the warnings filters each
    # call, about 11 µs; the tracer it returns for a name is always the same one (issue 19).
    return _tracer_of(trace.get_tracer_provider(), name)


@functools.lru_cache(maxsize=64)
def _tracer_of(provider: trace.TracerProvider, name: str) -> trace.Tracer:
    return provider.get_tracer(name)


def meter(name: str = "stack") -> metrics.Meter:
    return metrics.get_meter(name)


@contextmanager
def untraced() -> Iterator[None]:
    """Background polling (fault refresh, readiness, stream reads) must not create root traces."""
    # The key every OpenTelemetry instrumentation and the SDK's own export threads honour.
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        detach(token)


def inject_context(carrier: dict[str, str]) -> dict[str, str]:
    """Write traceparent/tracestate/baggage of the current context into a carrier."""
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: dict[str, str]) -> Context:
    return propagate.extract(carrier)


def record_error(span: trace.Span, exc: BaseException | str) -> None:
    if isinstance(exc, BaseException):
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
    else:
        span.set_status(Status(StatusCode.ERROR, exc[:200]))


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


__all__ = [
    "BAGGAGE_ATTRIBUTES",
    "NOT_TRACED_PREFIXES",
    "SpanKind",
    "batching",
    "Telemetry",
    "current_trace_id",
    "extract_context",
    "inject_context",
    "instrument_clients",
    "meter",
    "record_error",
    "resource_attributes",
    "server_telemetry",
    "span_exporter",
    "setup_telemetry",
    "tracer",
    "untraced",
]
