"""SLO evaluation for a Locust run, free of Locust (unit-testable; `slo.py` feeds it).

Objectives:

- global, from `--slo-p95-ms`, `--slo-p99-ms`, `--slo-fail-ratio`, `--slo-min-rps`: judged on
  all HTTP requests together (the `JOB question→done` row, which measures job completion, is
  left out of the aggregate; give it its own endpoint objective if you want to gate on it);
- per endpoint, from `--slo-endpoint` (repeatable) or the config file, one entry per
  endpoint as Locust names it in its stats ("METHOD NAME"), then `:` and thresholds:

      slo-endpoint = ["POST /api/queries: p95=300 p99=800",
                      "GET /api/queries/[id]: p95=150, fail=0.01",
                      "JOB question→done: p95=5000"]

  Keys: `p50`, `p95`, `p99`, `avg` (ms), `fail` (ratio 0..1), `rps` (minimum req/s).
  Entries may also be separated by `|` in one string. An endpoint objective with no requests
  in the run is reported as skipped, not passed; a run with no requests at all breaches every
  objective (a CI gate must not pass a run that measured nothing).

Exit codes: 3 when any objective is breached; 0 when a fail-ratio objective is configured and
met (the gate accepted those failures); otherwise Locust's own code stands (1 = requests
failed).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EXIT_BREACHED = 3
JOB_METHOD = "JOB"
AGGREGATE = "all requests"

METRICS: dict[str, tuple[str, str, str]] = {
    # key: (label, unit, direction: "max" = actual must be ≤, "min" = actual must be ≥)
    "p50": ("p50", "ms", "max"),
    "p95": ("p95", "ms", "max"),
    "p99": ("p99", "ms", "max"),
    "avg": ("average", "ms", "max"),
    "fail": ("fail ratio", "", "max"),
    "rps": ("throughput", "req/s", "min"),
}
ALIASES = {"fail_ratio": "fail", "failures": "fail", "min_rps": "rps", "average": "avg"}


@dataclass(frozen=True)
class EndpointStats:
    method: str
    name: str
    requests: int
    failures: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    avg: float | None = None
    rps: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}".strip()

    @property
    def fail(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def value(self, metric: str) -> float | None:
        return self.fail if metric == "fail" else getattr(self, metric)


@dataclass(frozen=True)
class Objective:
    metric: str  # a METRICS key
    threshold: float
    endpoint: str | None = None  # "METHOD NAME"; None = all HTTP requests

    @property
    def subject(self) -> str:
        return self.endpoint or AGGREGATE

    def describe(self) -> str:
        label, unit, direction = METRICS[self.metric]
        op = "≤" if direction == "max" else "≥"
        limit = _fmt(self.threshold, self.metric) + (unit and " " + unit)
        return f"{label} {op} {limit} ({self.subject})"


@dataclass(frozen=True)
class Verdict:
    objective: Objective
    actual: float | None
    passed: bool
    skipped: bool = False

    @property
    def breached(self) -> bool:
        return not self.passed and not self.skipped

    @property
    def message(self) -> str:
        o = self.objective
        label, unit, direction = METRICS[o.metric]
        if self.skipped:
            return f"{o.subject}: no requests, {label} not measured"
        if self.actual is None:
            return f"SLO breached: the run made no requests, {label} of {o.subject} not measured"
        actual = _fmt(self.actual, o.metric) + (unit and " " + unit)
        limit = _fmt(o.threshold, o.metric) + (unit and " " + unit)
        if self.passed:
            return f"{label} of {o.subject} was {actual} (SLO {limit})"
        op = ">" if direction == "max" else "<"
        return f"SLO breached: {label} of {o.subject} was {actual} {op} {limit}"


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "n/a"
    if metric == "fail":
        return f"{value:.2%}"
    return f"{value:.1f}" if metric == "rps" else f"{value:.0f}"


# ---- parsing -------------------------------------------------------------------------------
_PAIR = re.compile(r"([A-Za-z_0-9]+)\s*=\s*([0-9.]+%?)")


def parse_endpoint_slos(entries: Iterable[str] | str | None) -> list[Objective]:
    """`["POST /api/queries: p95=300 fail=0.01", ...]` → objectives (see the module doc)."""
    if entries is None:
        return []
    if isinstance(entries, str):
        entries = [entries]
    objectives: list[Objective] = []
    for chunk in (c for entry in entries for c in re.split(r"\s*\|\s*|\n", entry)):
        chunk = chunk.strip().strip(",")
        if not chunk:
            continue
        endpoint, sep, spec = chunk.rpartition(":")
        endpoint = " ".join(endpoint.split())
        if not sep or not endpoint or " " not in endpoint:
            raise ValueError(f"SLO entry {chunk!r}: expected 'METHOD NAME: p95=300, fail=0.01'")
        pairs = _PAIR.findall(spec)
        leftover = _PAIR.sub("", spec).replace(",", " ").strip()
        if not pairs or leftover:
            raise ValueError(f"SLO entry {chunk!r}: cannot read thresholds {spec.strip()!r}")
        for key, raw in pairs:
            metric = ALIASES.get(key.lower(), key.lower())
            if metric not in METRICS:
                raise ValueError(
                    f"SLO entry {chunk!r}: unknown metric {key!r} (use {', '.join(METRICS)})"
                )
            value = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
            objectives.append(Objective(metric, value, endpoint))
    return objectives


def global_objectives(
    p95_ms: float | None = None,
    p99_ms: float | None = None,
    fail_ratio: float | None = None,
    min_rps: float | None = None,
) -> list[Objective]:
    pairs = (("p95", p95_ms), ("p99", p99_ms), ("fail", fail_ratio), ("rps", min_rps))
    return [Objective(metric, float(v)) for metric, v in pairs if v is not None]


# ---- evaluation ----------------------------------------------------------------------------
def evaluate(
    objectives: Sequence[Objective],
    endpoints: Sequence[EndpointStats],
    aggregate: EndpointStats | None,
) -> list[Verdict]:
    by_key = {e.key: e for e in endpoints}
    silent = aggregate is None or aggregate.requests == 0
    verdicts = []
    for o in objectives:
        stats = aggregate if o.endpoint is None else by_key.get(o.endpoint)
        if stats is None or stats.requests == 0:
            # Nothing measured. A throughput floor is plainly breached; with no traffic at all,
            # so is everything else (the run tested nothing); one quiet endpoint is skipped.
            if o.metric == "rps" and o.threshold > 0:
                verdicts.append(Verdict(o, 0.0, False))
            else:
                verdicts.append(Verdict(o, None, False, skipped=not silent))
            continue
        actual = stats.value(o.metric)
        if actual is None:
            verdicts.append(Verdict(o, None, False, skipped=True))
            continue
        direction = METRICS[o.metric][2]
        ok = actual <= o.threshold if direction == "max" else actual >= o.threshold
        verdicts.append(Verdict(o, actual, ok))
    return verdicts


def exit_code(verdicts: Sequence[Verdict]) -> int | None:
    """3 on any breach; 0 when a fail-ratio objective accepted the run; else None (Locust's)."""
    if any(v.breached for v in verdicts):
        return EXIT_BREACHED
    if any(v.objective.metric == "fail" and v.passed for v in verdicts):
        return 0
    return None


# ---- reports -------------------------------------------------------------------------------
def junit_xml(suite: str, verdicts: Sequence[Verdict], elapsed: float = 0.0) -> str:
    """One testcase per objective; a breach is a <failure> whose message names it."""
    root = ET.Element(
        "testsuites",
        name="slo",
        tests=str(len(verdicts)),
        failures=str(sum(v.breached for v in verdicts)),
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=f"slo.{suite}",
        tests=str(len(verdicts)),
        failures=str(sum(v.breached for v in verdicts)),
        errors="0",
        skipped=str(sum(v.skipped for v in verdicts)),
        time=f"{elapsed:.3f}",
    )
    for v in verdicts:
        case = ET.SubElement(
            ts, "testcase", classname=f"slo.{suite}", name=v.objective.describe(), time="0"
        )
        if v.breached:
            failure = ET.SubElement(case, "failure", message=v.message, type="SLOBreached")
            failure.text = v.message
        elif v.skipped:
            ET.SubElement(case, "skipped", message=v.message)
        else:
            ET.SubElement(case, "system-out").text = v.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def verdict_rows(verdicts: Sequence[Verdict]) -> list[tuple[str, str, str, str]]:
    """(objective, actual, threshold, verdict) per objective, for any table renderer."""
    rows = []
    for v in verdicts:
        o = v.objective
        label, unit, _ = METRICS[o.metric]
        status = "SKIPPED" if v.skipped else ("PASS" if v.passed else "BREACHED")
        rows.append(
            (
                f"{label} · {o.subject}",
                _fmt(v.actual, o.metric) + (unit and v.actual is not None and " " + unit or ""),
                o.describe().split(" (")[0],
                status,
            )
        )
    return rows


def plain_table(verdicts: Sequence[Verdict]) -> str:
    rows = [("objective", "actual", "SLO", "verdict"), *verdict_rows(verdicts)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
