"""Lab specs (``labs/specs/*.yaml``): the single source for notebooks, CLI and markdown guides."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stack.common.faults.registry import FAULT_KINDS
from stack.common.room import is_room_event_kind
from stack.common.settings import ServiceName

SPEC_DIR = Path(__file__).resolve().parents[1] / "specs"
SERVICES = [s.value for s in ServiceName if s is not ServiceName.FRONTEND]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShortTraffic(_Model):
    users: int = Field(ge=1, le=50)
    duration_s: int = Field(ge=5, le=600)


class Traffic(_Model):
    scenario: str = Field(description="Locust scenario (scenarios/conf/<name>.conf)")
    users: int = Field(ge=1, le=500)
    duration_s: int = Field(ge=5, le=3600)
    short: ShortTraffic
    engine: Literal["auto", "builtin", "locust"] = "builtin"
    think_s: float | None = Field(
        None,
        gt=0,
        le=30,
        description="builtin engine: each user's mean pause between questions (s); unset, "
        "users pause 0.05–0.25 s (busy traffic)",
    )
    attendees: int = Field(1, ge=1, le=100, description="distinct attendee ids (instructor)")


class FaultTiming(_Model):
    offset_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)


class FaultStep(_Model):
    kind: str
    target: str = Field(description="a service, or `hidden` (chosen at random among candidates)")
    candidates: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    probability: float = Field(1.0, ge=0, le=1)
    scope: Literal["all", "attendee"] = "all"
    offset_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    short: FaultTiming

    @model_validator(mode="after")
    def _check(self) -> FaultStep:
        kind = FAULT_KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        allowed = {t.value for t in kind.targets}
        targets = self.candidates if self.target == "hidden" else [self.target]
        if self.target == "hidden" and len(self.candidates) < 2:
            raise ValueError("a hidden target needs at least two candidates")
        for t in targets:
            if t not in allowed:
                raise ValueError(f"{self.kind} cannot target {t!r} (one of {sorted(allowed)})")
        kind.params.model_validate(self.params)
        # In a shared room a lab's fault touches only its attendee whenever the kind can be
        # scoped; kinds that act on a whole process are room events the instructor starts.
        if is_room_event_kind(self.kind) and self.scope != "all":
            raise ValueError(f"{self.kind} acts on a whole process: a room event, scope `all`")
        if not is_room_event_kind(self.kind) and self.scope != "attendee":
            raise ValueError(f"{self.kind} can be scoped to the attendee: use scope `attendee`")
        return self

    @property
    def room_event(self) -> bool:
        """A process-wide fault: the instructor starts it for the whole room."""
        return is_room_event_kind(self.kind)


class Answer(_Model):
    type: Literal["service", "choice", "number", "text"]
    choices: list[str] = Field(default_factory=list)
    tolerance: float = Field(0.5, ge=0, description="numbers: relative tolerance")
    abs_tolerance: float = Field(25.0, ge=0, description="numbers: absolute tolerance")
    unit: str = ""

    @model_validator(mode="after")
    def _check(self) -> Answer:
        if self.type == "choice" and len(self.choices) < 2:
            raise ValueError("a choice answer needs at least two choices")
        return self


class Expected(_Model):
    """Where the lab's ground truth comes from (used by `reveal` and the instructor guide)."""

    value: Any = None
    fault_target: int | None = Field(None, description="index of the fault step whose target")
    fault_id: int | None = Field(None, description="index of the fault step whose id")
    client_p95: bool = Field(False, description="the traffic generator's own p95 (ms)")
    attendees: bool = Field(False, description="the attendee ids the room traffic used")
    fault_scope: int | None = Field(None, description="index of the fault step whose attendee")

    @model_validator(mode="after")
    def _one(self) -> Expected:
        set_ = [
            self.value is not None,
            self.fault_target is not None,
            self.fault_id is not None,
            self.client_p95,
            self.attendees,
            self.fault_scope is not None,
        ]
        if sum(set_) != 1:
            raise ValueError("expected: give exactly one of value/fault_target/fault_id/...")
        return self


class Rule(_Model):
    """``answer`` when the query's ``field`` is at least ``min`` (and below ``max``)."""

    field: str
    min: float | None = None
    max: float | None = None
    answer: str


class Classify(_Model):
    """Turns the numbers a query measured into a choice, outside the query: a query that
    names its own answer would return it whatever the data (the lint test rejects that)."""

    rules: list[Rule] = Field(min_length=1)
    otherwise: str


class DataPrimeCheck(_Model):
    query: str = Field(description="DataPrime; {attendee} is substituted")
    field: str = Field("", description="the column of the first row that holds the answer")
    window: Literal["all", "baseline", "fault"] = "fault"
    scale: float = Field(1.0, description="multiply a numeric answer (µs → ms: 0.001)")
    all_rows: bool = Field(False, description="the answer is the field of every row (a list)")
    classify: Classify | None = None

    @model_validator(mode="after")
    def _check(self) -> DataPrimeCheck:
        if not self.field and self.classify is None:
            raise ValueError("dataprime: give `field` or `classify`")
        return self


class MetricsCheck(_Model):
    """Which host metric rose: PromQL over Coralogix's Prometheus-compatible metrics API,
    the baseline window against the fault window (the attendee's own windows)."""

    candidates: dict[str, str] = Field(description="answer → PromQL (a rate or a gauge)")
    min_ratio: float = Field(1.3, gt=1.0, description="fault mean ≥ ratio × baseline mean")


class LocalCheck(_Model):
    check: str = Field(description="a function in labs.runtime.checks")
    args: dict[str, Any] = Field(default_factory=dict)


