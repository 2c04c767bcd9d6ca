"""Rule-based plain language -> DataPrime generation.

The question is normalised, then small extractors pull out the entities
(time window, services, operation, quoted phrases, N, percentiles, group-by
dimension, error flavour) and an ordered list of intent rules picks the query
shape. Every template is built from validated pieces, and the test-suite runs
the whole scenarios/questions.txt corpus through `validate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..dataset import OPERATIONS

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


# ---------------------------------------------------------------- normalise

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": "'", "\u201d": "'", '"': "'"})


def normalize_question(question: str) -> str:
    """Lowercase, unify quotes, fold punctuation and whitespace (a cache key)."""
    s = question.lower().translate(_QUOTES)
    s = re.sub(r"[^\w\s'/\-.%{}>]", " ", s)  # keep: quotes, routes, ranges, 99.9
    s = re.sub(r"\.(?!\d)", " ", s)  # sentence dots, not decimals
    s = re.sub(r"(?<!\w)-+|-+(?!\w)", " ", s)  # dashes that are not inside a word
    return " ".join(s.split())


# --------------------------------------------------------------- extractors

_WORD_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty five": 45,
    "sixty": 60,
}
_NUM = r"(\d+|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")"
_UNIT = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "w": "w",
    "week": "w",
    "weeks": "w",
}
_UNIT_RE = "(" + "|".join(sorted(_UNIT, key=len, reverse=True)) + r")\b"
_WINDOW_RE = re.compile(
    r"\b(?:last|past|previous|recent|within|over|in)\s+(?:the\s+)?(?:last\s+|past\s+)?"
    + _NUM
    + r"\s*"
    + _UNIT_RE
)
_WINDOW_SINGLE_RE = re.compile(
    r"\b(?:last|past|previous|this)\s+(half hour|minute|hour|day|week|24h)\b"
)
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class _Window:
    clause: str
    label: str
    seconds: int


def _to_int(token: str) -> int:
    return int(token) if token.isdigit() else _WORD_NUMBERS[token]


def _window(amount: int, unit: str) -> _Window:
    if unit == "w":  # DataPrime durations top out at days in our docs; say 7d
        amount, unit = amount * 7, "d"
    if unit == "m" and amount % 60 == 0:
        amount, unit = amount // 60, "h"
    amount = max(amount, 1)
    label = f"last {amount}{unit}"
    return _Window(f"$m.timestamp > now() - {amount}{unit}", label, amount * _UNIT_SECONDS[unit])


def _extract_window(t: str) -> _Window | None:
    if re.search(r"\byesterday\b", t):
        return _Window(
            "$m.timestamp >= roundTime(now(), 1d) - 1d && $m.timestamp < roundTime(now(), 1d)",
            "yesterday",
            86400,
        )
    if re.search(r"\b(today|since midnight|so far this day)\b", t):
        return _Window("$m.timestamp >= roundTime(now(), 1d)", "today", 86400)
    m = _WINDOW_RE.search(t)
    if m:
        return _window(_to_int(m.group(1)), _UNIT[m.group(2)])
    m = _WINDOW_SINGLE_RE.search(t)
    if m:
        word = m.group(1)
        if word == "half hour":
            return _window(30, "m")
        if word == "24h":
            return _window(24, "h")
        return _window(1, _UNIT[word])
    m = re.search(r"\b(\d+)\s*" + _UNIT_RE + r"\s+ago\b", t)
    if m:
        return _window(int(m.group(1)), _UNIT[m.group(2)])
    if re.search(r"\b(right now|just now|currently|at the moment)\b", t):
        return _window(5, "m")
    return None


_SERVICE_ALIASES: dict[str, str] = {
    "checkout": "checkout",
    "check out": "checkout",
    "payment": "payment",
    "payments": "payment",
    "billing": "payment",
    "cart": "cart",
    "carts": "cart",
    "shopping cart": "cart",
    "basket": "cart",
    "frontend": "frontend",
    "front end": "frontend",
    "front-end": "frontend",
    "web frontend": "frontend",
    "storefront": "frontend",
    "auth": "auth",
    "authentication": "auth",
    "login": "auth",
    "identity": "auth",
    "inventory": "inventory",
    "stock": "inventory",
    "shipping": "shipping",
    "shipments": "shipping",
    "delivery": "shipping",
    "recommendation": "recommendation",
    "recommendations": "recommendation",
    "recommender": "recommendation",
    "recs": "recommendation",
    "email": "email",
    "emails": "email",
    "mailer": "email",
    "notification": "email",
    "notifications": "email",
}
_SERVICE_RE = re.compile(
    r"\b("
    + "|".join(re.escape(a) for a in sorted(_SERVICE_ALIASES, key=len, reverse=True))
    + r")(?:[-_ ](?:service|svc|api|app))?\b"
)
# "search" is usually a verb ("search logs for ...") so only the explicit forms count
_SEARCH_SERVICE_RE = re.compile(
    r"\bsearch[-_ ](?:service|svc|api|app)\b"
    r"|\b(?:from|of|in|on|for|the)\s+search\b(?!\s+(?:for|logs))"
)


def _extract_services(t: str) -> list[str]:
    found: list[str] = []
    for m in _SERVICE_RE.finditer(t):
        svc = _SERVICE_ALIASES[m.group(1)]
        if svc not in found:
            found.append(svc)
    if _SEARCH_SERVICE_RE.search(t) and "search" not in found:
        found.append("search")
    return found


_OP_RE = re.compile(r"\b(get|post|put|delete|patch)\s+(/[\w/{}\-.]*)")


def _extract_operation(t: str) -> str | None:
    m = _OP_RE.search(t)
    if m:
        return f"{m.group(1).upper()} {m.group(2)}"
    return None


_QUOTED_RE = re.compile(r"(?:(?<=\s)|^)'([^']+?)'(?=[\s,?!.]|$)")
_KNOWN_PHRASES = (
    "connection refused",
    "connection reset",
    "timeout",
    "timed out",
    "deadlock",
    "out of memory",
    "insufficient funds",
    "nullpointerexception",
    "circuit breaker",
    "rate limit",
    "tls handshake",
    "pool exhausted",
    "signature expired",
    "cache miss",
    "cache hit",
    "retrying",
    "deprecated",
    "service unavailable",
    "invalid token",
    "memory",
)
_TEXT_VERB_RE = re.compile(
    r"\b(?:containing|contains|contain|mentioning|mentions|mention|matching|saying|"
    r"with the (?:word|text|phrase|message)|with message|grep(?: for)?|search(?:ing)? for|"
    r"look(?:ing)? for|find)\s+(?:the\s+)?(?:word\s+|text\s+|phrase\s+)?([a-z0-9_][\w\-.:]*)"
)
_TEXT_STOP = {"logs", "log", "errors", "error", "all", "any", "messages", "lines", "entries"}


def _extract_phrases(raw_t: str) -> list[str]:
    quoted = [q.strip() for q in _QUOTED_RE.findall(raw_t) if q.strip()]
    if quoted:
        return quoted
    found = [p for p in _KNOWN_PHRASES if re.search(r"\b" + re.escape(p) + r"\b", raw_t)]
    # "memory" is only a fallback when nothing more specific matched
    if len(found) > 1 and "memory" in found:
        found.remove("memory")
    if "timed out" in found and "timeout" in found:
        found.remove("timed out")
    if found:
        return found[:3]
    m = _TEXT_VERB_RE.search(raw_t)
    if m and m.group(1) not in _TEXT_STOP and m.group(1) not in _SERVICE_ALIASES:
        return [m.group(1)]
    return []


def _extract_n(t: str, default: int) -> int:
    m = re.search(r"\b(?:top|bottom|first|last)\s+" + _NUM + r"\b(?!\s*" + _UNIT_RE + ")", t)
    if not m:
        m = re.search(
            r"\b" + _NUM + r"\s+(?:slowest|fastest|busiest|noisiest|worst|best|most|least|longest"
            r"|biggest|largest|slow|heaviest)\b",
            t,
        )
    if m:
        n = _to_int(m.group(1))
        return min(max(n, 1), 1000)
    return default


_PCT_RE = re.compile(r"\bp(50|75|90|95|99|999)\b|\b(50|75|90|95|99)(?:th|st|nd|rd)?[ -]percentile")


def _extract_percentiles(t: str) -> list[int]:
    out: list[int] = []
    for a, b in _PCT_RE.findall(t):
        p = int(a or b)
        if p not in out:
            out.append(p)
    if re.search(r"\bmedian\b", t) and 50 not in out:
        out.insert(0, 50)
    return out


# dimension name -> (regex, spans keypath, logs keypath or None, label)
_DIMENSIONS: tuple[tuple[str, str, str, str | None, str], ...] = (
    (
        "status",
        r"(?:http )?(?:status(?: codes?)?|response codes?|codes?)",
        "$d.http.status_code",
        "$d.status_code",
        "status code",
    ),
    (
        "operation",
        r"operations?|endpoints?|routes?|apis?|handlers?",
        "$l.operationName",
        None,
        "operation",
    ),
    (
        "service",
        r"services?|apps?|applications?|microservices?|subsystems?",
        "$l.serviceName",
        "$l.subsystemname",
        "service",
    ),
    ("severity", r"severity|severities|(?:log )?levels?", "$m.severity", "$m.severity", "severity"),
    ("method", r"(?:http )?methods?|verbs?", "$d.http.method", None, "HTTP method"),
    ("region", r"regions?|zones?", "$d.tags.region", None, "region"),
    ("version", r"versions?|releases?", "$d.tags.version", None, "version"),
    ("trace", r"traces?|trace ids?", "$d.trace_id", "$d.trace_id", "trace"),
)
_SERVICE_DIM = ("service", "$l.serviceName", "$l.subsystemname", "service")
_GROUP_PREFIX = (
    r"\b(?:by|per|for each|for every|each|across|broken down by|grouped by|group by|split by|"
    r"breakdown by|break down by|breakdown of|distribution of|"
)


def _extract_dimension(t: str, extra_prefix: str = "") -> tuple[str, str, str | None, str] | None:
    for name, pattern, span_key, log_key, label in _DIMENSIONS:
        if re.search(
            _GROUP_PREFIX + extra_prefix + r"which|what)\s+(?:the\s+)?(?:" + pattern + r")\b", t
        ):
            return name, span_key, log_key, label
    return None


def _noun_dimension(t: str) -> tuple[str, str, str | None, str] | None:
    """Dimension named as the subject ("top 5 slowest *operations*")."""
    best: tuple[int, tuple[str, str, str | None, str]] | None = None
    for name, pattern, span_key, log_key, label in _DIMENSIONS:
        m = re.search(r"\b(?:" + pattern + r")\b", t)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), (name, span_key, log_key, label))
    return best[1] if best else None


_DURATION_THRESHOLD_RE = re.compile(
    r"(?:slower than|longer than|more than|over|above|exceed(?:s|ing)?|greater than|>)\s*"
    r"(\d+(?:\.\d+)?)\s*(ms|millis(?:econds?)?|milliseconds?|s|secs?|seconds?)\b"
)


def _duration_threshold(t: str) -> tuple[str, str] | None:
    m = _DURATION_THRESHOLD_RE.search(t)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    ms = value if unit.startswith("m") else value * 1000
    literal = f"{int(ms)}ms" if ms < 1000 or ms % 1000 else f"{int(ms // 1000)}s"
    return f"$m.duration > {literal}", f"slower than {literal}"


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
        re.search(r"\b(top|bottom)\s+" + _NUM + r"\b", t)
        or re.search(r"\btop\s+(services?|operations?|endpoints?|routes?|status)", t)
        or re.search(
            _NUM + r"\s+(slowest|fastest|busiest|noisiest|worst|best|most|least|heaviest)\b", t
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
    pcts = _extract_percentiles(t)
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
    if phrases and (_FREE_TEXT_RE.search(t) or _QUOTED_RE.search(t) or _LOG_WORDS.search(t)):
        return "free_text", 0.9
    if _ERROR_WORDS.search(t):
        return "error_search", 0.9
    if _DISTINCT_RE.search(t):
        return "distinct_values", 0.85
    if _COUNT_BY_RE.search(t) and (_extract_dimension(t) or _COUNT_WORDS.search(t)):
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
        status_key = "$d.http.status_code" if self.source == "spans" else "$d.status_code"
        code = re.search(r"\b([45]0\d)s?\b(?!\s*(?:ms|s\b|milli|sec))", t)
        if code:
            return f"{status_key} == {code.group(1)}"
        if re.search(r"\b(5xx|server errors?|500s)\b", t):
            return f"{status_key} >= 500"
        if re.search(r"\b(4xx|client errors?|bad requests?)\b", t):
            return f"{status_key} >= 400 && {status_key} < 500"
        if self.source == "logs":
            if re.search(r"\b(critical|fatal)\b", t):
                return "$m.severity == 'CRITICAL'"
            return "$m.severity == 'ERROR' || $m.severity == 'CRITICAL'"
        return "$d.error == true"

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


def _dim_key(dim: tuple[str, str, str | None, str] | None, source: str) -> str | None:
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


def _generate(t: str) -> Generated:
    window = _extract_window(t)
    services = _extract_services(t)
    op = _extract_operation(t)
    if op and not services:
        services = [s for s, ops in OPERATIONS.items() if op in ops][:1]
    phrases = _extract_phrases(t)
    intent, confidence = _classify(t, phrases=phrases, op=op, services=services)
    group_dim = _extract_dimension(t)
    source = _pick_source(t, intent, phrases, group_dim[0] if group_dim else None)
    b = _Builder(t, source)
    if window:
        b.filters.append(window.clause)
    b.add_service_filter(services)
    if op and source == "spans":
        b.filters.append(f"$l.operationName == {_lit(op)}")
    threshold = _duration_threshold(t) if source == "spans" else None
    if threshold and intent in ("slowest_traces", "service_operation", "count_by", "top_n"):
        b.filters.append(threshold[0])
    errors_mentioned = bool(_ERROR_WORDS.search(t))
    severity = next((v for k, v in _SEVERITY_WORDS.items() if re.search(rf"\b{k}\b", t)), None)

    where = _where_text(services, op, window)
    dim_key = _dim_key(group_dim, source)
    dim_label = group_dim[3] if group_dim and dim_key else None
    how_many = bool(_COUNT_WORDS.search(t))

    if intent == "error_search":
        b.filters.append(b.error_filter())
        if phrases:
            b.filters.append(_phrase_filter(phrases, source))
        if dim_key:
            b.commands += [f"groupby {dim_key} aggregate count() as errors", "orderby errors desc"]
            expl = f"Errors{where}, grouped by {dim_label}"
        elif how_many:
            b.commands.append("count into errors")
            expl = f"Number of errors{where}"
        else:
            b.commands += ["orderby $m.timestamp desc", "limit 50"]
            expl = f"Most recent errors{where}"
    elif intent == "latency_percentile":
        if errors_mentioned:
            b.filters.append(b.error_filter())
        aggs, agg_label, first = _latency_aggs(t)
        if not dim_key and len(services) > 1:
            dim_key, dim_label = "$l.serviceName", "service"
        if dim_key:
            b.commands += [f"groupby {dim_key} aggregate {aggs}", f"orderby {first} desc"]
            expl = f"{agg_label} span duration (µs){where}, by {dim_label}"
        else:
            b.commands.append(f"aggregate {aggs}, count() as spans")
            expl = f"{agg_label} span duration (µs){where}"
    elif intent == "throughput":
        if errors_mentioned:
            b.filters.append(b.error_filter())
        bucket = _bucket(t, window)
        keys = f"roundTime($m.timestamp, {bucket}) as bucket"
        if dim_key and group_dim and group_dim[0] != "trace":
            keys += f", {dim_key}"
        noun = "errors" if errors_mentioned else ("log lines" if source == "logs" else "requests")
        b.commands += [f"groupby {keys} aggregate count() as {_ident(noun)}", "orderby bucket"]
        by = f" and {dim_label}" if dim_key and "," in keys else ""
        expl = f"{noun.capitalize()} per {bucket} bucket{by}{where}"
    elif intent == "top_n":
        expl = _top_n(b, t, services, where, errors_mentioned)
    elif intent == "error_rate":
        if not dim_key and len(services) != 1:
            dim_key, dim_label = "$l.serviceName", "service"
        aggs = "count_if($d.error == true) as errors, count() as total"
        tail = ["create error_rate from errors / total"]
        if dim_key:
            b.commands += [f"groupby {dim_key} aggregate {aggs}", *tail, "orderby error_rate desc"]
            expl = f"Error rate (errors / requests){where}, by {dim_label}"
        else:
            b.commands += [f"aggregate {aggs}", *tail]
            expl = f"Error rate (errors / requests){where}"
    elif intent == "free_text":
        if phrases:
            b.filters.append(_phrase_filter(phrases, source))
        if errors_mentioned and source == "logs":
            b.filters.append(b.error_filter())
        shown = " or ".join(f"'{p}'" for p in phrases) or "the text"
        if dim_key:
            b.commands += [f"countby {dim_key} into matches", "orderby matches desc"]
            expl = f"Log lines containing {shown}{where}, counted by {dim_label}"
        elif how_many:
            b.commands.append("count into matches")
            expl = f"Number of log lines containing {shown}{where}"
        else:
            b.commands += ["orderby $m.timestamp desc", "limit 50"]
            expl = f"Log lines containing {shown}{where}"
    elif intent == "service_operation":
        if errors_mentioned:
            b.filters.append(b.error_filter())
        b.commands += [
            "orderby $m.timestamp desc",
            "limit 50",
            "choose $m.timestamp, $l.serviceName, $l.operationName, $m.duration as duration_us, "
            "$d.http.status_code, $d.trace_id",
        ]
        expl = f"Recent spans{where}"
    elif intent == "slowest_traces":
        if errors_mentioned:
            b.filters.append(b.error_filter())
        n = _extract_n(t, 10)
        b.commands += [
            "orderby $m.duration desc",
            "dedupeby $d.trace_id keep 1",
            f"limit {n}",
            "choose $d.trace_id, $l.serviceName, $l.operationName, $m.duration as duration_us, "
            "$m.timestamp",
        ]
        extra = f", {threshold[1]}" if threshold else ""
        expl = f"The {n} slowest traces{where}{extra}"
    elif intent == "distinct_values":
        dim = group_dim or _noun_dimension(t) or _SERVICE_DIM
        key = _dim_key(dim, source) or dim[1]
        if source == "logs" and dim[2] is None:
            b.source, key = "spans", dim[1]
            b.filters = [f.replace("$l.subsystemname", "$l.serviceName") for f in b.filters]
        if errors_mentioned:
            b.filters.append(b.error_filter())
        b.commands += [f"distinct {key}", f"orderby {key}"]
        expl = f"Distinct {dim[3]} values{where}"
    elif intent == "count_by":
        if severity and source == "logs":
            b.filters.append(f"$m.severity == '{severity}'")
        if dim_key:
            b.commands += [f"countby {dim_key} into total", "orderby total desc"]
            expl = f"Count of {'log lines' if source == 'logs' else 'spans'}{where} by {dim_label}"
        else:
            b.commands.append("count into total")
            expl = f"Count of {'log lines' if source == 'logs' else 'spans'}{where}"
    else:  # recent_logs fallback
        if severity and b.source == "logs":
            b.filters.append(f"$m.severity == '{severity}'")
        b.commands += ["orderby $m.timestamp desc", "limit 50"]
        kind = "log lines" if b.source == "logs" else "spans"
        expl = f"Most recent {kind}{where}"
    return Generated(b.text(), intent, confidence, expl)


def _where_text(services: list[str], op: str | None, window: _Window | None) -> str:
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
    field = "$d.message" if source == "logs" else None
    parts = [f"{field} ~ {_lit(p)}" if field else f"~ {_lit(p)}" for p in phrases]
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def _latency_aggs(t: str) -> tuple[str, str, str]:
    pcts = _extract_percentiles(t)
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


def _bucket(t: str, window: _Window | None) -> str:
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


def _top_n(b: _Builder, t: str, services: list[str], where: str, errors: bool) -> str:
    n = _extract_n(t, 5 if re.search(r"\b(slowest|fastest)\b", t) else 10)
    bottom = bool(re.search(r"\b(bottom|fastest|least|fewest|lowest|best|quietest)\b", t))
    dim = _noun_dimension(t)
    if dim is None or dim[0] in ("severity", "trace"):
        dim = _SERVICE_DIM
    key = _dim_key(dim, b.source)
    if key is None:  # e.g. operations asked of logs: operations only exist on spans
        b.source, key = "spans", dim[1]
        b.filters = [f.replace("$l.subsystemname", "$l.serviceName") for f in b.filters]
    pcts = _extract_percentiles(t)
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
