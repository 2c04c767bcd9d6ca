"""The ``Lab`` object notebooks, the CLI and tests drive.

    lab = Lab.load("02", short_mode=True)
    lab.run()            # traffic + the spec's fault timeline, in the background
    lab.live()           # live stats table + latency plot until the traffic ends
    lab.where_to_look()  # Coralogix Explore links / menu paths
    lab.check("slow_service", "validation-service")
    lab.cleanup()

``Lab`` is a facade: it holds one lab's settings and state and hands the work to the modules
with one job each — ``state`` (what the lab remembers, on disk), ``timeline`` (traffic and
the fault timeline), ``views`` (what the learner sees) and ``answers`` (checking answers
against Coralogix when ``CX_API_KEY`` is set, else against local telemetry: the same
question, the same verdict). What notebooks and tests import from here stays importable.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labs.runtime import answers, links, timeline, views
from labs.runtime.answers import FLUSH_TIMEOUT_S, Verdict, classify, compare
from labs.runtime.checks import CheckContext, Window
from labs.runtime.spec import LabSpec, load_spec
from labs.runtime.state import FaultRecord, LabState, load_state, save_state
from labs.runtime.timeline import ROOM_EVENT_POLL_S
from labs.runtime.traffic import Stats, TrafficRun
from labs.runtime.views import as_image, in_notebook
from stack.client import ApiError, Gateway
from stack.client import admin_token as instructor_token
from stack.common.attendee import default_attendee
from stack.common.settings import ServiceName
from stack.native.config import NativeConfig, local_telemetry_dir

__all__ = [
    "FLUSH_TIMEOUT_S",
    "ROOM_EVENT_POLL_S",
    "FaultRecord",
    "Lab",
    "LabState",
    "Verdict",
    "as_image",
    "classify",
    "compare",
    "in_notebook",
]


class Lab:
    def __init__(
        self,
        spec: LabSpec,
        *,
        gateway_url: str | None = None,
        admin_token: str | None = None,
        telemetry_dir: str | Path | None = None,
        attendee: str | None = None,
        short_mode: bool = False,
        state_dir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        seed: int | None = None,
    ) -> None:
        env = dict(os.environ if env is None else env)
        cfg = NativeConfig.from_env(env)
        self.spec = spec
        self.env = env
        self.short_mode = short_mode
        self.gateway_url = (
            gateway_url or env.get("LAB_GATEWAY_URL") or cfg.url(ServiceName.GATEWAY)
        ).rstrip("/")
        self._admin_token = admin_token or instructor_token(cfg, env)
        self.telemetry_dir = Path(
            telemetry_dir or env.get("LAB_TELEMETRY_DIR") or local_telemetry_dir(env)
        )
        self.attendee = attendee or default_attendee(env)
        self.state_path = (
            Path(state_dir or cfg.data_dir / "labs") / f"{spec.name}-{self.attendee}.json"
        )
        # The timeline's and the views' working state lives here, on the one object tests
        # and notebooks hold (tests set `lab.state` and stop the timeline with `lab._stop`).
        self._random = random.Random(seed)
        self.traffic: TrafficRun | None = None
        self._timeline: threading.Thread | None = None
        self._stop = threading.Event()
        self.state = load_state(self.state_path, spec.name, self.attendee)
        self._ctx: tuple[Any, CheckContext] | None = None
        self._online_via: str | None = None  # "key" | "gateway" | "" (offline), decided once
        self.waiting_for: str | None = None  # the room event this lab waits for
        self.notices: list[str] = []

    def __repr__(self) -> str:
        return f"Lab({self.spec.name!r}, attendee={self.attendee!r}, short_mode={self.short_mode})"

    @classmethod
    def load(cls, lab_id: str, **kw: Any) -> Lab:
        return cls(load_spec(lab_id), **kw)

    # -- helpers -------------------------------------------------------------------------
    @property
    def gateway(self) -> Gateway:
        return Gateway(self.gateway_url, admin_token=self._admin_token, attendee=self.attendee)

    @property
    def online(self) -> bool:
        """Answers are checked in Coralogix rather than locally: with CX_API_KEY (solo), or
        through the gateway's online-check proxy when the room has a key (attendees)."""
        return bool(self.online_via)

    @property
    def online_via(self) -> str:
        if self._online_via is None:
            if self.env.get("CX_API_KEY"):
                self._online_via = "key"
            else:
                try:
                    cfg = Gateway(self.gateway_url, timeout=2.0).config()
                    self._online_via = "gateway" if cfg.get("online_checks") else ""
                except (ApiError, OSError, ValueError):
                    self._online_via = ""
        return self._online_via

    def save_state(self) -> None:
        save_state(self.state_path, self.state)

    # -- the room ------------------------------------------------------------------------
    def notice(self, message: str) -> None:
        """Tell the learner (and keep it for the live view)."""
        self.notices.append(message)
        views.show_notice(message)

    def report(
        self,
        step: str,
        detail: str = "",
        *,
        question: str | None = None,
        verdict: str | None = None,
    ) -> None:
        """Tell the instructor's progress view where this attendee is (best effort: a room
        without the endpoint, or an unreachable gateway, never breaks the lab)."""
        body: dict[str, Any] = {
            "attendee": self.attendee,
            "lab": self.spec.id,
            "step": step,
            "detail": detail[:200],
        }
        if question and verdict:
            body |= {"question": question, "verdict": verdict}
        with contextlib.suppress(ApiError, OSError, ValueError):
            Gateway(self.gateway_url, attendee=self.attendee, timeout=2.0).report_progress(**body)

    def wait_for_room_event(self, step: int, until: float | None = None) -> dict[str, Any] | None:
        """Block until the instructor starts the room event of fault step ``step`` (or
        ``until`` passes / the lab stops); returns the event, or None."""
        return timeline.wait_for_room_event(self, step, until)

    # -- narrative -----------------------------------------------------------------------
    def intro(self) -> Any:
        return views.intro(self.spec)

    def doctor(self) -> dict[str, Any]:
        """Is the stack reachable, is telemetry flowing, where do answers get checked?"""
        report: dict[str, Any] = {"gateway": self.gateway_url, "attendee": self.attendee}
        try:
            health = self.gateway.health()
            report["stack"] = health.get("status", "?")
            report["services"] = {k: v.get("status") for k, v in health.get("services", {}).items()}
        except (ApiError, OSError) as exc:
            report["stack"] = f"unreachable: {exc} — start it with `workshop up`"
        from labs.telemetry import signal_files

        report["telemetry_dir"] = str(self.telemetry_dir)
        report["local_trace_files"] = len(signal_files(self.telemetry_dir, "traces"))
        report["telemetry"] = (
            "Coralogix + local copy" if links.coralogix_configured(self.env) else "local files"
        )
        report["answers_checked_in"] = (
            "Coralogix (CX_API_KEY)" if self.online else "local telemetry"
        )
        report["admin_token"] = "present" if self._admin_token else "missing (faults need it)"
        return report

    # -- traffic & faults (timeline) -----------------------------------------------------
    def room_attendees(self) -> list[str]:
        return timeline.room_attendees(self)

    def start_traffic(
        self,
        users: int | None = None,
        duration: float | None = None,
        attendees: list[str] | None = None,
    ) -> TrafficRun:
        """Start the spec's traffic in the background (returns at once)."""
        return timeline.start_traffic(self, users, duration, attendees)

    def inject(self, step: int | None = None, *, attendee: str | None = None) -> list[FaultRecord]:
        """Inject the spec's fault steps now (all of them, or one); returns what was created."""
        return timeline.inject(self, step, attendee=attendee)

    def remove(self, record: FaultRecord) -> None:
        timeline.remove(self, record)

    def run(self, users: int | None = None, duration: float | None = None) -> TrafficRun:
        """Traffic plus the spec's fault timeline, both in the background."""
        return timeline.run(self, users, duration)

    def wait(self) -> TrafficRun | None:
        """Block until traffic and the fault timeline are over; record the client figures."""
        return timeline.wait(self)

    def stop(self) -> None:
        timeline.stop(self)

    def cleanup(self) -> dict[str, Any]:
        """Stop traffic, clear this lab's faults (and reset if the spec says so)."""
        return timeline.cleanup(self)

    # -- live view -----------------------------------------------------------------------
    def stats_table_html(self) -> str:
        return views.stats_table_html(self)

    def latency_figure(self) -> Any:
        """Latency over time (per-second p50/p95 and errors), fault periods shaded."""
        return views.latency_figure(self)

    def figure_png(self) -> bytes:
        return views.figure_png(self)

    def live(self, refresh: float = 1.0) -> Stats | None:
        """Live stats + latency plot until the traffic (and fault timeline) ends."""
        return views.live(self, refresh)

    # -- where to look -------------------------------------------------------------------
    def where_to_look(self) -> list[dict[str, str]]:
        """Links for this attendee: Explore on the lab's exact traffic window (when it ran),
        one trace by id, and the attendee's host in Infrastructure Explorer (menu path + host
        name and id — no documented deep link exists). No team host: no links, one hint."""
        return views.where_to_look(self)

    # -- checking answers ----------------------------------------------------------------
    def windows(self) -> dict[str, Window]:
        return answers.windows(self)

    def context(self) -> CheckContext:
        return answers.context(self)

    def observe(self, qid: str, *, timeout: float | None = None) -> tuple[Any, str]:
        """What the data says the answer to ``qid`` is, and where it was checked."""
        return answers.observe(self, qid, timeout=timeout)

    def check(self, qid: str, answer: Any) -> Verdict:
        """Verdict on the learner's answer (shown nicely in a notebook)."""
        return answers.check(self, qid, answer)

    def solution(self, qid: str) -> Any:
        """The lab's ground truth (instructors, CI): what the lab itself set up or measured."""
        return answers.solution(self, qid)
