"""Checking a learner's answers: what the data says (``observe``), the verdict (``check``)
and the lab's own ground truth (``solution``).

The data is Coralogix when the lab is online — the DataPrime query API, or the Metrics API
for host-metric questions, with the attendee's own key or through the room gateway's
check proxy — else the local telemetry files: the same question, the same verdict.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labs.runtime import checks
from labs.runtime.checks import CheckContext, NoData, Window
from labs.runtime.spec import Question
from labs.runtime.views import show
from stack.client import Gateway
from stack.common.dataprime_client import dig
from stack.common.settings import ServiceName
from stack.native.config import NativeConfig

if TYPE_CHECKING:
    from labs.runtime.lab import Lab

FLUSH_TIMEOUT_S = float(os.environ.get("LAB_FLUSH_TIMEOUT", "20"))


# ------------------------------------------------------------------------------ verdicts


@dataclass
class Verdict:
    question: str
    correct: bool
    message: str
    answer: Any = None
    observed: Any = None  # what the data said (not shown to the learner on a wrong answer)
    source: str = "local telemetry"

    def __str__(self) -> str:
        mark = "✅ correct" if self.correct else "❌ not correct"
        return f"{mark} — {self.message} (checked against {self.source})"

    def __bool__(self) -> bool:
        return self.correct

    def _repr_markdown_(self) -> str:
        colour = "green" if self.correct else "crimson"
        mark = "✅ **Correct**" if self.correct else "❌ **Not correct**"
        return (
            f"<span style='color:{colour}'>{mark}</span> — {self.message}  \n"
            f"<small>checked against {self.source}</small>"
        )


def _norm(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value).strip().lower().strip("`'\""))


def _service_name(value: Any) -> str:
    v = _norm(value).replace(" ", "-")
    names = {s.value for s in ServiceName}
    if v in names:
        return v
    for cand in (f"{v}-service", v.removesuffix("-service")):
        if cand in names:
            return cand
    return v


def compare(question: Question, answer: Any, observed: Any) -> bool:
    kind = question.answer.type
    if isinstance(observed, list | tuple | set):
        given = answer if isinstance(answer, list | tuple | set) else str(answer).split(",")
        return {_norm(a) for a in given if _norm(a)} == {_norm(o) for o in observed}
    if kind == "number":
        try:
            a, o = float(answer), float(observed)
        except (TypeError, ValueError):
            return False
        return abs(a - o) <= max(question.answer.abs_tolerance, question.answer.tolerance * abs(o))
    if kind == "service":
        return _service_name(answer) == _service_name(observed)
    return _norm(answer) == _norm(observed)


def classify(c: Any, row: Mapping[str, Any]) -> str:
    """A spec's ``classify`` applied to the first row a query returned."""
    for rule in c.rules:
        value = dig(row, rule.field)
        if value is None:
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if (rule.min is None or v >= rule.min) and (rule.max is None or v < rule.max):
            return str(rule.answer)
    if all(dig(row, r.field) is None for r in c.rules):
        raise NoData(f"Coralogix returned none of {[r.field for r in c.rules]}")
    return str(c.otherwise)


# ------------------------------------------------------------------------------ the data


def windows(lab: Lab) -> dict[str, Window]:
    """The run's windows in ns: all of it, the baseline before the first fault, the fault."""
    st = lab.state
    if st.traffic_start is None:
        raise NoData("this lab has not run yet: lab.run() first")
    end = st.traffic_end or (lab.traffic.ended_at if lab.traffic else None) or time.time()
    ns = lambda t: int(t * 1e9)  # noqa: E731
    all_w = Window(ns(st.traffic_start), ns(end + 2))
    starts = [f.start for f in st.faults if f.start]
    if not starts:
        return {"all": all_w, "baseline": all_w, "fault": all_w}
    ends = [f.end or end for f in st.faults if f.start]
    return {
        "all": all_w,
        "baseline": Window(ns(st.traffic_start), ns(min(starts))),
        "fault": Window(ns(min(starts)), ns(max(ends) + 1)),
    }


def context(lab: Lab) -> CheckContext:
    from labs.telemetry import load_metrics, load_spans

    return CheckContext(
        spans=load_spans(lab.telemetry_dir),
        metrics=load_metrics(lab.telemetry_dir),
        windows=lab.windows(),
        attendees=list(lab.state.attendees),
    )


def flushed(lab: Lab) -> bool:
    """Has telemetry from the end of the run reached the files?"""
    from labs.telemetry import iter_spans

    end = lab.state.traffic_end
    if end is None:
        return True
    mark = int((end - 1.5) * 1e9)
    return any(s.start_ns >= mark for s in iter_spans(lab.telemetry_dir))


def observe(lab: Lab, qid: str, *, timeout: float | None = None) -> tuple[Any, str]:
    """What the data says the answer to ``qid`` is, and where it was checked."""
    q = lab.spec.question(qid)
    if lab.traffic and lab.traffic.running:
        lab.wait()
    if lab.online:
        api = "Metrics API" if q.metrics is not None else "DataPrime query API"
        via = " via the room's gateway" if lab.online_via == "gateway" else ""
        return observe_coralogix(lab, q), f"Coralogix ({api}{via})"
    timeout = FLUSH_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not flushed(lab) and time.monotonic() < deadline:
        time.sleep(0.5)
    fn = checks.CHECKS[q.local.check]
    while True:
        # One read of the files serves every question of a finished run.
        key = (lab.state.traffic_start, lab.state.traffic_end)
        if lab._ctx is None or lab._ctx[0] != key:
            lab._ctx = (key, lab.context())
        try:
            return fn(lab._ctx[1], **q.local.args), "local telemetry"
        except NoData:
            lab._ctx = None
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


