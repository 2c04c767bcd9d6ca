"""Every lab check can fail: in a world where the answer is absent or different, it refuses.

For each question of each lab: the world the lab sets up (its fault, on this attendee) gives
the lab's ground truth, offline (local check over the spans) and online (the spec's DataPrime
or PromQL query, evaluated by a fake Coralogix over the same data). Then worlds where the
answer is not there — no fault, another fault, another target, only another attendee's data —
and the check must refuse: a different answer, or "cannot check yet".
"""

from __future__ import annotations

from typing import Any

import pytest

from labs.runtime import checks, load_spec
from labs.runtime.checks import NoData
from labs.runtime.lab import FaultRecord, Lab, LabState, compare
from tests.labs import world as wd
from tests.labs.fake_coralogix import FakeCoralogix
from tests.labs.world import REQUESTS, T0, Injected

ME, OTHER = "me", "zz"

# The world each lab sets up for attendee ME (hidden targets resolved to one candidate).
TRUTH: dict[str, list[Injected]] = {
    "00": [],
    "01": [],
    "02": [Injected("latency", "validation-service", ME)],
    "03": [
        Injected("error", "validation-service", ME, params={"status": 503}),
        Injected("llm_rate_limit", "external-api-service", ME),
    ],
    "04": [Injected("queue_stall", "queue-worker", None)],
    "05": [Injected("cpu_burn", "processing-service", ME)],
    "06": [Injected("slow_db", "storage-service", None)],
    "07": [Injected("latency", "query-service", ME, params={"ms": 300})],
    "instructor": [Injected("latency", "validation-service", f"{ME}-02", params={"ms": 300})],
}


def _attendees(lab: str, who: str = ME) -> list[str]:
    return [f"{who}-{i:02d}" for i in (1, 2, 3)] if lab == "instructor" else [who]


def _retarget(faults: list[Injected], who: str) -> list[Injected]:
    out = []
    for f in faults:
        scope = None if f.attendee is None else f.attendee.replace(ME, who, 1)
        out.append(Injected(f.kind, f.target, scope, params=f.params))
    return out


OTHER_TARGET = {
    "latency": {"validation-service": "queue-service", "query-service": "validation-service"},
    "error": {"validation-service": "queue-service"},
    "cpu_burn": {"processing-service": "query-service"},
}
OTHER_FAULT = {
    "02": [Injected("error", "queue-service", ME, params={"status": 503})],
    "05": [Injected("memory_leak", "processing-service", None)],
    "06": [Injected("latency", "validation-service", ME)],
}


def world_for(lab: str, name: str) -> tuple[wd.World, list[str]]:
    """(world, the attendees whose data ME's checks look at)."""
    mine = _attendees(lab)
    truth = TRUTH[lab]
    if name == "truth":
        return wd.build(mine, truth), mine
    if name == "absent":  # only another attendee's data: their traffic and their fault
        return wd.build(_attendees(lab, OTHER), _retarget(truth, OTHER)), mine
    if name == "no_fault":
        return wd.build(mine), mine
    if name == "other_target":
        moved = [
            Injected(f.kind, OTHER_TARGET[f.kind][f.target], f.attendee, params=f.params)
            for f in truth
            if f.target in OTHER_TARGET.get(f.kind, {})
        ]
        return wd.build(mine, moved), mine
    if name == "other_fault":
        return wd.build(mine, OTHER_FAULT[lab]), mine
    if name == "other_attendee":  # both send traffic; the fault hits only the other one
        if lab == "instructor":
            return wd.build(mine, [Injected("latency", "validation-service", f"{ME}-03")]), mine
        return wd.build(mine + [OTHER], _retarget(truth, OTHER)), mine
    if name == "slow_gateway":
        return wd.build(mine, [Injected("latency", "api-gateway", ME, params={"ms": 1500})]), mine
    if name == "short_path":  # every question fails validation: the job path never runs
        always = {"status": 503, "every": 1, "window": (0, REQUESTS)}
        return wd.build(mine, [Injected("error", "validation-service", ME, params=always)]), mine
    if name == "redis_dominates":
        return wd.build(
            mine, [Injected("redis_latency", "api-gateway", ME, params={"ms": 2000})]
        ), mine
    if name == "fewer_attendees":
        return wd.build(mine[:1]), mine
    raise KeyError(name)


