"""What a lab remembers: when its traffic ran, which faults it injected (the hidden target
included) and the client's figures, kept in ``<data dir>/labs/<lab>-<attendee>.json`` so
``workshop lab check`` in another process can verify the answers later."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FaultRecord:
    step: int
    kind: str
    target: str
    id: str | None = None
    start: float | None = None
    end: float | None = None
    scope: str = "all"
    scope_value: str | None = None


@dataclass
class LabState:
    lab: str
    attendee: str
    attendees: list[str] = field(default_factory=list)
    traffic_start: float | None = None
    traffic_end: float | None = None
    faults: list[FaultRecord] = field(default_factory=list)
    client_p95_ms: float | None = None
    client_p95_fault_ms: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        data = dict(data)
        data["faults"] = [FaultRecord(**f) for f in data.get("faults", [])]
        return cls(**data)


def load_state(path: Path, lab: str, attendee: str) -> LabState:
    """The saved state, or a fresh one when there is none (or it cannot be read)."""
    try:
        return LabState.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return LabState(lab=lab, attendee=attendee)


def save_state(path: Path, state: LabState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(state), indent=2))


def fault_window_s(state: LabState) -> tuple[float, float] | None:
    """First fault start to last fault end (now, for a fault still on), in epoch seconds."""
    starts = [f.start for f in state.faults if f.start]
    if not starts:
        return None
    ends = [f.end or time.time() for f in state.faults if f.start]
    return min(starts), max(ends)


def fault_marks(state: LabState) -> list[tuple[float, float | None, str]]:
    """(start, end, kind) of every fault that started: the shaded periods of the plot."""
    return [(f.start, f.end, f.kind) for f in state.faults if f.start is not None]