class Question(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    prompt: str
    answer: Answer
    expected: Expected
    dataprime: DataPrimeCheck | None = None
    metrics: MetricsCheck | None = Field(
        None, description="online check over host metrics (instead of a DataPrime query)"
    )
    local: LocalCheck
    hint: str = ""
    explanation: str = ""

    @model_validator(mode="after")
    def _online(self) -> Question:
        if (self.dataprime is None) == (self.metrics is None):
            raise ValueError(f"{self.id}: give exactly one of `dataprime` or `metrics`")
        return self


class WhereToLook(_Model):
    label: str
    explore_query: str | None = None
    menu: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _one(self) -> WhereToLook:
        if bool(self.explore_query) == bool(self.menu):
            raise ValueError("where_to_look: give explore_query or menu")
        return self


class Cleanup(_Model):
    clear_faults: bool = True
    reset: bool = False
    note: str = ""


class LabSpec(_Model):
    id: str = Field(pattern=r"^(\d\d|instructor)$")
    slug: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    summary: str
    time_minutes: int = Field(ge=1, le=180)
    objectives: list[str] = Field(min_length=1)
    prerequisites: list[str] = Field(default_factory=list)
    story: str = ""
    traffic: Traffic
    faults: list[FaultStep] = Field(default_factory=list)
    questions: list[Question] = Field(default_factory=list)
    where_to_look: list[WhereToLook] = Field(default_factory=list)
    cleanup: Cleanup = Cleanup()

    @model_validator(mode="after")
    def _check(self) -> LabSpec:
        from labs.runtime import checks

        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)):
            raise ValueError("question ids must be unique")
        for q in self.questions:
            if q.local.check not in checks.CHECKS:
                raise ValueError(f"{q.id}: unknown local check {q.local.check!r}")
            for idx in (q.expected.fault_target, q.expected.fault_id):
                if idx is not None and idx >= len(self.faults):
                    raise ValueError(f"{q.id}: no fault step {idx}")
        for f in self.faults:
            end = f.short.offset_s + f.short.duration_s
            if end > self.traffic.short.duration_s + 1:
                raise ValueError(f"{f.kind}: the short timeline ends after the short traffic")
        return self

    @property
    def name(self) -> str:
        return self.id if self.id == self.slug else f"{self.id}-{self.slug}"

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(
            f"lab {self.id} has no question {qid!r}: one of {[q.id for q in self.questions]}"
        )


class TourPhase(_Model):
    """One narrated stretch of a tour. A phase with ``fault`` lasts as long as that fault
    step; a phase without one fills the time until the next fault (or the traffic's end)."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    story: str
    fault: int | None = Field(None, description="index of the fault step this phase shows")


class TourSpec(LabSpec):
    """A narrated run (``workshop demo``): a lab's traffic and fault timeline, cut into
    phases that are shown one after another. No questions: the tour tells, it does not ask."""

    id: str = Field(pattern=r"^[a-z]+$")
    phases: list[TourPhase] = Field(min_length=2)

    @model_validator(mode="after")
    def _phases(self) -> TourSpec:
        if self.questions:
            raise ValueError("a tour asks no questions")
        shown = [p.fault for p in self.phases if p.fault is not None]
        if sorted(shown) != list(range(len(self.faults))):
            raise ValueError("each fault step is shown by exactly one phase, in order")
        for short in (False, True):
            self.windows(short)  # raises when phases overlap or run backwards
        return self

    def windows(self, short: bool) -> list[tuple[TourPhase, float, float]]:
        """Each phase's (start, end) in seconds from the traffic's start."""

        def timing(i: int) -> tuple[float, float]:
            f = self.faults[i]
            t = f.short if short else f
            return t.offset_s, t.offset_s + t.duration_s

        total = float(self.traffic.short.duration_s if short else self.traffic.duration_s)
        out: list[tuple[TourPhase, float, float]] = []
        cursor = 0.0
        for n, phase in enumerate(self.phases):
            if phase.fault is not None:
                start, end = timing(phase.fault)
            else:
                later = [p.fault for p in self.phases[n + 1 :] if p.fault is not None]
                start, end = cursor, (timing(later[0])[0] if later else total)
            if start < cursor or end <= start:
                raise ValueError(f"phase {phase.key}: {start:g}–{end:g} s overlaps or is empty")
            out.append((phase, start, end))
            cursor = end
        return out


TOUR_DIR = SPEC_DIR / "tours"


def load_tour(name: str) -> TourSpec:
    """A tour spec (``labs/specs/tours/<name>.yaml``); labs never list tours."""
    path = TOUR_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(q.stem for q in TOUR_DIR.glob("*.yaml"))
        raise KeyError(f"no tour {name!r}: one of {known}")
    return TourSpec.model_validate(yaml.safe_load(path.read_text()))


def spec_files() -> list[Path]:
    return sorted(SPEC_DIR.glob("*.yaml"))


@lru_cache
def load_spec(lab_id: str) -> LabSpec:
    """``"02"``, ``"2"``, ``"02-latency"``, ``"latency"`` or ``"instructor"``."""
    key = lab_id.strip().lower()
    if key.isdigit():
        key = f"{int(key):02d}"
    for path in spec_files():
        stem = path.stem  # NN-slug
        num, _, slug = stem.partition("-")
        if key in (stem, num, slug):
            return LabSpec.model_validate(yaml.safe_load(path.read_text()))
    raise KeyError(f"no lab {lab_id!r}: one of {[p.stem for p in spec_files()]}")


def all_specs() -> list[LabSpec]:
    return [LabSpec.model_validate(yaml.safe_load(p.read_text())) for p in spec_files()]
