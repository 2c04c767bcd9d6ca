"""Jupytext percent scripts for the lab notebooks, generated from the specs.

``python -m labs.guides notebooks`` writes ``notebooks/NN-*.py`` and pairs them with
``.ipynb`` through jupytext (outputs stripped). The ``.py`` is the reviewed source.
"""

from __future__ import annotations

import textwrap

from labs.runtime.spec import LabSpec

HEADER = """\
# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---
"""

PARAMETERS = """\
# %% tags=["parameters"]
duration = None  # seconds of traffic (None: the lab's default)
users = None  # simulated users (None: the lab's default)
attendee = None  # your attendee id (None: $WORKSHOP_ATTENDEE, else your user name)
short_mode = False  # True: ~20 s of traffic (quick runs, CI)
reveal = False  # True: fill in the lab's own answers and assert they check out (CI, instructors)
gateway_url = None  # None: the local stack ($WORKSHOP_PORT_BASE, default 8010)
admin_token = None  # None: ADMIN_TOKEN, else data/admin-token
telemetry_dir = None  # None: data/telemetry (offline mode)
"""

SETUP = """\
# %%
import pathlib
import sys

# Make the repository importable when the notebook runs from notebooks/.
for _p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:
    if (_p / "labs" / "runtime").is_dir():
        sys.path.insert(0, str(_p))
        break

from labs.runtime import Lab  # noqa: E402
from labs.runtime.lab import as_image  # noqa: E402

lab = Lab.load(
    {lab_id!r},
    short_mode=short_mode,
    attendee=attendee,
    gateway_url=gateway_url,
    admin_token=admin_token,
    telemetry_dir=telemetry_dir,
)
lab.intro()
"""


def _md(text: str) -> str:
    lines = text.rstrip().splitlines()
    return "# %% [markdown]\n" + "\n".join(f"# {ln}".rstrip() for ln in lines) + "\n"


def _timeline(spec: LabSpec) -> str:
    if not spec.faults:
        return "No fault in this lab: everything you see is normal behaviour."
    out = []
    for f in spec.faults:
        target = "a service we do not tell you" if f.target == "hidden" else f"`{f.target}`"
        out.append(
            f"- after {f.offset_s:.0f} s (short mode: {f.short.offset_s:.0f} s): "
            f"**{f.kind}** on {target} for {f.duration_s:.0f} s"
        )
    return "Fault timeline:\n\n" + "\n".join(out)


def _question_cells(spec: LabSpec) -> list[str]:
    cells = []
    for n, q in enumerate(spec.questions, 1):
        kind = q.answer.type
        if q.answer.choices:
            form = "one of: " + ", ".join(f"`{c}`" for c in q.answer.choices)
        elif kind == "service":
            form = "a `service.name`, e.g. `storage-service`"
        elif kind == "number":
            form = f"a number{f' ({q.answer.unit})' if q.answer.unit else ''}"
        else:
            form = "text"
        text = f"### Question {n} — `{q.id}`\n\n{q.prompt}\n\nAnswer: {form}."
        if q.hint:
            text += f"\n\n<details><summary>Hint</summary>\n\n{q.hint}\n\n</details>"
        cells.append(_md(text))
        cells.append(
            "# %%\n"
            f"answer = None  # <- your answer\n"
            "if reveal:\n"
            f"    answer = lab.solution({q.id!r})\n"
            f"verdict = lab.check({q.id!r}, answer)\n"
            "assert verdict or not reveal, verdict\n"
            "verdict\n"
        )
    return cells


