"""Markdown guides generated from the lab specs (docs/labs/*.md, instructor and attendee guides).

Never edit the generated files by hand: change ``labs/specs/*.yaml`` (or this module) and run
``python -m labs.guides`` — a test regenerates into a temporary directory and fails on drift.
"""

from __future__ import annotations

from pathlib import Path

from labs.guides.coralogix_doc import coralogix_page
from labs.runtime.spec import LabSpec, all_specs

GENERATED = "<!-- generated from labs/specs by `python -m labs.guides`; do not edit -->\n\n"


def _answer_form(q) -> str:
    if q.answer.choices:
        return "one of " + ", ".join(f"`{c}`" for c in q.answer.choices)
    return {
        "service": "a service.name",
        "number": "a number",
        "text": "text",
        "choice": "a choice",
    }[q.answer.type] + (f" ({q.answer.unit})" if q.answer.unit else "")


def _expected(spec: LabSpec, q) -> str:
    e = q.expected
    if e.value is not None:
        return f"`{e.value}`"
    if e.fault_target is not None:
        f = spec.faults[e.fault_target]
        if f.target == "hidden":
            return (
                "the hidden target (one of "
                + ", ".join(f"`{c}`" for c in f.candidates)
                + "; `lab.solution()` tells which)"
            )
        return f"`{f.target}`"
    if e.fault_id is not None:
        return (
            "the id of the injected fault (`lab.solution()`; `workshop fault list` while it runs)"
        )
    if e.client_p95:
        return "the p95 the traffic generator measured (±50 %)"
    if e.attendees:
        return "the attendee ids the room traffic used"
    if e.fault_scope is not None:
        return "the attendee the fault was scoped to"
    return "?"


def lab_markdown(spec: LabSpec) -> str:
    t = spec.traffic
    out = [
        GENERATED,
        f"# Lab {spec.id} · {spec.title}\n",
        f"*≈ {spec.time_minutes} minutes*\n",
        spec.summary + "\n",
    ]
    out += ["## Objectives\n", *[f"- {o}" for o in spec.objectives], ""]
    if spec.prerequisites:
        out += ["## Before you start\n", *[f"- {p}" for p in spec.prerequisites], ""]
    if spec.story:
        out += [spec.story.strip(), ""]
    out += [
        "## Run it\n",
        f"- Notebook: `notebooks/{spec.name}.ipynb` (`make lab` opens JupyterLab)",
        f"- Terminal: `workshop lab run {spec.id}` (add `--short` for a quick run)",
        f"- Traffic: {t.users} users for {t.duration_s} s (short: {t.short.users} users, "
        f"{t.short.duration_s} s); Locust scenario `{t.scenario}`",
        "",
    ]
    if spec.faults:
        out += ["## What happens\n", "| after | fault | target | for |", "|---|---|---|---|"]
        for f in spec.faults:
            target = "hidden — find it" if f.target == "hidden" else f"`{f.target}`"
            params = ", ".join(f"{k}={v}" for k, v in f.params.items())
            out.append(
                f"| {f.offset_s:.0f} s | `{f.kind}`{f' ({params})' if params else ''} | {target} | {f.duration_s:.0f} s |"  # noqa: E501
            )
        out.append("")
    out += ["## Where to look\n"]
    for w in spec.where_to_look:
        if w.explore_query:
            out.append(
                f"- **{w.label}** — Explore (spans, DataPrime):\n\n  ```\n  {w.explore_query.strip()}\n  ```"  # noqa: E501
            )
        else:
            out.append(f"- **{w.label}** — *{w.menu}*")
        if w.note:
            out.append(f"  {w.note}")
    out += [
        "",
        "`lab.where_to_look()` turns these into links on your team host (`CX_TEAM_URL`) for this "
        "lab's exact traffic window, adds your spans, your slowest trace by id and your host "
        "for Infrastructure Explorer; without a team host it prints no link, only "
        "*set CX_TEAM_URL to get links*. `workshop traces` reads the same spans locally "
        "([what opens where](../coralogix.md)).",
        "",
        "## Questions\n",
    ]
    for n, q in enumerate(spec.questions, 1):
        out += [
            f"{n}. **{q.prompt}** — answer: {_answer_form(q)}  ",
            f"   `workshop lab check {spec.id} {q.id} <answer>`",
        ]
        if q.hint:
            out.append(f"   <details><summary>Hint</summary>{q.hint}</details>")
        out.append("")
    out += [
        "## Clean up\n",
        f"`lab.cleanup()` in the notebook (or the end of `workshop lab run {spec.id}`) clears the "
        "faults this lab injected." + (f" {spec.cleanup.note}" if spec.cleanup.note else ""),
        "",
    ]
    return "\n".join(out)


