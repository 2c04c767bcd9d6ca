"""Rule-based plain language -> DataPrime generation.

The question is normalised, then small extractors (`extract.py`) pull out the entities
(time window, services, operation, quoted phrases, N, percentiles, group-by
dimension, error flavour), an ordered list of intent rules picks the query
shape, and a table (`_BUILDERS`) maps each intent to the builder that writes its query.
Every template is built from validated pieces, and the test-suite runs
the whole scenarios/questions.txt corpus through `validate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .dataset import OPERATIONS
from .extract import (
    NUM,
    QUOTED_RE,
    SERVICE_DIM,
    Dimension,
    Window,
    duration_threshold,
    extract_dimension,
    extract_n,
    extract_operation,
    extract_percentiles,
    extract_phrases,
    extract_services,
    extract_window,
    noun_dimension,
)
from .extract import normalize_question as normalize_question  # re-exported (the cache key)

INTENTS: tuple[str, ...] = (
    "error_search",
    "latency_percentile",
    "count_by",
    "throughput",
    "top_n",
    "free_text",
    "service_operation",
    "slowest_traces",
    "error_rate",
    "distinct_values",
    "recent_logs",
)
DEFAULT_INTENT = "recent_logs"
# Coralogix keeps OTel span attributes under $d.tags with their dotted names whole
SPAN_STATUS = "$d.tags['http.response.status_code']"


@dataclass(frozen=True)
class Generated:
    query: str
    intent: str
    confidence: float
    explanation: str

    def to_dict(self) -> dict[str, object]:
        return {
            "query": self.query,
            "intent": self.intent,
            "confidence": self.confidence,
            "explanation": self.explanation,
        }


# ------------------------------------------------------------ intent rules

_ERROR_WORDS = re.compile(
    r"\b(errors?|erroring|5xxs?|4xxs?|50[0-4]s?|exceptions?|failures?|failed|failing|fails|"
    r"crash(?:es|ed|ing)?|critical|fatal|broken|panics?|server errors?|unhealthy|"
    r"bad requests?|problems?|issues?)\b"
)
_LOG_WORDS = re.compile(
    r"\b(logs?|logged|logging|messages?|exceptions?|stack ?traces?|severity|warnings?|"
    r"critical|debug|info|lines?|entries)\b"
)
_SPAN_WORDS = re.compile(
    r"\b(spans?|traces?|latency|latencies|duration|requests?|endpoints?|operations?|"
    r"status codes?|5xx|4xx|http|calls?|response times?|slow|slowest|rps|throughput)\b"
)
_COUNT_WORDS = re.compile(r"\b(how many|count|counts|number of|total|tally|volume of)\b")


def _is_slowest_traces(t: str) -> bool:
    if re.search(
        r"\b(?:slowest|longest|slow)\s+(?:\w+\s+)?(?:traces?|requests?|spans?|calls?|"
        r"transactions?)\b",
        t,
    ) and not re.search(r"\b(operations?|endpoints?|services?|routes?)\b", t):
        return True
    return bool(
        re.search(r"\b(traces?|requests?|spans?|calls?)\b.*\b(slower|longer|taking|took)\b", t)
        or re.search(r"\b(longest[- ]running|slowest)\s+traces?\b", t)
    )


def _is_top_n(t: str) -> bool:
    return bool(
        re.search(r"\b(top|bottom)\s+" + NUM + r"\b", t)
        or re.search(r"\btop\s+(services?|operations?|endpoints?|routes?|status)", t)
        or re.search(
            NUM + r"\s+(slowest|fastest|busiest|noisiest|worst|best|most|least|heaviest)\b", t
        )
        or re.search(
            r"\b(which|what)\s+(services?|operations?|endpoints?|routes?|status codes?|regions?)"
            r"\s+(?:\w+\s+){0,3}(most|highest|fewest|least|lowest|slowest|fastest|busiest)\b",
            t,
        )
        or re.search(
            r"\b(busiest|noisiest|slowest|fastest)\s+(services?|operations?|endpoints?|routes?)",
            t,
        )
    )


_ERROR_RATE_RE = re.compile(
    r"\b(error rate|error rates|failure rate|failure rates|error ratio|error percentage|"
    r"percentage of (?:requests? )?(?:errors?|failures?|failed|failing)|success rate|"
    r"availability|fraction of (?:requests? )?(?:failed|failing|errors?)|"
    r"what percent(?:age)? of (?:requests? |calls? )?(?:fail|error))"
)
_LATENCY_RE = re.compile(
    r"\b(latency|latencies|response times?|duration|durations|slow|slower|slowness|"
    r"how long|median|percentiles?|p\d{2,3}|average time|avg time|mean time|fast|quick|"
    r"performance|sluggish)\b"
)
_THROUGHPUT_RE = re.compile(
    r"\b(throughput|rps|qps|per second|per minute|per hour|per day|hourly|minutely|daily|"
    r"over time|traffic|request rate|rate of requests|timeline|time series|trend|trends|"
    r"histogram|each minute|every minute|each hour|every hour|spikes?)\b"
)
_DISTINCT_RE = re.compile(
    r"\b(distinct|unique|list (?:all|the|every)|enumerate|what (?:are the )?(?:different|"
    r"possible)|which (?:services|operations|endpoints|routes|status codes|regions|versions)"
    r" (?:exist|are there|do we have|are running|are deployed|report|send|emit))"
)
_COUNT_BY_RE = re.compile(
    r"\b(count|counts|how many|number of|total|breakdown|break down|distribution|split|"
    r"grouped by|group by|per|by|tally|volume)\b"
)
_FREE_TEXT_RE = re.compile(
    r"\b(containing|contains|mentioning|mention|mentions|matching|grep|search(?:ing)? for|"
    r"with the (?:word|text|phrase)|that say|saying|look(?:ing)? for|find)\b"
)
_SERVICE_OP_RE = re.compile(
    r"\b(spans?|calls?|requests?|traces?|invocations?|hits?)\s+(?:for|to|from|of|on|hitting|"
    r"against|into)\b"
)


def _classify(
    t: str, *, phrases: list[str], op: str | None, services: list[str]
) -> tuple[str, float]:
    pcts = extract_percentiles(t)
    if _is_slowest_traces(t):
        return "slowest_traces", 0.9
    if _is_top_n(t):
        return "top_n", 0.9
    if _ERROR_RATE_RE.search(t):
        return "error_rate", 0.9
    if pcts or _LATENCY_RE.search(t):
        return "latency_percentile", 0.9 if pcts else 0.8
    if _THROUGHPUT_RE.search(t):
        return "throughput", 0.85
    if phrases and (_FREE_TEXT_RE.search(t) or QUOTED_RE.search(t) or _LOG_WORDS.search(t)):
        return "free_text", 0.9
    if _ERROR_WORDS.search(t):
        return "error_search", 0.9
    if _DISTINCT_RE.search(t):
        return "distinct_values", 0.85
    if _COUNT_BY_RE.search(t) and (extract_dimension(t) or _COUNT_WORDS.search(t)):
        return "count_by", 0.85 if _COUNT_WORDS.search(t) else 0.75
    if phrases:
        return "free_text", 0.75
    if op or (services and _SERVICE_OP_RE.search(t)):
        return "service_operation", 0.85 if op else 0.7
    # Fallback: recent logs, scoped by whatever we did recognise.
    return DEFAULT_INTENT, 0.4 if services else 0.25


# ------------------------------------------------------------------ builder


def _lit(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Builder:
    """Accumulates pipeline commands plus explanation fragments."""

    def __init__(self, t: str, source: str) -> None:
        self.t = t
        self.source = source
        self.commands: list[str] = []
        self.filters: list[str] = []

    def svc_key(self) -> str:
        return "$l.serviceName" if self.source == "spans" else "$l.subsystemname"

    def add_service_filter(self, services: list[str]) -> None:
        if not services:
            return
        key = self.svc_key()
        parts = [f"{key} == {_lit(s)}" for s in services]
        self.filters.append(parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")")

    def error_filter(self) -> str:
        t = self.t
        status_key = SPAN_STATUS if self.source == "spans" else "$d.status_code"
        code = re.search(r"\b([45]0\d)s?\b(?!\s*(?:ms|s\b|milli|sec))", t)
        if code:
            return f"{status_key} == {code.group(1)}"
        if re.search(r"\b(5xx|server errors?|500s)\b", t):
            return f"{status_key} >= 500"
        if re.search(r"\b(4xx|client errors?|bad requests?)\b", t):
            return f"{status_key} >= 400 && {status_key} < 500"
        if self.source == "logs":
            if re.search(r"\b(critical|fatal)\b", t):
                return "$m.severity == CRITICAL"
            return "$m.severity >= ERROR"
        return f"{SPAN_STATUS} >= 500"

    def text(self) -> str:
        cmds = [f"source {self.source}"]
        cmds += [f"filter {f}" for f in self.filters]
        cmds += self.commands
        return " | ".join(cmds)


_SEVERITY_WORDS = {
    "warning": "WARNING",
    "warnings": "WARNING",
    "warn": "WARNING",
    "debug": "DEBUG",
    "info": "INFO",
}


def _dim_key(dim: Dimension | None, source: str) -> str | None:
    if dim is None:
        return None
    return dim[1] if source == "spans" else dim[2]


def _pick_source(t: str, intent: str, phrases: list[str], dim_name: str | None) -> str:
    if intent in ("latency_percentile", "slowest_traces", "service_operation", "error_rate"):
        return "spans"
    if intent == "free_text":
        return "spans" if re.search(r"\b(spans?|traces?)\b", t) and not phrases else "logs"
    if dim_name in ("operation", "method", "region", "version"):
        return "spans"
    if dim_name == "severity":
        return "logs"
    logs, spans = bool(_LOG_WORDS.search(t)), bool(_SPAN_WORDS.search(t))
    if intent == "recent_logs":
        return "spans" if spans and not logs and re.search(r"\b(spans?|traces?)\b", t) else "logs"
    if logs and not spans:
        return "logs"
    if spans and not logs:
        return "spans"
    return "logs" if logs and intent == "error_search" and "exception" in t else "spans"


@dataclass(frozen=True)
class _Ask:
    """What the extractors found in one question: the input of every intent builder."""

    t: str
    source: str
    services: list[str]
    op: str | None
    phrases: list[str]
    window: Window | None
    group_dim: Dimension | None
    threshold: tuple[str, str] | None
    errors_mentioned: bool
    severity: str | None
    where: str
    dim_key: str | None
    dim_label: str | None
    how_many: bool


# An intent builder adds the intent's filters and commands to the builder, returns the explanation
_IntentBuilder = Callable[[_Builder, _Ask], str]


def _build_error_search(b: _Builder, a: _Ask) -> str:
    """Most recent errors, a count of errors, or errors grouped by a dimension."""
    b.filters.append(b.error_filter())
    if a.phrases:
        b.filters.append(_phrase_filter(a.phrases, a.source))
    if a.dim_key:
        b.commands += [f"groupby {a.dim_key} aggregate count() as errors", "orderby errors desc"]
        return f"Errors{a.where}, grouped by {a.dim_label}"
    if a.how_many:
        b.commands.append("count into errors")
        return f"Number of errors{a.where}"
    b.commands += ["orderby $m.timestamp desc", "limit 50"]
    return f"Most recent errors{a.where}"


def _build_latency_percentile(b: _Builder, a: _Ask) -> str:
    """Duration percentiles/avg/max over spans, overall or by a dimension (or by service)."""
    if a.errors_mentioned:
        b.filters.append(b.error_filter())
    aggs, agg_label, first = _latency_aggs(a.t)
    dim_key, dim_label = a.dim_key, a.dim_label
    if not dim_key and len(a.services) > 1:
        dim_key, dim_label = "$l.serviceName", "service"
    if dim_key:
        b.commands += [f"groupby {dim_key} aggregate {aggs}", f"orderby {first} desc"]
        return f"{agg_label} span duration (µs){a.where}, by {dim_label}"
    b.commands.append(f"aggregate {aggs}, count() as spans")
    return f"{agg_label} span duration (µs){a.where}"


def _build_throughput(b: _Builder, a: _Ask) -> str:
    """Counts per time bucket (requests, log lines or errors), optionally split by a dimension."""
    if a.errors_mentioned:
        b.filters.append(b.error_filter())
    bucket = _bucket(a.t, a.window)
    keys = f"roundTime($m.timestamp, {bucket}) as bucket"
    if a.dim_key and a.group_dim and a.group_dim[0] != "trace":
        keys += f", {a.dim_key}"
    noun = "errors" if a.errors_mentioned else ("log lines" if a.source == "logs" else "requests")
    b.commands += [f"groupby {keys} aggregate count() as {_ident(noun)}", "orderby bucket"]
    by = f" and {a.dim_label}" if a.dim_key and "," in keys else ""
    return f"{noun.capitalize()} per {bucket} bucket{by}{a.where}"


def _build_top_n(b: _Builder, a: _Ask) -> str:
    """`top`/`bottom` N of a dimension by duration, error count or volume."""
    t, where, errors = a.t, a.where, a.errors_mentioned
    n = extract_n(t, 5 if re.search(r"\b(slowest|fastest)\b", t) else 10)
    bottom = bool(re.search(r"\b(bottom|fastest|least|fewest|lowest|best|quietest)\b", t))
    dim = noun_dimension(t)
    if dim is None or dim[0] in ("severity", "trace"):
        dim = SERVICE_DIM
    key = _dim_key(dim, b.source)
    if key is None:  # e.g. operations asked of logs: operations only exist on spans
        b.source, key = "spans", dim[1]
        b.filters = [f.replace("$l.subsystemname", "$l.serviceName") for f in b.filters]
    pcts = extract_percentiles(t)
    if re.search(r"\b(slowest|slow|fastest|latency|latencies|longest|duration)\b", t):
        if b.source != "spans":
            b.source, key = "spans", dim[1]
            b.filters = [f.replace("$l.subsystemname", "$l.serviceName") for f in b.filters]
        if pcts:
            q = f"0.{pcts[0]:02d}" if pcts[0] != 999 else "0.999"
            by, metric = f"percentile({q}, $m.duration) as p{pcts[0]}_us", f"p{pcts[0]} duration"
        else:
            by, metric = "avg($m.duration) as avg_duration_us", "average duration"
        if errors:
            b.filters.append(b.error_filter())
    elif errors:
        b.filters.append(b.error_filter())
        by, metric = "count() as errors", "error count"
    else:
        noun = "log_lines" if b.source == "logs" else "requests"
        by, metric = f"count() as {noun}", noun.replace("_", " ")
    kw = "bottom" if bottom else "top"
    b.commands.append(f"{kw} {n} {key} by {by}")
    return f"{kw.capitalize()} {n} {dim[3]}s by {metric}{where}"


def _build_error_rate(b: _Builder, a: _Ask) -> str:
    """Errors / requests over spans, overall (one service) or by a dimension (else service)."""
    dim_key, dim_label = a.dim_key, a.dim_label
    if not dim_key and len(a.services) != 1:
        dim_key, dim_label = "$l.serviceName", "service"
    aggs = f"count_if({SPAN_STATUS} >= 500) as errors, count() as total"
    tail = ["create error_rate from errors / total"]
    if dim_key:
        b.commands += [f"groupby {dim_key} aggregate {aggs}", *tail, "orderby error_rate desc"]
        return f"Error rate (errors / requests){a.where}, by {dim_label}"
    b.commands += [f"aggregate {aggs}", *tail]
    return f"Error rate (errors / requests){a.where}"


def _build_free_text(b: _Builder, a: _Ask) -> str:
    """Lines matching the phrases: the latest, a count, or counts by a dimension."""
    if a.phrases:
        b.filters.append(_phrase_filter(a.phrases, a.source))
    if a.errors_mentioned and a.source == "logs":
        b.filters.append(b.error_filter())
    shown = " or ".join(f"'{p}'" for p in a.phrases) or "the text"
    if a.dim_key:
        b.commands += [f"countby {a.dim_key} into matches", "orderby matches desc"]
        return f"Log lines containing {shown}{a.where}, counted by {a.dim_label}"
    if a.how_many:
        b.commands.append("count into matches")
        return f"Number of log lines containing {shown}{a.where}"
    b.commands += ["orderby $m.timestamp desc", "limit 50"]
    return f"Log lines containing {shown}{a.where}"


def _build_service_operation(b: _Builder, a: _Ask) -> str:
    """The 50 most recent spans of a service/operation, with their key fields."""
    if a.errors_mentioned:
        b.filters.append(b.error_filter())
    b.commands += [
        "orderby $m.timestamp desc",
        "limit 50",
        "choose $m.timestamp, $l.serviceName, $l.operationName, $m.duration as duration_us, "
        f"{SPAN_STATUS} as status_code, $l.traceId",
    ]
    return f"Recent spans{a.where}"


def _build_slowest_traces(b: _Builder, a: _Ask) -> str:
    """The N slowest traces (one span each), longest first."""
    if a.errors_mentioned:
        b.filters.append(b.error_filter())
    n = extract_n(a.t, 10)
    b.commands += [
        "orderby $m.duration desc",
        "dedupeby $l.traceId keep 1",
        f"limit {n}",
        "choose $l.traceId, $l.serviceName, $l.operationName, $m.duration as duration_us, "
        "$m.timestamp",
    ]
    extra = f", {a.threshold[1]}" if a.threshold else ""
    return f"The {n} slowest traces{a.where}{extra}"


def _build_distinct_values(b: _Builder, a: _Ask) -> str:
    """The distinct values of a dimension (service by default), with their row counts."""
    dim = a.group_dim or noun_dimension(a.t) or SERVICE_DIM
    key = _dim_key(dim, a.source) or dim[1]
    if a.source == "logs" and dim[2] is None:
        b.source, key = "spans", dim[1]
        b.filters = [f.replace("$l.subsystemname", "$l.serviceName") for f in b.filters]
    if a.errors_mentioned:
        b.filters.append(b.error_filter())
    # `distinct` keeps only the value, so order by an alias the groupby names
    b.commands += [f"groupby {key} as value aggregate count() as rows", "orderby value"]
    return f"Distinct {dim[3]} values{a.where}"


def _build_count_by(b: _Builder, a: _Ask) -> str:
    """A count of log lines or spans, overall or by a dimension."""
    if a.severity and a.source == "logs":
        b.filters.append(f"$m.severity == {a.severity}")
    kind = "log lines" if a.source == "logs" else "spans"
    if a.dim_key:
        b.commands += [f"countby {a.dim_key} into total", "orderby total desc"]
        return f"Count of {kind}{a.where} by {a.dim_label}"
    b.commands.append("count into total")
    return f"Count of {kind}{a.where}"


def _build_recent_logs(b: _Builder, a: _Ask) -> str:
    """The fallback: the 50 most recent log lines (or spans), scoped by what was recognised."""
    if a.severity and b.source == "logs":
        b.filters.append(f"$m.severity == {a.severity}")
    b.commands += ["orderby $m.timestamp desc", "limit 50"]
    kind = "log lines" if b.source == "logs" else "spans"
    return f"Most recent {kind}{a.where}"


_BUILDERS: dict[str, _IntentBuilder] = {
    "error_search": _build_error_search,
    "latency_percentile": _build_latency_percentile,
    "count_by": _build_count_by,
    "throughput": _build_throughput,
    "top_n": _build_top_n,
    "free_text": _build_free_text,
    "service_operation": _build_service_operation,
    "slowest_traces": _build_slowest_traces,
    "error_rate": _build_error_rate,
    "distinct_values": _build_distinct_values,
    "recent_logs": _build_recent_logs,
}


def _generate(t: str) -> Generated:
    window = extract_window(t)
    services = extract_services(t)
    op = extract_operation(t)
    if op and not services:
        services = [s for s, ops in OPERATIONS.items() if op in ops][:1]
    phrases = extract_phrases(t)
    intent, confidence = _classify(t, phrases=phrases, op=op, services=services)
    group_dim = extract_dimension(t)
    source = _pick_source(t, intent, phrases, group_dim[0] if group_dim else None)
    b = _Builder(t, source)
    if window:
        b.filters.append(window.clause)
    b.add_service_filter(services)
    if op and source == "spans":
        b.filters.append(f"$l.operationName == {_lit(op)}")
    threshold = duration_threshold(t) if source == "spans" else None
    if threshold and intent in ("slowest_traces", "service_operation", "count_by", "top_n"):
        b.filters.append(threshold[0])
    dim_key = _dim_key(group_dim, source)
    ask = _Ask(
        t=t,
        source=source,
        services=services,
        op=op,
        phrases=phrases,
        window=window,
        group_dim=group_dim,
        threshold=threshold,
        errors_mentioned=bool(_ERROR_WORDS.search(t)),
        severity=next((v for k, v in _SEVERITY_WORDS.items() if re.search(rf"\b{k}\b", t)), None),
        where=_where_text(services, op, window),
        dim_key=dim_key,
        dim_label=group_dim[3] if group_dim and dim_key else None,
        how_many=bool(_COUNT_WORDS.search(t)),
    )
    explanation = _BUILDERS[intent](b, ask)
    return Generated(b.text(), intent, confidence, explanation)


def _where_text(services: list[str], op: str | None, window: Window | None) -> str:
    out = ""
    if services:
        out += " from " + ", ".join(services)
    if op:
        out += f" for {op}"
    if window:
        out += " " + ("in the " + window.label if window.label.startswith("last") else window.label)
    return out


def _ident(noun: str) -> str:
    return noun.replace(" ", "_")


def _phrase_filter(phrases: list[str], source: str) -> str:
    # `$d ~~ 'x'` is the documented free-text search over the whole document
    field = "$d.message" if source == "logs" else None
    parts = [f"{field} ~ {_lit(p)}" if field else f"$d ~~ {_lit(p)}" for p in phrases]
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def _latency_aggs(t: str) -> tuple[str, str, str]:
    pcts = extract_percentiles(t)
    aggs: list[str] = []
    labels: list[str] = []
    if re.search(r"\b(average|avg|mean)\b", t):
        aggs.append("avg($m.duration) as avg_us")
        labels.append("Average")
    if re.search(r"\b(max|maximum|worst|peak|highest)\b", t):
        aggs.append("max($m.duration) as max_us")
        labels.append("Max")
    if not pcts and not aggs:
        pcts = [95]
    for p in pcts:
        q = "0.999" if p == 999 else f"0.{p:02d}"
        aggs.insert(len(aggs) if labels else 0, f"percentile({q}, $m.duration) as p{p}_us")
        labels.append(f"p{p}")
    first = aggs[0].rsplit(" as ", 1)[1]
    return ", ".join(aggs), "/".join(labels), first


def _bucket(t: str, window: Window | None) -> str:
    if re.search(r"\b(per second|each second|every second|rps|qps)\b", t):
        return "1s" if window and window.seconds <= 900 else "1m"
    if re.search(r"\b(per minute|each minute|every minute|minutely)\b", t):
        return "1m"
    if re.search(r"\b(per hour|each hour|every hour|hourly)\b", t):
        return "1h"
    if re.search(r"\b(per day|daily|each day)\b", t):
        return "1d"
    if window is None:
        return "1h"
    if window.seconds <= 3600:
        return "1m"
    if window.seconds <= 6 * 3600:
        return "5m"
    return "1h"


@lru_cache(maxsize=4096)
def _generate_cached(normalized: str) -> Generated:
    return _generate(normalized)


def generate(question: str) -> Generated:
    """Turn a plain-language question into a DataPrime query (rule-based)."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string, e.g. 'errors from checkout'")
    normalized = normalize_question(question)
    if not normalized:
        raise ValueError("question has no words to work with")
    return _generate_cached(normalized)
