"""Streaming reader for OTLP JSON-lines files written by the collector's ``file`` exporter.

Each line is one OTLP/JSON export request (``resourceSpans`` / ``resourceMetrics`` /
``resourceLogs``). Files are read line by line, so large files never sit in memory whole.
The last line of the active file may be partially written while the collector flushes, and a
crash can leave a truncated line anywhere: undecodable lines are skipped.

There is no maintained Python package that parses OTLP/JSON back into plain objects (the
``opentelemetry-proto`` package ships protobuf classes only, and protobuf's JSON parser rejects
the file exporter's hex trace/span ids), hence this small decoder.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.common.tracestore import SPAN_KINDS

STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_SEVERITY_NAMES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    duration_ms: float
    status_code: str
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    status_message: str = ""
    scope: str = ""

    @property
    def is_error(self) -> bool:
        return self.status_code == "ERROR"


@dataclass(slots=True)
class DataPoint:
    attributes: dict[str, Any]
    time_ns: int
    start_ns: int = 0
    value: float | int | None = None  # gauge / sum
    count: int | None = None  # histogram / summary
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    min: float | None = None
    max: float | None = None


@dataclass(slots=True)
class Metric:
    name: str
    type: str  # gauge | sum | histogram | exponential_histogram | summary
    unit: str
    description: str
    data_points: list[DataPoint]
    resource: dict[str, Any]
    scope: str = ""
    is_monotonic: bool | None = None
    temporality: str = ""

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name", ""))


@dataclass(slots=True)
class LogRecord:
    body: Any
    severity: str
    severity_number: int
    time_ns: int
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str = ""

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name", ""))


# --------------------------------------------------------------------------- files


def signal_files(directory: str | Path, signal: str) -> list[Path]:
    """All files for ``signal`` (traces|metrics|logs), rotated backups included, oldest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    files = [p for p in d.glob(f"{signal}*.json*") if p.is_file()]
    # Backups are older than the active file; mtime order keeps records roughly chronological.
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _iter_lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            yield from fh
    except (OSError, EOFError):  # vanished during rotation, or truncated gzip
        return


def _iter_documents(directory: str | Path, signal: str) -> Iterator[dict[str, Any]]:
    for path in signal_files(directory, signal):
        for line in _iter_lines(path):
            line = line.strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue  # partially written / truncated line
            if isinstance(doc, dict):
                yield doc


# --------------------------------------------------------------------------- values