def run_a_room(labs: list[LabSpec]) -> list[str]:
    """The "run a room" runbook; which labs wait for a room event comes from the specs."""
    events = [
        f"lab {s.id} → `workshop room event start {f.kind}` ({f.target})"
        for s in labs
        for f in s.faults
        if f.room_event
    ]
    return [
        "## Run a room (one shared VM, many attendees)\n",
        "**Before.** `workshop up` then `workshop status` (all green) and `make demo-fast`. Write "
        "a roster CSV (`name,email`, email optional) and run `workshop room create roster.csv`: "
        "it gives every attendee an id and a login, keeps the passwords in "
        "`<data dir>/room/secrets.json` (mode 0600, never printed) and writes one printable "
        "handout per attendee to `<data dir>/room/handouts/<id>.html` (lab URL, attendee id, "
        "login, Coralogix links filtered to them). Print them (one A4 page each). Keep "
        "`CX_API_KEY`, `CX_PRIVATE_KEY` and the admin token in the stack's environment only: "
        "attendees' notebooks get none of them — their online checks go through the gateway "
        "(`POST /api/room/check`, one rate limit and a 30 s cache for the whole room).\n",
        "**During.** Per-request faults (latency, errors, CPU burn…) are scoped to the "
        "attendee who runs the lab. Faults that act on a whole process are *room events*: "
        'attendees\' labs say "waiting for the instructor to start room event …" until you '
        "start them — from the CLI, `notebooks/instructor.ipynb` or the web UI's Instructor "
        "page. `workshop room events` lists what is running. This course's room events: "
        + ("; ".join(events) or "none")
        + ". Watch who is stuck where on the Instructor page's *Room progress* "
        "(`#/instructor`, admin token; each attendee's lab step and check verdicts, live), or "
        "`workshop room progress`.\n",
        "**After.** `workshop room reset` (faults, queue, cache, sessions, database and the "
        "room's progress, credentials and handouts), rotate the Coralogix keys the room used "
        "and the admin token (`ADMIN_TOKEN`, or delete `<data dir>/admin-token` and restart), "
        "and `terraform destroy` in `deploy/terraform` for a VM you no longer need.\n",
    ]