def lab_script(spec: LabSpec) -> str:
    if spec.id == "instructor":
        return instructor_script(spec)
    story = spec.story.strip() or spec.summary
    cells = [
        HEADER,
        _md(
            f"# Lab {spec.id} · {spec.title}\n\n{spec.summary}\n\n"
            "Run the cells in order (Shift-Enter). Set your answers where it says `answer = None`."
        ),
        PARAMETERS,
        SETUP.format(lab_id=spec.id),
        _md(
            "## Is everything ready?\n\nThe stack must be up, and your attendee id is what "
            "your traffic carries in its baggage."
        ),
        "# %%\nlab.doctor()\n",
        _md(
            f"## Send traffic\n\n{story}\n\n{_timeline(spec)}\n\n"
            "The table and the plot below update live until the traffic stops."
        ),
        "# %%\nlab.run(users=users, duration=duration)\nlab.live()\n",
        _md(
            "## Where to look\n\nLinks into Coralogix for your spans in this lab's exact "
            "window, your slowest trace and your host (set `CX_TEAM_URL` to get links); "
            "locally otherwise."
        ),
        "# %%\nlab.where_to_look();\n",
        _md(
            "## Your slowest request, from local telemetry\n\n"
            "The collector keeps a bounded copy of every span under `data/telemetry/` (online "
            "too); `workshop traces` reads the same files."
        ),
        textwrap.dedent(
            """\
            # %%
            from labs.runtime.links import NO_TEAM_HINT, trace_link
            from labs.telemetry import load_spans, trace_spans, traces, waterfall_figure

            spans = load_spans(lab.telemetry_dir)
            mine = traces(spans, attendee=lab.attendee, limit=None)
            if mine:
                slowest = max(mine, key=lambda t: t.duration_ms)
                print(f"{len(mine)} traces of yours; slowest {slowest.duration_ms:.0f} ms")
                display(as_image(waterfall_figure(trace_spans(spans, slowest.trace_id))))
                end_ns = slowest.start_ns + int(slowest.duration_ms * 1e6)
                print(trace_link(slowest.trace_id, slowest.start_ns, end_ns) or NO_TEAM_HINT)
            else:
                print("no local traces (telemetry goes to Coralogix, or the collector is off)")
            """
        ),
        _md(
            "## Questions\n\nEach answer is checked against Coralogix when `CX_API_KEY` is set, "
            "else against local telemetry."
        ),
        *_question_cells(spec),
        _md("## Clean up\n\n" + (spec.cleanup.note or "Clears the faults this lab injected.")),
        "# %%\nlab.cleanup()\n",
    ]
    return "\n".join(cells)


def instructor_script(spec: LabSpec) -> str:
    cells = [
        HEADER,
        _md(f"# {spec.title}\n\n{spec.summary}\n\nNeeds the admin token."),
        PARAMETERS,
        SETUP.format(lab_id=spec.id),
        "# %%\nfrom labs.runtime import room\n\nlab.doctor()\n",
        _md(
            "## Traffic for the room\n\nOne attendee id per simulated user group "
            f"({spec.traffic.attendees} ids derived from `attendee`). The spec's timeline slows "
            "down **one** attendee only (fault scope `attendee`)."
        ),
        "# %%\nlab.run(users=users, duration=duration)\nlab.live()\n",
        _md(
            "## Who is sending traffic?\n\nFrom local spans' `workshop.attendee`, or the DataPrime "
            "API when `CX_API_KEY` is set."
        ),
        "# %%\nroom.attendees_sending(lab, minutes=5)\n",
        _md(
            "## Scheduling faults by hand\n\n`room.schedule_fault(lab, kind, target, params=..., "
            "attendee=None | 'id', delay_s=..., duration_s=...)` — `attendee=None` hits the "
            "whole room. `room.reset_room(lab)` empties everything between labs.\n\n"
            "```python\nroom.schedule_fault(lab, 'latency', 'validation-service', "
            "params={'ms': 400}, delay_s=60, duration_s=300)\n```"
        ),
        _md(
            "## Room events and the room's progress\n\nFaults that act on a whole process "
            "(`slow_db`, `queue_stall`, `memory_leak`, `bad_release`) are *room events*: "
            "attendees' labs wait for you to start them. "
            "`room.start_room_event(lab, 'slow_db', duration_s=300)` starts one; "
            "`room.room_events(lab)` lists them; `room.room_progress(lab)` shows each "
            "attendee's lab step and check verdicts (also live on the web UI's Instructor page)."
        ),
        "# %%\nroom.room_events(lab), room.room_progress(lab)\n",
        "# %%\nlab.where_to_look();\n",
        _md("## Checks"),
        *_question_cells(spec),
        "# %%\nlab.cleanup()\n",
    ]
    return "\n".join(cells)