# Which worlds refute each question. Questions about the architecture (who starts a trace,
# who consumes the stream) hold in every world of this stack: they refuse when the attendee's
# own data is absent. Host metrics carry no attendee: cpu_metric reads the attendee's window.
REFUTING: dict[tuple[str, str], list[str]] = {
    ("00", "entry_service"): ["absent"],
    ("00", "services_count"): ["absent", "short_path"],
    ("01", "first_hop"): ["absent"],
    ("01", "consumer"): ["absent"],
    ("01", "baseline_p95"): ["absent", "slow_gateway"],
    ("02", "slow_service"): ["absent", "no_fault", "other_target", "other_fault", "other_attendee"],
    ("02", "fault_id"): ["absent", "no_fault", "other_target", "other_fault", "other_attendee"],
    ("03", "failing_service"): ["absent", "no_fault", "other_target", "other_attendee"],
    ("03", "retrying_service"): ["absent", "no_fault", "other_attendee"],
    ("03", "retry_status"): ["absent", "no_fault", "other_attendee"],
    ("04", "gateway_slower"): ["absent", "slow_gateway"],
    ("04", "where_time"): ["absent", "no_fault"],
    ("04", "stalled_service"): ["absent", "no_fault"],
    ("05", "hot_service"): ["absent", "no_fault", "other_target", "other_attendee"],
    ("05", "cpu_metric"): ["no_fault", "other_fault"],
    ("06", "slow_service"): ["absent", "no_fault", "other_fault"],
    ("06", "db_system"): ["absent", "redis_dominates"],
    ("06", "db_operation"): ["absent", "no_fault"],
    ("07", "gate"): ["absent", "no_fault", "other_attendee"],
    ("07", "regressed_service"): ["absent", "no_fault", "other_target", "other_attendee"],
    ("instructor", "who_is_sending"): ["absent", "fewer_attendees"],
    ("instructor", "slowed_attendee"): ["absent", "no_fault", "other_attendee"],
}


def test_every_question_has_refuting_worlds():
    from labs.runtime import all_specs

    asked = {(s.id, q.id) for s in all_specs() for q in s.questions}
    assert asked == set(REFUTING), asked ^ set(REFUTING)


def truth_answer(lab: str, qid: str, world: wd.World) -> Any:
    """The lab's ground truth for ME in the truth world (what `Lab.solution` would say)."""
    spec = load_spec(lab)
    e = spec.question(qid).expected
    if e.value is not None:
        return e.value
    if e.fault_target is not None:
        return TRUTH[lab][e.fault_target].target
    if e.fault_id is not None:
        return TRUTH[lab][e.fault_id].id
    if e.fault_scope is not None:
        return TRUTH[lab][e.fault_scope].attendee
    if e.attendees:
        return _attendees(lab)
    if e.client_p95:  # the client measures what the gateway's server spans measure
        ctx = world.context(_attendees(lab))
        return checks.p95_ms(ctx, "api-gateway", "POST /api/queries")
    raise AssertionError


@pytest.fixture(scope="module")
def fake():
    f = FakeCoralogix()
    yield f
    f.close()


def online_lab(lab: str, fake: FakeCoralogix, tmp_path, with_fault: bool) -> Lab:
    spec = load_spec(lab)
    owner = ME
    lab_obj = Lab(
        spec,
        attendee=owner,
        telemetry_dir=tmp_path,
        state_dir=tmp_path / "state",
        gateway_url="http://127.0.0.1:9",
        env={"CX_API_KEY": fake.key, "DATAPRIME_API_URL": fake.url},
    )
    faults = [
        FaultRecord(i, f.kind, f.target, f.id, T0 + wd.FAULT_FROM, T0 + wd.FAULT_TO, "all", None)
        for i, f in enumerate(
            TRUTH[lab] or ([Injected("latency", "query-service")] if with_fault else [])
        )
    ]
    lab_obj.state = LabState(
        lab=spec.name,
        attendee=owner,
        attendees=_attendees(lab),
        traffic_start=T0,
        traffic_end=T0 + REQUESTS,
        faults=faults,
    )
    return lab_obj


def observe_local(lab: str, qid: str, w: wd.World, mine: list[str]) -> Any:
    q = load_spec(lab).question(qid)
    return checks.CHECKS[q.local.check](w.context(mine), **q.local.args)


def observe_online(lab: str, qid: str, w: wd.World, fake: FakeCoralogix, tmp_path) -> Any:
    fake.spans = w.coralogix_rows()
    fake.metrics = w.prometheus_series()
    lab_obj = online_lab(lab, fake, tmp_path, with_fault=True)
    value, source = lab_obj.observe(qid)
    assert "Coralogix" in source
    return value


CASES = sorted(REFUTING)


@pytest.mark.parametrize(("lab", "qid"), CASES, ids=lambda v: str(v))
def test_truth_world_gives_the_lab_answer(lab, qid, fake, tmp_path):
    w, mine = world_for(lab, "truth")
    q = load_spec(lab).question(qid)
    truth = truth_answer(lab, qid, w)
    local = observe_local(lab, qid, w, mine)
    assert compare(q, truth, local), (local, truth)
    online = observe_online(lab, qid, w, fake, tmp_path)
    assert compare(q, truth, online), (online, truth)


REFUSALS = [(lab, qid, world) for (lab, qid) in CASES for world in REFUTING[(lab, qid)]]


@pytest.mark.parametrize(("lab", "qid", "world"), REFUSALS, ids=lambda v: str(v))
def test_check_refuses_when_the_answer_is_not_there(lab, qid, world, fake, tmp_path):
    truth_world, _ = world_for(lab, "truth")
    truth = truth_answer(lab, qid, truth_world)
    q = load_spec(lab).question(qid)
    w, mine = world_for(lab, world)
    for mode in ("local", "online"):
        try:
            observed = (
                observe_local(lab, qid, w, mine)
                if mode == "local"
                else observe_online(lab, qid, w, fake, tmp_path)
            )
        except NoData:
            continue  # refused: "cannot check yet"
        assert not compare(q, truth, observed), (
            f"{mode}: lab {lab} `{qid}` accepted {truth!r} in the {world!r} world ({observed!r})"
        )