# ------------------------------------------------------------------------------ Coralogix


def _room_gateway(lab: Lab) -> Gateway:
    """The room gateway's check proxy runs the query with the room's key, as this attendee."""
    return Gateway(lab.gateway_url, attendee=lab.attendee, timeout=60)


def dataprime_rows(lab: Lab, query: str, start: float, end: float) -> list[dict[str, Any]]:
    if lab.online_via == "gateway":
        answer = _room_gateway(lab).room_check(api="dataprime", query=query, start=start, end=end)
        return list(answer.get("rows", []))
    from stack.common.dataprime_client import DataPrimeClient

    env = dict(lab.env)
    env.setdefault("REDIS_URL", redis_url(lab))
    client = DataPrimeClient.from_env(env, on_wait=show_checking)
    return client.query(query, start=start, end=end).rows


def metric_series(lab: Lab, query: str, start: float, end: float) -> list[dict[str, Any]]:
    if lab.online_via == "gateway":
        answer = _room_gateway(lab).room_check(
            api="metrics", query=query, start=start, end=end, step_s=5
        )
        return list(answer.get("series", []))
    from stack.common.metrics_client import MetricsClient

    return MetricsClient.from_env(lab.env).query_range(query, start=start, end=end, step_s=5)


def observe_coralogix(lab: Lab, q: Question) -> Any:
    if q.metrics is not None:
        return observe_metrics(lab, q)
    dp = q.dataprime
    assert dp is not None
    w = lab.windows()[dp.window]
    query = dp.query.replace("{attendee}", lab.attendee)
    rows = dataprime_rows(lab, query, w.start_ns / 1e9, w.end_ns / 1e9)
    if dp.all_rows:
        return [r.get(dp.field) for r in rows if r.get(dp.field)]
    if not rows:
        raise NoData(f"Coralogix returned no rows for {q.id} (data may take a minute to arrive)")
    if dp.classify is not None:
        return classify(dp.classify, rows[0])
    value = dig(rows[0], dp.field)
    if value is None:
        raise NoData(f"Coralogix returned no `{dp.field}` for {q.id}")
    if q.answer.type == "number":
        value = float(value) * dp.scale
    return value


def redis_url(lab: Lab) -> str:
    """The stack's Redis: the room-wide DataPrime limiter and cache live there."""
    return lab.env.get("REDIS_URL") or NativeConfig.from_env(lab.env).redis_url


def show_checking(delay: float) -> None:
    """The room's 30 queries/minute are used: say so instead of looking stuck."""
    show(
        f"checking… queued behind the room's DataPrime queries (≈{delay:.0f} s, "
        "30 queries/minute per key)"
    )


def observe_metrics(lab: Lab, q: Question) -> str:
    """Which candidate host metric rose from the baseline to the fault window."""
    from stack.common.metrics_client import mean_of

    m = q.metrics
    assert m is not None
    ws = lab.windows()
    base, fault = ws["baseline"], ws["fault"]
    if base.start_ns == fault.start_ns:
        raise NoData("no fault window yet: the lab's fault has not run")
    base = checks.settled(base)  # the local check's rule: start-up is not the baseline
    best: tuple[float, str] | None = None
    for name, promql in m.candidates.items():
        before = mean_of(metric_series(lab, promql, base.start_ns / 1e9, base.end_ns / 1e9))
        during = mean_of(metric_series(lab, promql, fault.start_ns / 1e9, fault.end_ns / 1e9))
        if before is None or during is None or before <= 0:
            continue
        ratio = during / before
        if ratio >= m.min_ratio and (best is None or ratio > best[0]):
            best = (ratio, name)
    if best is None:
        raise NoData(
            f"none of {list(m.candidates)} rose by ×{m.min_ratio} during your fault window"
        )
    return best[1]


# ------------------------------------------------------------------------------ verdicts


def check(lab: Lab, qid: str, answer: Any) -> Verdict:
    """Verdict on the learner's answer (shown nicely in a notebook)."""
    q = lab.spec.question(qid)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return Verdict(qid, False, "no answer yet: type one in the cell above and run it again")
    try:
        observed, source = lab.observe(qid)
    except NoData as exc:
        lab.report("checking", question=qid, verdict="cannot check")
        return Verdict(qid, False, f"cannot check yet: {exc}", answer=answer)
    ok = compare(q, answer, observed)
    lab.report("checking", question=qid, verdict="passed" if ok else "failed")
    if ok:
        message = f"`{answer}` is right." + (f" {q.explanation}" if q.explanation else "")
    else:
        message = f"`{answer}` is not what the telemetry shows. Look again."
        if q.hint:
            message += f" Hint: {q.hint}"
    return Verdict(qid, ok, message, answer=answer, observed=observed, source=source)


def solution(lab: Lab, qid: str) -> Any:
    """The lab's ground truth (instructors, CI): what the lab itself set up or measured."""
    q = lab.spec.question(qid)
    e = q.expected
    if e.value is not None:
        return e.value
    if e.fault_target is not None or e.fault_id is not None:
        step = e.fault_target if e.fault_target is not None else e.fault_id
        rec = next((f for f in lab.state.faults if f.step == step), None)
        if rec is None:
            raise NoData("the fault has not been injected yet")
        return rec.target if e.fault_target is not None else rec.id
    if e.client_p95:
        if lab.state.client_p95_ms is None:
            raise NoData("no client measurements yet")
        return round(lab.state.client_p95_ms, 1)
    if e.attendees:
        return list(lab.state.attendees)
    if e.fault_scope is not None:
        rec = next((f for f in lab.state.faults if f.step == e.fault_scope), None)
        if rec is None:
            raise NoData("the fault has not been injected yet")
        return rec.scope_value
    raise NoData("no ground truth for this question")