def instructor_guide(specs: list[LabSpec]) -> str:
    labs = [s for s in specs if s.id != "instructor"]
    out = [
        GENERATED,
        "# Instructor guide\n",
        "## Before the workshop\n",
        "- [ ] `make bootstrap` on the machine (or `scripts/deploy-vm.sh` for the shared VM); "
        "`workshop up` then `workshop status`: every component ready.",
        "- [ ] `make demo-fast` runs end to end (baseline, latency, errors, recovery).",
        "- [ ] Coralogix (optional): `CX_PRIVATE_KEY` (Send-Your-Data key) in the stack's "
        "environment; `CX_API_KEY` (DataQuerying key) for answer checks; `CX_DOMAIN`/`CX_REGION` "
        "and `CX_TEAM_URL` for links. Never paste keys into notebooks.",
        "- [ ] `workshop lab run 00 --short`, then `workshop lab check 00 entry_service api-gateway`.",  # noqa: E501
        "- [ ] Admin token at hand (`data/admin-token`, or `ADMIN_TOKEN` on the VM) for "
        "`notebooks/instructor.ipynb` and `workshop fault`.",
        "- [ ] Give each attendee an id (`WORKSHOP_ATTENDEE=alice`) — it is the baggage that lets "
        "them filter their own traces in a shared stack, and the scope of per-attendee faults.",
        "",
        "## Room timeline\n",
        "| lab | minutes | faults |",
        "|---|---|---|",
    ]
    total = 0
    for s in labs:
        total += s.time_minutes
        faults = (
            ", ".join(
                f"{f.kind} → {'hidden' if f.target == 'hidden' else f.target}" for f in s.faults
            )
            or "–"
        )
        out.append(f"| {s.id} {s.title} | {s.time_minutes} | {faults} |")
    out += [
        f"\nAbout {total} minutes of labs; add 10 minutes of introduction and a break after lab 04.\n",  # noqa: E501
        "Between labs: `workshop fault clear` (or `room.reset_room(lab)` in the instructor "
        "notebook for a full reset of queue, cache, sessions and database).\n",
        *run_a_room(labs),
        "## Per-lab answers\n",
    ]
    for s in labs:
        out.append(f"### Lab {s.id} · {s.title}\n")
        for q in s.questions:
            out.append(f"- `{q.id}` — {q.prompt} → {_expected(s, q)}")
            out.append(
                f"  - local check: `{q.local.check}({', '.join(f'{k}={v!r}' for k, v in q.local.args.items())})`"  # noqa: E501
            )
            if q.dataprime is not None:
                out.append(f"  - DataPrime: `{' '.join(q.dataprime.query.split())}`")
            if q.metrics is not None:
                for name, promql in q.metrics.candidates.items():
                    out.append(f"  - PromQL ({name}): `{promql}`")
        out.append("")
    out += [
        "## Troubleshooting\n",
        "| symptom | cause and fix |",
        "|---|---|",
        "| `check()` says *cannot check yet* | telemetry not flushed: wait 10 s and re-run the cell; "  # noqa: E501
        "metrics export every 10 s (`OTEL_METRIC_EXPORT_INTERVAL`). |",
        "| no local traces | the collector is not built or not running: `make collector`, `workshop status`; "  # noqa: E501
        "with `CX_PRIVATE_KEY` set telemetry goes to Coralogix instead. |",
        "| HTTP 403 on faults | wrong admin token: `data/admin-token` or `ADMIN_TOKEN`. |",
        "| a fault outlives a lab | every lab fault has a TTL; `workshop fault clear` ends all now. |",  # noqa: E501
        "| DataPrime check: *rate limited* | 30 queries/minute per key: the client waits and retries; "  # noqa: E501
        "with many attendees give each their own key, or check locally (unset `CX_API_KEY`). |",
        "| notebook kernel hangs | something imported Locust (gevent): restart the kernel; the labs run "  # noqa: E501
        "Locust as a subprocess only. |",
        "",
    ]
    return "\n".join(out)


def attendee_guide(specs: list[LabSpec]) -> str:
    labs = [s for s in specs if s.id != "instructor"]
    out = [
        GENERATED,
        "# Attendee guide\n",
        "## Start\n",
        "1. Your own machine: `make bootstrap`, then `make lab` (JupyterLab on 127.0.0.1, the URL "
        "with its token is printed). Shared VM: open the URL your instructor gives you.",
        "2. Set your attendee id once: `export WORKSHOP_ATTENDEE=<your name>` (or the `attendee` "
        "parameter at the top of each notebook).",
        "3. Open `notebooks/00-setup-doctor.ipynb` and run the cells in order.",
        "",
        "No notebook? Every lab also runs from a terminal: `workshop lab run 02`, then "
        "`workshop lab check 02 slow_service <answer>`.",
        "",
        "## The labs\n",
    ]
    for s in labs:
        out.append(f"- [Lab {s.id} · {s.title}](labs/{s.name}.md) — {s.time_minutes} min")
    out += [
        "",
        "## How answers are checked\n",
        "With `CX_API_KEY` (a DataQuerying key) answers are verified in Coralogix through the "
        "DataPrime query API; without it, against the telemetry the collector keeps on your "
        "machine. Either way a wrong answer says so — and gives a hint, not the answer.",
        "",
        "## Finding your traces\n",
        "Every request the labs send carries `workshop.attendee=<you>` and "
        "`synthetic_request=true` as baggage; every service copies them onto its spans. Filter "
        "on `workshop.attendee` in Coralogix, or `workshop traces --attendee <you>` locally.",
        "",
    ]
    return "\n".join(out)


def render_all(specs: list[LabSpec] | None = None) -> dict[str, str]:
    """Relative path → content of every generated markdown file."""
    specs = specs or all_specs()
    files = {f"docs/labs/{s.name}.md": lab_markdown(s) for s in specs if s.id != "instructor"}
    files["docs/instructor-guide.md"] = instructor_guide(specs)
    files["docs/attendee-guide.md"] = attendee_guide(specs)
    files["docs/coralogix.md"] = coralogix_page(specs)
    return files


def write_all(root: Path) -> list[Path]:
    written = []
    for rel, text in render_all().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