def any_value(v: dict[str, Any] | None) -> Any:
    """Decode an OTLP/JSON AnyValue."""
    if not v:
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return attributes((v["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in v:
        try:
            return base64.b64decode(v["bytesValue"])
        except ValueError:
            return v["bytesValue"]
    return None


def attributes(kvs: Iterable[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: any_value(kv.get("value")) for kv in (kvs or []) if "key" in kv}


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _enum(value: Any, names: dict[int, str], prefix: str) -> str:
    if isinstance(value, str):
        return value.removeprefix(prefix) or names[0]
    return names.get(_int(value), names[0])


def _hex_id(value: Any) -> str:
    # The file exporter writes hex; tolerate base64 (protobuf JSON mapping) as well.
    s = str(value or "")
    if not s:
        return ""
    try:
        int(s, 16)
        return s.lower()
    except ValueError:
        try:
            return base64.b64decode(s).hex()
        except ValueError:
            return s


def _scope_name(scope_block: dict[str, Any]) -> str:
    return str((scope_block.get("scope") or {}).get("name", ""))


# --------------------------------------------------------------------------- spans


def iter_spans(directory: str | Path) -> Iterator[Span]:
    for doc in _iter_documents(directory, "traces"):
        for rs in doc.get("resourceSpans") or []:
            resource = attributes((rs.get("resource") or {}).get("attributes"))
            service = str(resource.get("service.name", ""))
            for ss in rs.get("scopeSpans") or []:
                scope = _scope_name(ss)
                for s in ss.get("spans") or []:
                    start = _int(s.get("startTimeUnixNano"))
                    end = _int(s.get("endTimeUnixNano"), start)
                    status = s.get("status") or {}
                    yield Span(
                        trace_id=_hex_id(s.get("traceId")),
                        span_id=_hex_id(s.get("spanId")),
                        parent_span_id=_hex_id(s.get("parentSpanId")),
                        name=str(s.get("name", "")),
                        kind=_enum(s.get("kind", 0), SPAN_KINDS, "SPAN_KIND_"),
                        service=service,
                        start_ns=start,
                        end_ns=end,
                        duration_ms=max(end - start, 0) / 1e6,
                        status_code=_enum(status.get("code", 0), STATUS_CODES, "STATUS_CODE_"),
                        status_message=str(status.get("message", "")),
                        attributes=attributes(s.get("attributes")),
                        resource=resource,
                        events=[
                            {
                                "name": e.get("name", ""),
                                "time_ns": _int(e.get("timeUnixNano")),
                                "attributes": attributes(e.get("attributes")),
                            }
                            for e in s.get("events") or []
                        ],
                        scope=scope,
                    )


def load_spans(directory: str | Path) -> list[Span]:
    """Every span in ``directory`` (active and rotated ``traces*.json*`` files)."""
    return list(iter_spans(directory))


# --------------------------------------------------------------------------- metrics

_METRIC_TYPES = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponentialHistogram": "exponential_histogram",
    "summary": "summary",
}


def _data_point(dp: dict[str, Any]) -> DataPoint:
    point = DataPoint(
        attributes=attributes(dp.get("attributes")),
        time_ns=_int(dp.get("timeUnixNano")),
        start_ns=_int(dp.get("startTimeUnixNano")),
    )
    if "asInt" in dp:
        point.value = _int(dp["asInt"])
    elif "asDouble" in dp:
        point.value = _float(dp["asDouble"])
    if "count" in dp:
        point.count = _int(dp["count"])
    if "sum" in dp:
        point.sum = _float(dp["sum"])
    point.bucket_counts = [_int(c) for c in dp.get("bucketCounts") or []]
    point.explicit_bounds = [float(b) for b in dp.get("explicitBounds") or []]
    point.min = _float(dp.get("min"))
    point.max = _float(dp.get("max"))
    return point


def iter_metrics(directory: str | Path) -> Iterator[Metric]:
    for doc in _iter_documents(directory, "metrics"):
        for rm in doc.get("resourceMetrics") or []:
            resource = attributes((rm.get("resource") or {}).get("attributes"))
            for sm in rm.get("scopeMetrics") or []:
                scope = _scope_name(sm)
                for m in sm.get("metrics") or []:
                    kind = next((k for k in _METRIC_TYPES if k in m), None)
                    body = (m.get(kind) or {}) if kind else {}
                    temporality = body.get("aggregationTemporality", "")
                    if isinstance(temporality, int):
                        temporality = {1: "DELTA", 2: "CUMULATIVE"}.get(temporality, "")
                    else:
                        temporality = str(temporality).removeprefix("AGGREGATION_TEMPORALITY_")
                    yield Metric(
                        name=str(m.get("name", "")),
                        type=_METRIC_TYPES.get(kind, "unknown") if kind else "unknown",
                        unit=str(m.get("unit", "")),
                        description=str(m.get("description", "")),
                        data_points=[_data_point(dp) for dp in body.get("dataPoints") or []],
                        resource=resource,
                        scope=scope,
                        is_monotonic=body.get("isMonotonic") if kind == "sum" else None,
                        temporality=temporality,
                    )


def load_metrics(directory: str | Path) -> list[Metric]:
    """Every metric (one entry per metric per export) in ``directory``."""
    return list(iter_metrics(directory))


# --------------------------------------------------------------------------- logs


def _severity(number: int, text: str) -> str:
    if text:
        return text
    if number <= 0:
        return ""
    return _SEVERITY_NAMES[min((number - 1) // 4, len(_SEVERITY_NAMES) - 1)]


def iter_logs(directory: str | Path) -> Iterator[LogRecord]:
    for doc in _iter_documents(directory, "logs"):
        for rl in doc.get("resourceLogs") or []:
            resource = attributes((rl.get("resource") or {}).get("attributes"))
            for sl in rl.get("scopeLogs") or []:
                scope = _scope_name(sl)
                for r in sl.get("logRecords") or []:
                    number = r.get("severityNumber", 0)
                    if isinstance(number, str) and not number.isdigit():
                        names = [
                            "UNSPECIFIED",
                            *[
                                f"{n}{i if i > 1 else ''}"
                                for n in _SEVERITY_NAMES
                                for i in range(1, 5)
                            ],
                        ]
                        key = number.removeprefix("SEVERITY_NUMBER_")
                        number = names.index(key) if key in names else 0
                    number = _int(number)
                    yield LogRecord(
                        body=any_value(r.get("body")),
                        severity=_severity(number, str(r.get("severityText", ""))),
                        severity_number=number,
                        time_ns=_int(r.get("timeUnixNano")) or _int(r.get("observedTimeUnixNano")),
                        trace_id=_hex_id(r.get("traceId")),
                        span_id=_hex_id(r.get("spanId")),
                        attributes=attributes(r.get("attributes")),
                        resource=resource,
                        scope=scope,
                    )


def load_logs(directory: str | Path) -> list[LogRecord]:
    """Every log record in ``directory`` (active and rotated ``logs*.json*`` files)."""
    return list(iter_logs(directory))
