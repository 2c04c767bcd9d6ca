"""Entity extractors for the plain-language generator (`generator.py`).

A question is normalised (`normalize_question`, also the generator's cache key), then each
extractor pulls out one entity: time window, services, operation, quoted or known phrases,
N, percentiles, group-by dimension, duration threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A group-by dimension: (name, spans keypath, logs keypath or None, label)
Dimension = tuple[str, str, str | None, str]

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
NUM = r"(\d+|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")"
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
    + NUM
    + r"\s*"
    + _UNIT_RE
)
_WINDOW_SINGLE_RE = re.compile(
    r"\b(?:last|past|previous|this)\s+(half hour|minute|hour|day|week|24h)\b"
)
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Window:
    clause: str
    label: str
    seconds: int


def _to_int(token: str) -> int:
    return int(token) if token.isdigit() else _WORD_NUMBERS[token]


def _window(amount: int, unit: str) -> Window:
    if unit == "w":  # DataPrime durations top out at days in our docs; say 7d
        amount, unit = amount * 7, "d"
    if unit == "m" and amount % 60 == 0:
        amount, unit = amount // 60, "h"
    amount = max(amount, 1)
    label = f"last {amount}{unit}"
    return Window(f"$m.timestamp > now() - {amount}{unit}", label, amount * _UNIT_SECONDS[unit])


def extract_window(t: str) -> Window | None:
    if re.search(r"\byesterday\b", t):
        return Window(
            "$m.timestamp >= roundTime(now(), 1d) - 1d && $m.timestamp < roundTime(now(), 1d)",
            "yesterday",
            86400,
        )
    if re.search(r"\b(today|since midnight|so far this day)\b", t):
        return Window("$m.timestamp >= roundTime(now(), 1d)", "today", 86400)
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


def extract_services(t: str) -> list[str]:
    found: list[str] = []
    for m in _SERVICE_RE.finditer(t):
        svc = _SERVICE_ALIASES[m.group(1)]
        if svc not in found:
            found.append(svc)
    if _SEARCH_SERVICE_RE.search(t) and "search" not in found:
        found.append("search")
    return found


_OP_RE = re.compile(r"\b(get|post|put|delete|patch)\s+(/[\w/{}\-.]*)")


def extract_operation(t: str) -> str | None:
    m = _OP_RE.search(t)
    if m:
        return f"{m.group(1).upper()} {m.group(2)}"
    return None


QUOTED_RE = re.compile(r"(?:(?<=\s)|^)'([^']+?)'(?=[\s,?!.]|$)")
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


def extract_phrases(raw_t: str) -> list[str]:
    quoted = [q.strip() for q in QUOTED_RE.findall(raw_t) if q.strip()]
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


def extract_n(t: str, default: int) -> int:
    m = re.search(r"\b(?:top|bottom|first|last)\s+" + NUM + r"\b(?!\s*" + _UNIT_RE + ")", t)
    if not m:
        m = re.search(
            r"\b" + NUM + r"\s+(?:slowest|fastest|busiest|noisiest|worst|best|most|least|longest"
            r"|biggest|largest|slow|heaviest)\b",
            t,
        )
    if m:
        n = _to_int(m.group(1))
        return min(max(n, 1), 1000)
    return default


_PCT_RE = re.compile(r"\bp(50|75|90|95|99|999)\b|\b(50|75|90|95|99)(?:th|st|nd|rd)?[ -]percentile")


def extract_percentiles(t: str) -> list[int]:
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
        "$d.tags['http.response.status_code']",
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
    ("method", r"(?:http )?methods?|verbs?", "$d.tags['http.request.method']", None, "HTTP method"),
    ("region", r"regions?|zones?", "$d.tags.region", None, "region"),
    ("version", r"versions?|releases?", "$d.tags.version", None, "version"),
    ("trace", r"traces?|trace ids?", "$l.traceId", "$d.trace_id", "trace"),
)
SERVICE_DIM: Dimension = ("service", "$l.serviceName", "$l.subsystemname", "service")
_GROUP_PREFIX = (
    r"\b(?:by|per|for each|for every|each|across|broken down by|grouped by|group by|split by|"
    r"breakdown by|break down by|breakdown of|distribution of|"
)


def extract_dimension(t: str, extra_prefix: str = "") -> Dimension | None:
    for name, pattern, span_key, log_key, label in _DIMENSIONS:
        if re.search(
            _GROUP_PREFIX + extra_prefix + r"which|what)\s+(?:the\s+)?(?:" + pattern + r")\b", t
        ):
            return name, span_key, log_key, label
    return None


def noun_dimension(t: str) -> Dimension | None:
    """Dimension named as the subject ("top 5 slowest *operations*")."""
    best: tuple[int, Dimension] | None = None
    for name, pattern, span_key, log_key, label in _DIMENSIONS:
        m = re.search(r"\b(?:" + pattern + r")\b", t)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), (name, span_key, log_key, label))
    return best[1] if best else None


_DURATION_THRESHOLD_RE = re.compile(
    r"(?:slower than|longer than|more than|over|above|exceed(?:s|ing)?|greater than|>)\s*"
    r"(\d+(?:\.\d+)?)\s*(ms|millis(?:econds?)?|milliseconds?|s|secs?|seconds?)\b"
)


def duration_threshold(t: str) -> tuple[str, str] | None:
    m = _DURATION_THRESHOLD_RE.search(t)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    ms = value if unit.startswith("m") else value * 1000
    literal = f"{int(ms)}ms" if ms < 1000 or ms % 1000 else f"{int(ms // 1000)}s"
    # span $m.duration is a number of microseconds, so the threshold is one too
    return f"$m.duration > {int(ms * 1000)}", f"slower than {literal}"
