"""The ``Lab`` object notebooks, the CLI and tests drive.

    lab = Lab.load("02", short_mode=True)
    lab.run()            # traffic + the spec's fault timeline, in the background
    lab.live()           # live stats table + latency plot until the traffic ends
    lab.where_to_look()  # Coralogix Explore links / menu paths
    lab.check("slow_service", "validation-service")
    lab.cleanup()

Answers are verified against Coralogix (DataPrime query API) when ``CX_API_KEY`` is set, else
against local telemetry: the same question, the same verdict. The lab's state (when traffic
ran, which faults it injected — the hidden target included) is kept in
``<data dir>/labs/<lab>-<attendee>.json`` so ``workshop lab check`` can verify later.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labs.runtime import checks, links, traffic
from labs.runtime.checks import CheckContext, NoData, Window
from labs.runtime.spec import LabSpec, Question, load_spec
from labs.runtime.traffic import Stats, TrafficRun
from stack.client import ApiError, Gateway
from stack.client import admin_token as instructor_token
from stack.common.attendee import default_attendee
from stack.common.dataprime_client import dig
from stack.common.faults.registry import FAULT_KINDS
from stack.common.settings import ServiceName
from stack.common.stats import percentile
from stack.native.config import NativeConfig

FLUSH_TIMEOUT_S = float(os.environ.get("LAB_FLUSH_TIMEOUT", "20"))
ROOM_EVENT_POLL_S = float(os.environ.get("LAB_ROOM_EVENT_POLL", "1"))


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


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


# ------------------------------------------------------------------------------ state


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


# ------------------------------------------------------------------------------ the lab


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
            telemetry_dir
            or env.get("LAB_TELEMETRY_DIR")
            or env.get("TELEMETRY_DIR")
            or cfg.telemetry_dir
        )
        self.attendee = attendee or default_attendee(env)
        self.state_path = (
            Path(state_dir or cfg.data_dir / "labs") / f"{spec.name}-{self.attendee}.json"
        )
        self._random = random.Random(seed)
        self.traffic: TrafficRun | None = None
        self._timeline: threading.Thread | None = None
        self._stop = threading.Event()
        self.state = self._load_state()
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

    # -- the room ------------------------------------------------------------------------
    def notice(self, message: str) -> None:
        """Tell the learner (and keep it for the live view)."""
        self.notices.append(message)
        if in_notebook():
            from IPython.display import Markdown, display

            display(Markdown(f"⏳ {message}"))
        else:
            from rich.console import Console

            Console(stderr=True).print(f"⏳ {message}")

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
        f = self.spec.faults[step]
        label = f"{f.kind}" + (f" on {f.target}" if f.target != "hidden" else "")
        self.notice(f"waiting for the instructor to start room event {label}")
        self.report("waiting", f"room event {label}")
        self.waiting_for = label
        try:
            while not self._stop.is_set():
                try:
                    events = self.gateway.room_events()
                except (ApiError, OSError):
                    events = []
                for ev in events:
                    same_target = f.target == "hidden" or ev.get("target") == f.target
                    if ev.get("kind") == f.kind and same_target:
                        self.notice(f"room event {label} started ({ev.get('id')})")
                        return ev
                if until is not None and time.time() >= until:
                    self.notice(f"room event {label} did not start before the traffic ended")
                    return None
                self._stop.wait(ROOM_EVENT_POLL_S)
            return None
        finally:
            self.waiting_for = None

    def _load_state(self) -> LabState:
        try:
            return LabState.from_json(json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return LabState(lab=self.spec.name, attendee=self.attendee)

    def save_state(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(asdict(self.state), indent=2))

    def _show(self, obj: Any) -> None:
        if in_notebook():
            from IPython.display import display

            display(obj)
        else:
            from rich.console import Console

            Console().print(obj)

    # -- narrative -----------------------------------------------------------------------
    def intro(self) -> Any:
        s = self.spec
        text = [f"## Lab {s.id} · {s.title}", f"*≈ {s.time_minutes} minutes*", "", s.summary, ""]
        text += ["**You will:**", *[f"- {o}" for o in s.objectives]]
        if s.prerequisites:
            text += ["", "**Before you start:**", *[f"- {p}" for p in s.prerequisites]]
        md = "\n".join(text)
        if in_notebook():
            from IPython.display import Markdown

            return Markdown(md)
        return md

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

    # -- traffic & faults ----------------------------------------------------------------
    def _traffic_plan(self, users: int | None, duration: float | None) -> tuple[int, float]:
        t = self.spec.traffic
        base_users, base_duration = (
            (t.short.users, t.short.duration_s) if self.short_mode else (t.users, t.duration_s)
        )
        return users or base_users, float(duration or base_duration)

    def room_attendees(self) -> list[str]:
        n = self.spec.traffic.attendees
        return [self.attendee] if n == 1 else [f"{self.attendee}-{i + 1:02d}" for i in range(n)]

    def start_traffic(
        self,
        users: int | None = None,
        duration: float | None = None,
        attendees: list[str] | None = None,
    ) -> TrafficRun:
        """Start the spec's traffic in the background (returns at once)."""
        if self.traffic and self.traffic.running:
            raise RuntimeError("traffic is already running: lab.live() or lab.stop()")
        users, duration = self._traffic_plan(users, duration)
        who = attendees or self.room_attendees()
        self.traffic = traffic.start(
            self.gateway_url,
            users=users,
            duration_s=duration,
            attendees=who,
            engine=self.env.get("LAB_TRAFFIC_ENGINE") or self.spec.traffic.engine,
            scenario=self.spec.traffic.scenario,
            think_s=self.spec.traffic.think_s,
            env={**self.env, **({"ADMIN_TOKEN": self._admin_token} if self._admin_token else {})},
        )
        self.state = LabState(
            lab=self.spec.name,
            attendee=self.attendee,
            attendees=who,
            traffic_start=self.traffic.started_at,
        )
        self.save_state()
        return self.traffic

    def _timing(self, step: int) -> tuple[float, float]:
        f = self.spec.faults[step]
        return (
            (f.short.offset_s, f.short.duration_s)
            if self.short_mode
            else (f.offset_s, f.duration_s)
        )

    def inject(self, step: int | None = None, *, attendee: str | None = None) -> list[FaultRecord]:
        """Inject the spec's fault steps now (all of them, or one); returns what was created."""
        steps = range(len(self.spec.faults)) if step is None else [step]
        created = []
        for i in steps:
            f = self.spec.faults[i]
            if f.room_event and not self._admin_token:
                # An attendee cannot start a process-wide fault: the instructor does.
                ev = self.wait_for_room_event(i, until=self._traffic_deadline())
                if ev is None:
                    continue
                record = FaultRecord(
                    i, f.kind, str(ev.get("target")), ev.get("id"), time.time(), None, "room"
                )
                self.state.faults.append(record)
                created.append(record)
                continue
            target = self._random.choice(f.candidates) if f.target == "hidden" else f.target
            _offset, duration = self._timing(i)
            mine = self.state.attendees or [self.attendee]
            scope_value = attendee or (mine[0] if f.scope == "attendee" else None)
            if not self._admin_token and FAULT_KINDS[f.kind].per_request:
                # No admin token (an attendee's kernel): ask for a fault scoped to ourselves;
                # the gateway allows it when ATTENDEE_FAULTS is on and we send no token.
                scope_value = scope_value or mine[0]
            scope = "attendee" if scope_value else "all"
            gateway = (
                self.gateway
                if self._admin_token or scope_value == self.attendee
                else Gateway(self.gateway_url, attendee=scope_value)
            )
            fault = gateway.add_fault(
                f.kind,
                target,
                params=f.params,
                probability=f.probability,
                scope=scope,
                scope_value=scope_value,
                ttl_seconds=int(duration + 30),
            )
            record = FaultRecord(
                i, f.kind, target, fault["id"], time.time(), None, scope, scope_value
            )
            self.state.faults.append(record)
            created.append(record)
        self.save_state()
        return created

    def _traffic_deadline(self) -> float | None:
        run = self.traffic
        return run.started_at + run.duration_s if run else None

    def remove(self, record: FaultRecord) -> None:
        if record.scope == "room":
            # The instructor's room event: this lab stops observing it, never clears it.
            if record.end is None:
                record.end = time.time()
                self.save_state()
            return
        if record.id and record.end is None:
            try:
                self.gateway.remove_fault(record.id)
            except ApiError as exc:
                if exc.status != 404:
                    raise
            record.end = time.time()
            self.save_state()

    def _run_timeline(self) -> None:
        assert self.traffic is not None
        t0 = self.traffic.started_at
        events: list[tuple[float, str, int]] = []
        for i in range(len(self.spec.faults)):
            offset, duration = self._timing(i)
            events += [(offset, "inject", i), (offset + duration, "remove", i)]
        records: dict[int, FaultRecord] = {}
        try:
            for at, action, i in sorted(events):
                if self._stop.wait(max(0.0, t0 + at - time.time())):
                    break
                if action == "inject":
                    if made := self.inject(i):
                        records[i] = made[0]
                elif i in records:
                    self.remove(records[i])
        finally:
            for rec in records.values():
                self.remove(rec)

    def run(self, users: int | None = None, duration: float | None = None) -> TrafficRun:
        """Traffic plus the spec's fault timeline, both in the background."""
        run = self.start_traffic(users, duration)
        self.report("traffic", f"{run.users} users for {run.duration_s:.0f} s")
        self._stop.clear()
        if self.spec.faults:
            self._timeline = threading.Thread(
                target=self._run_timeline, name="lab-faults", daemon=True
            )
            self._timeline.start()
        return run

    def wait(self) -> TrafficRun | None:
        """Block until traffic and the fault timeline are over; record the client figures."""
        if self.traffic:
            self.traffic.wait()
        if self._timeline:
            self._timeline.join()
        if self.traffic:
            self.state.traffic_end = self.traffic.ended_at or time.time()
            stats = self.traffic.stats()
            self.state.client_p95_ms = stats.p95_ms
            fw = self._fault_window_s()
            if fw:
                self.state.client_p95_fault_ms = self.traffic.stats(*fw).p95_ms
            self.save_state()
            self.report("answering", "traffic finished: answering the questions")
        return self.traffic

    def stop(self) -> None:
        self._stop.set()
        if self.traffic:
            self.traffic.stop()
        self.wait()

    # -- live view -----------------------------------------------------------------------
    def _fault_marks(self) -> list[tuple[float, float | None, str]]:
        return [(f.start, f.end, f.kind) for f in self.state.faults if f.start is not None]

    def stats_table_html(self) -> str:
        run = self.traffic
        if run is None:
            return "<i>no traffic yet: lab.run()</i>"
        now = time.time()
        rows = [("whole run", run.stats()), ("last 5 s", run.stats(now - 5, now))]
        if fw := self._fault_window_s():
            base = run.stats(run.started_at, fw[0])
            rows.insert(0, ("before the fault", base))
            rows.insert(1, ("during the fault", run.stats(*fw)))
        head = "".join(
            f"<th>{h}</th>"
            for h in ("window", "requests", "errors", "error %", "p50 ms", "p95 ms", "req/s")
        )
        body = "".join(
            "<tr>"
            + f"<td>{name}</td><td>{s.requests}</td><td>{s.errors}</td>"
            + f"<td>{s.error_ratio * 100:.1f}</td><td>{_fmt(s.p50_ms)}</td><td>{_fmt(s.p95_ms)}</td>"  # noqa: E501
            + f"<td>{s.rps:.1f}</td></tr>"
            for name, s in rows
        )
        active = (
            ", ".join(f"{f.kind} (started)" for f in self.state.faults if f.end is None) or "none"
        )
        status = "running" if run.running else "finished"
        if self.waiting_for:
            active += f" · waiting for the instructor to start room event {self.waiting_for}"
        return (
            f"<b>Lab {self.spec.id}</b> · traffic {status} · {run.elapsed:.0f}/{run.duration_s:.0f} s"  # noqa: E501
            f" · {run.users} users · engine {run.engine} · active faults: {active}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            + (f"<p style='color:crimson'>traffic error: {run.error}</p>" if run.error else "")
        )

    def latency_figure(self) -> Any:
        """Latency over time (per-second p50/p95 and errors), fault periods shaded."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 3.2))
        ax = fig.add_subplot()
        run = self.traffic
        samples = run.snapshot() if run else []
        if not samples or run is None:
            ax.text(0.5, 0.5, "no traffic yet", ha="center", va="center")
            ax.set_axis_off()
            return fig
        t0 = run.started_at
        buckets: dict[int, list[traffic.Sample]] = {}
        for s in samples:
            buckets.setdefault(int(s.t - t0), []).append(s)
        xs = sorted(buckets)
        p50 = [percentile([s.latency_ms for s in buckets[x]], 0.50) for x in xs]
        p95 = [percentile([s.latency_ms for s in buckets[x]], 0.95) for x in xs]
        errs = [sum(not s.ok for s in buckets[x]) for x in xs]
        ax.plot(xs, p95, label="p95", color="tab:orange")
        ax.plot(xs, p50, label="p50", color="tab:blue")
        ax.set_xlabel("seconds since traffic start")
        ax.set_ylabel("latency (ms)")
        ax.set_xlim(0, max(run.duration_s, xs[-1] + 1))
        for start, end, kind in self._fault_marks():
            ax.axvspan(start - t0, (end or time.time()) - t0, color="tab:red", alpha=0.12)
            ax.text(start - t0, ax.get_ylim()[1] * 0.92, f" {kind}", color="tab:red", fontsize=8)
        if any(errs):
            ax2 = ax.twinx()
            ax2.bar(xs, errs, color="tab:red", alpha=0.35, width=0.8, label="errors/s")
            ax2.set_ylabel("errors / s")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(f"Lab {self.spec.id}: what your traffic sees")
        fig.tight_layout()
        return fig

    def figure_png(self) -> bytes:
        buf = io.BytesIO()
        self.latency_figure().savefig(buf, format="png", dpi=90)
        return buf.getvalue()

    def live(self, refresh: float = 1.0) -> Stats | None:
        """Live stats + latency plot until the traffic (and fault timeline) ends."""
        if self.traffic is None:
            raise RuntimeError("no traffic: call lab.run() first")
        if in_notebook():
            from IPython.display import HTML, Image, display

            table = display(HTML(self.stats_table_html()), display_id=True)
            plot = display(Image(data=self.figure_png()), display_id=True)
            while self.traffic.running or (self._timeline and self._timeline.is_alive()):
                time.sleep(refresh)
                table.update(HTML(self.stats_table_html()))
                plot.update(Image(data=self.figure_png()))
            self.wait()
            table.update(HTML(self.stats_table_html()))
            plot.update(Image(data=self.figure_png()))
        else:
            from rich.console import Console
            from rich.live import Live

            with Live(self._rich_table(), console=Console(), refresh_per_second=2) as view:
                while self.traffic.running or (self._timeline and self._timeline.is_alive()):
                    time.sleep(refresh)
                    view.update(self._rich_table())
                self.wait()
                view.update(self._rich_table())
        return self.traffic.stats()

    def _rich_table(self) -> Any:
        from rich.table import Table

        run = self.traffic
        assert run is not None
        table = Table(title=f"Lab {self.spec.id} · {run.elapsed:.0f}/{run.duration_s:.0f} s")
        for col in ("window", "requests", "errors", "p50 ms", "p95 ms", "req/s"):
            table.add_column(col, justify="right" if col != "window" else "left")
        rows = [("whole run", run.stats())]
        if fw := self._fault_window_s():
            rows = [
                ("before the fault", run.stats(run.started_at, fw[0])),
                ("during the fault", run.stats(*fw)),
                *rows,
            ]
        for name, s in rows:
            table.add_row(
                name, str(s.requests), str(s.errors), _fmt(s.p50_ms), _fmt(s.p95_ms), f"{s.rps:.1f}"
            )
        return table

    # -- where to look -------------------------------------------------------------------
    def where_to_look(self) -> list[dict[str, str]]:
        """Links for this attendee: Explore on the lab's exact traffic window (when it ran),
        one trace by id, and the attendee's host in Infrastructure Explorer (menu path + host
        name and id — no documented deep link exists). No team host: no links, one hint."""
        start, end = self._traffic_window_s()
        trace = self._slowest_local_trace()
        info = links.lab_links(
            self.attendee,
            start,
            end,
            trace_id=trace[0] if trace else None,
            trace_start=trace[1] if trace else None,
            trace_end=trace[2] if trace else None,
            telemetry_dir=self.telemetry_dir,
            env=self.env,
        )
        items: list[dict[str, str]] = []
        for w in self.spec.where_to_look:
            item = {"label": w.label, "note": w.note, "menu": w.menu or ""}
            if w.explore_query:
                query = w.explore_query.replace("{attendee}", self.attendee)
                item["query"] = query
                url = links.explore_link(query, start=start, end=end, env=self.env)
                if url:
                    item["url"] = url
            if "Infrastructure Explorer" in (w.menu or ""):
                item["host"] = info["infrastructure"] or ""
            items.append(item)
        if info["spans"]:
            items.append(
                {
                    "label": f"Your spans ({self.attendee}, this lab's window)",
                    "url": info["spans"],
                    "query": links.attendee_query(self.attendee),
                    "note": "",
                    "menu": "",
                }
            )
        if info["trace"] and trace:
            items.append(
                {
                    "label": f"One trace: {trace[0]}",
                    "url": info["trace"],
                    "query": links.trace_query(trace[0]),
                    "note": "",
                    "menu": "",
                }
            )
        if not any("host" in it for it in items):
            items.append(
                {
                    "label": "Your host",
                    "host": info["infrastructure"] or "",
                    "note": "",
                    "menu": links.INFRA_MENU,
                }
            )
        if info["hint"]:
            items.append({"label": "Links", "hint": info["hint"], "note": "", "menu": ""})
        if in_notebook():
            from IPython.display import Markdown, display

            display(Markdown(self._where_markdown(items)))
        return items

    def _where_markdown(self, items: list[dict[str, str]]) -> str:
        lines = []
        for it in items:
            if it.get("hint"):
                lines.append(f"- *{it['hint']}*")
                continue
            if it.get("url"):
                lines.append(f"- **{it['label']}** — [open in Coralogix Explore]({it['url']})")
            elif it.get("menu") and not it.get("host"):
                lines.append(f"- **{it['label']}** — menu: *{it['menu']}*")
            else:
                lines.append(f"- **{it['label']}**")
            if it.get("query"):
                lines.append(f"  \n  `{it['query']}`")
            if it.get("host"):
                lines.append(f"  \n  {it['host']}")
            if it.get("note"):
                lines.append(f"  \n  {it['note']}")
        if not links.coralogix_configured(self.env):
            lines.append(
                "\n*Offline mode (no `CX_PRIVATE_KEY`): telemetry stays local — use "
                "`workshop traces` or the cells below.*"
            )
        return "\n".join(lines)

    def _traffic_window_s(self) -> tuple[float | None, float | None]:
        st = self.state
        if st.traffic_start is None:
            return None, None
        end = st.traffic_end or (self.traffic.ended_at if self.traffic else None)
        return st.traffic_start, end or time.time()

    def _slowest_local_trace(self) -> tuple[str, float, float] | None:
        """The attendee's slowest trace of this lab's window in the local copy, if any."""
        start, end = self._traffic_window_s()
        if start is None or end is None:
            return None
        try:
            from labs.telemetry import load_spans, traces

            found = traces(load_spans(self.telemetry_dir), attendee=self.attendee, limit=None)
        except (OSError, ValueError):
            return None
        lo, hi = start - 1, end + 2
        inside = [t for t in found if lo <= t.start.timestamp() <= hi]
        if not inside:
            return None
        t = max(inside, key=lambda t: t.duration_ms)
        return t.trace_id, t.start.timestamp(), t.start.timestamp() + t.duration_ms / 1000

    # -- checking answers ----------------------------------------------------------------
    def windows(self) -> dict[str, Window]:
        st = self.state
        if st.traffic_start is None:
            raise NoData("this lab has not run yet: lab.run() first")
        end = st.traffic_end or (self.traffic.ended_at if self.traffic else None) or time.time()
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

    def _fault_window_s(self) -> tuple[float, float] | None:
        starts = [f.start for f in self.state.faults if f.start]
        if not starts:
            return None
        ends = [f.end or time.time() for f in self.state.faults if f.start]
        return min(starts), max(ends)

    def context(self) -> CheckContext:
        from labs.telemetry import load_metrics, load_spans

        return CheckContext(
            spans=load_spans(self.telemetry_dir),
            metrics=load_metrics(self.telemetry_dir),
            windows=self.windows(),
            attendees=list(self.state.attendees),
        )

    def _flushed(self) -> bool:
        """Has telemetry from the end of the run reached the files?"""
        from labs.telemetry import iter_spans

        end = self.state.traffic_end
        if end is None:
            return True
        mark = int((end - 1.5) * 1e9)
        return any(s.start_ns >= mark for s in iter_spans(self.telemetry_dir))

    def observe(self, qid: str, *, timeout: float | None = None) -> tuple[Any, str]:
        """What the data says the answer to ``qid`` is, and where it was checked."""
        q = self.spec.question(qid)
        if self.traffic and self.traffic.running:
            self.wait()
        if self.online:
            api = "Metrics API" if q.metrics is not None else "DataPrime query API"
            via = " via the room's gateway" if self.online_via == "gateway" else ""
            return self._observe_coralogix(q), f"Coralogix ({api}{via})"
        timeout = FLUSH_TIMEOUT_S if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self._flushed() and time.monotonic() < deadline:
            time.sleep(0.5)
        fn = checks.CHECKS[q.local.check]
        while True:
            # One read of the files serves every question of a finished run.
            key = (self.state.traffic_start, self.state.traffic_end)
            if self._ctx is None or self._ctx[0] != key:
                self._ctx = (key, self.context())
            try:
                return fn(self._ctx[1], **q.local.args), "local telemetry"
            except NoData:
                self._ctx = None
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)

    def _dataprime_rows(self, query: str, start: float, end: float) -> list[dict[str, Any]]:
        if self.online_via == "gateway":
            answer = Gateway(self.gateway_url, attendee=self.attendee, timeout=60).room_check(
                api="dataprime", query=query, start=start, end=end
            )
            return list(answer.get("rows", []))
        from stack.common.dataprime_client import DataPrimeClient

        env = dict(self.env)
        env.setdefault("REDIS_URL", self._redis_url)
        client = DataPrimeClient.from_env(env, on_wait=self._show_checking)
        return client.query(query, start=start, end=end).rows

    def _metric_series(self, query: str, start: float, end: float) -> list[dict[str, Any]]:
        if self.online_via == "gateway":
            answer = Gateway(self.gateway_url, attendee=self.attendee, timeout=60).room_check(
                api="metrics", query=query, start=start, end=end, step_s=5
            )
            return list(answer.get("series", []))
        from stack.common.metrics_client import MetricsClient

        return MetricsClient.from_env(self.env).query_range(query, start=start, end=end, step_s=5)

    def _observe_coralogix(self, q: Question) -> Any:
        if q.metrics is not None:
            return self._observe_metrics(q)
        dp = q.dataprime
        assert dp is not None
        w = self.windows()[dp.window]
        query = dp.query.replace("{attendee}", self.attendee)
        rows = self._dataprime_rows(query, w.start_ns / 1e9, w.end_ns / 1e9)
        if dp.all_rows:
            return [r.get(dp.field) for r in rows if r.get(dp.field)]
        if not rows:
            raise NoData(
                f"Coralogix returned no rows for {q.id} (data may take a minute to arrive)"
            )
        if dp.classify is not None:
            return classify(dp.classify, rows[0])
        value = dig(rows[0], dp.field)
        if value is None:
            raise NoData(f"Coralogix returned no `{dp.field}` for {q.id}")
        if q.answer.type == "number":
            value = float(value) * dp.scale
        return value

    @property
    def _redis_url(self) -> str:
        """The stack's Redis: the room-wide DataPrime limiter and cache live there."""
        return self.env.get("REDIS_URL") or NativeConfig.from_env(self.env).redis_url

    def _show_checking(self, delay: float) -> None:
        """The room's 30 queries/minute are used: say so instead of looking stuck."""
        self._show(
            f"checking… queued behind the room's DataPrime queries (≈{delay:.0f} s, "
            "30 queries/minute per key)"
        )

    def _observe_metrics(self, q: Question) -> str:
        """Which candidate host metric rose from the baseline to the fault window."""
        from stack.common.metrics_client import mean_of

        m = q.metrics
        assert m is not None
        ws = self.windows()
        base, fault = ws["baseline"], ws["fault"]
        if base.start_ns == fault.start_ns:
            raise NoData("no fault window yet: the lab's fault has not run")
        base = checks.settled(base)  # the local check's rule: start-up is not the baseline
        best: tuple[float, str] | None = None
        for name, promql in m.candidates.items():
            before = mean_of(self._metric_series(promql, base.start_ns / 1e9, base.end_ns / 1e9))
            during = mean_of(self._metric_series(promql, fault.start_ns / 1e9, fault.end_ns / 1e9))
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

    def check(self, qid: str, answer: Any) -> Verdict:
        """Verdict on the learner's answer (shown nicely in a notebook)."""
        q = self.spec.question(qid)
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            return Verdict(qid, False, "no answer yet: type one in the cell above and run it again")
        try:
            observed, source = self.observe(qid)
        except NoData as exc:
            self.report("checking", question=qid, verdict="cannot check")
            return Verdict(qid, False, f"cannot check yet: {exc}", answer=answer)
        ok = compare(q, answer, observed)
        self.report("checking", question=qid, verdict="passed" if ok else "failed")
        if ok:
            message = f"`{answer}` is right." + (f" {q.explanation}" if q.explanation else "")
        else:
            message = f"`{answer}` is not what the telemetry shows. Look again."
            if q.hint:
                message += f" Hint: {q.hint}"
        return Verdict(qid, ok, message, answer=answer, observed=observed, source=source)

    def solution(self, qid: str) -> Any:
        """The lab's ground truth (instructors, CI): what the lab itself set up or measured."""
        q = self.spec.question(qid)
        e = q.expected
        if e.value is not None:
            return e.value
        if e.fault_target is not None or e.fault_id is not None:
            step = e.fault_target if e.fault_target is not None else e.fault_id
            rec = next((f for f in self.state.faults if f.step == step), None)
            if rec is None:
                raise NoData("the fault has not been injected yet")
            return rec.target if e.fault_target is not None else rec.id
        if e.client_p95:
            if self.state.client_p95_ms is None:
                raise NoData("no client measurements yet")
            return round(self.state.client_p95_ms, 1)
        if e.attendees:
            return list(self.state.attendees)
        if e.fault_scope is not None:
            rec = next((f for f in self.state.faults if f.step == e.fault_scope), None)
            if rec is None:
                raise NoData("the fault has not been injected yet")
            return rec.scope_value
        raise NoData("no ground truth for this question")

    # -- cleanup -------------------------------------------------------------------------
    def cleanup(self) -> dict[str, Any]:
        """Stop traffic, clear this lab's faults (and reset if the spec says so)."""
        self._stop.set()
        if self.traffic and self.traffic.running:
            self.traffic.stop()
            self.traffic.wait(20)
        if self._timeline:
            self._timeline.join(10)
        cleared = 0
        for rec in self.state.faults:
            if rec.end is None and rec.id:
                self.remove(rec)
                cleared += 1
        out: dict[str, Any] = {"faults_cleared": cleared}
        if self.spec.cleanup.reset:
            out["reset"] = self.gateway.reset()
        self.save_state()
        return out


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


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def as_image(fig: Any) -> Any:
    """A matplotlib Figure as an IPython PNG image (renders in any kernel, no pyplot state)."""
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return Image(data=buf.getvalue())
