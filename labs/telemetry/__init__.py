"""Read back the telemetry the collector's ``file`` exporter writes in offline mode.

The files are OTLP JSON lines (one export request per line) under ``data/telemetry/``:
``traces.jsonl``, ``metrics.jsonl``, ``logs.jsonl`` and their rotated backups
(``traces-<timestamp>.jsonl``). Used by ``workshop traces`` and the lab notebooks.
"""

from labs.telemetry.reader import (
    DataPoint,
    LogRecord,
    Metric,
    Span,
    iter_logs,
    iter_metrics,
    iter_spans,
    load_logs,
    load_metrics,
    load_spans,
    signal_files,
)
from labs.telemetry.traces import (
    TraceSummary,
    build_tree,
    trace_spans,
    traces,
    traces_table,
    waterfall_figure,
    waterfall_text,
)

__all__ = [
    "DataPoint",
    "LogRecord",
    "Metric",
    "Span",
    "TraceSummary",
    "build_tree",
    "iter_logs",
    "iter_metrics",
    "iter_spans",
    "load_logs",
    "load_metrics",
    "load_spans",
    "signal_files",
    "trace_spans",
    "traces",
    "traces_table",
    "waterfall_figure",
    "waterfall_text",
]
